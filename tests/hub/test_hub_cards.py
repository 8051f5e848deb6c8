"""hub/cards.py: each card kind's lmolt block round-trips through front matter, and readers are lenient."""

from __future__ import annotations

import yaml

from lmolt_hub.hub.cards import (
    AdapterMeta,
    DatasetMeta,
    EvalSetMeta,
    LeaderboardMeta,
    MergeMeta,
    lmolt_block,
    parse_card,
    read_meta,
)


def _through_yaml(front: dict) -> dict:
    text = "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\nbody\n"
    data, body = parse_card(text)
    assert body == "body\n"
    return data


def test_adapter_card_round_trip_keeps_the_training_keys():
    meta = AdapterMeta(method="cpo", parent="org/base", parent_revision="a" * 40, dataset="org/triples",
                       dataset_revision="b" * 40, directions=["caption2smiles"], kept_epoch=2)  # fmt: skip
    front = meta.to_front_matter()
    assert "kind" not in front["lmolt"] and "fusion" not in front["lmolt"]  # training cards as before
    assert list(front["lmolt"])[:3] == ["method", "parent", "parent_revision"]
    back = read_meta(_through_yaml(front))
    assert back == meta


def test_merge_dataset_eval_and_leaderboard_kinds_are_told_apart():
    merge = MergeMeta(name="org/m", method="slerp", parents=[{"id": "org/a", "revision": "c" * 40}])
    assert merge.to_front_matter()["lmolt"]["kind"] == "merge"
    assert read_meta(_through_yaml(merge.to_front_matter())) == merge
    data = DatasetMeta(kind="triples", repo_id="org/t", recipe={"kind": "triples"})
    assert read_meta(_through_yaml(data.to_front_matter())) == data
    ev = EvalSetMeta(kind="eval", recipe={"metrics": {"nli_model": "lab/nli"}, "fcd_convention": "fcd_1.1"},
                     sources={"fcd_stats": {"file": "fcd_stats/x.npz"}})  # fmt: skip
    back = read_meta(_through_yaml(ev.to_front_matter()))
    assert isinstance(back, EvalSetMeta)
    assert back.metric_options() == {"nli_model": "lab/nli", "fcd_convention": "fcd_1.1",
                                     "fcd_stats_file": "fcd_stats/x.npz"}  # fmt: skip
    board = read_meta({"lmolt": {"reviewers": ["alice", 3]}})
    assert isinstance(board, LeaderboardMeta) and board.reviewer_names() == {"alice"}


def test_readers_are_lenient_with_foreign_cards():
    assert read_meta(None) is None and read_meta({"license": "mit"}) is None
    assert lmolt_block({"lmolt": "not a mapping"}) == {}
    odd = read_meta({"lmolt": {"method": "dpo", "unknown_key": 1}})
    assert isinstance(odd, AdapterMeta) and odd.method == "dpo"
    ev = EvalSetMeta.from_card({"lmolt": {"kind": "eval", "recipe": "x", "sources": []}})
    assert ev is not None and ev.metric_options() == {}
    assert parse_card("no front matter") == ({}, "no front matter")


def test_leaderboard_card_written_and_read_through_the_same_block(local_hub):
    from huggingface_hub import HfApi

    from lmolt_hub.leaderboard.layout import create_leaderboard_repo
    from lmolt_hub.leaderboard.protocol import reviewers

    api = HfApi()
    create_leaderboard_repo("cardorg/board", api)
    me = api.whoami()["name"]
    assert reviewers(api, "cardorg/board") == {"cardorg", me}
