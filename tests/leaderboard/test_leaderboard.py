"""Leaderboard records, aggregate, CI ranks, validation checks and the deterministic build (no Hub)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from pathlib import Path

import pytest

from lmolt_hub.leaderboard import validate as V
from lmolt_hub.leaderboard.aggregate import aggregate_row, ci_ranks, default_spec, score_records
from lmolt_hub.leaderboard.build import build
from lmolt_hub.leaderboard.records import (
    PAPER_DIRECTIONS,
    Record,
    higher_is_better,
    paper_metric_key,
    parse_zoo_name,
    reported_records,
    verified_record,
)
from lmolt_hub.leaderboard.review import check_duplicate, check_rate_limit
from lmolt_hub.naming import default_org
from lmolt_hub.prompts import source_target
from lmolt_hub.resources import PAPER_TABLES, chebi20_split

from helpers.leaderboard_data import (
    INJECTED_NAME,
    SYNTHETIC_BASELINE,
    synthetic_leaderboard_root,
    synthetic_results,
    write_submission,
)

# --------------------------------------------------------------------------- records


def test_reported_records_are_the_papers_tables():
    tables = json.loads(PAPER_TABLES.read_text())
    records = {r.model: r for r in reported_records()}

    def find(row):
        method = row["method"].lower()
        fusion = row["fusion"].lower() if row["fusion"] else None
        (match,) = [
            r for r in records.values()
            if r.model.startswith(row["model"]) and r.method == method and r.fusion == fusion
            and (method != "baseline" or r.model == row["model"])
        ]  # fmt: skip
        return match

    n_checked = 0
    for paper_dir, direction in PAPER_DIRECTIONS.items():
        for row in tables[paper_dir]["rows"]:
            match = find(row)
            for column in tables[paper_dir]["metrics"]:
                assert match.results[direction][paper_metric_key(direction, column)] == row[column]
                n_checked += 1
    assert n_checked == sum(
        len(t["rows"]) * len(t["metrics"]) for t in tables.values() if isinstance(t, dict)
    )
    for record in records.values():
        assert record.kind == "reported" and "2405.13984" in record.citation
        assert not record.samples and not record.confidence_intervals
        assert set(record.results) == {"smiles2caption", "caption2smiles"}
    assert records["Meditron-7B SLERP+CPO"].fusion == "slerp"


def test_paper_metric_directions_follow_the_tables():
    hib = higher_is_better()
    tables = json.loads(PAPER_TABLES.read_text())
    for paper_dir, direction in PAPER_DIRECTIONS.items():
        for column, better in tables[paper_dir]["metrics"].items():
            assert hib[paper_metric_key(direction, column)] == (better == "higher"), column


def test_record_kinds_never_mix():
    common = dict(model="m", revision=None, eval_dataset="e", eval_revision=None, template_version=None)
    with pytest.raises(ValueError, match="citation"):
        Record(
            kind="reported",
            metrics_version=None,
            **common,
            samples={"smiles2caption": "s.jsonl"},
            citation="x",
        )
    with pytest.raises(ValueError, match="citation"):
        Record(kind="reported", metrics_version=None, **common)
    with pytest.raises(ValueError, match="paper citation"):
        Record(kind="verified", metrics_version=None, **common, citation="a paper")
    with pytest.raises(ValueError, match="kind"):
        Record(kind="claimed", metrics_version=None, **common)


def test_key_distinguishes_every_identity_field():
    base = verified_record(synthetic_results("o/lmolt-cpo", "a" * 40, 0.5, 0))
    other_rev = verified_record(synthetic_results("o/lmolt-cpo", "b" * 40, 0.5, 0))
    other_metrics = verified_record(synthetic_results("o/lmolt-cpo", "a" * 40, 0.5, 0, metrics_version="v2"))
    same = verified_record(synthetic_results("o/lmolt-cpo", "a" * 40, 0.9, 7))
    assert base.key() == same.key() and base.row_id == same.row_id
    assert len({base.key(), other_rev.key(), other_metrics.key()}) == 3


def test_parse_zoo_name():
    assert parse_zoo_name("org/lmolt-slerp-cpo") == ("cpo", "slerp")
    assert parse_zoo_name("org/lmolt-sft-caption2smiles") == ("sft", None)
    assert parse_zoo_name("org/lmolt-ties") == (None, "ties")
    assert parse_zoo_name("someone/llama") == (None, None)


# --------------------------------------------------------------------------- aggregate and ranks


def test_ci_ranks_share_a_rank_when_intervals_overlap():
    # a and b overlap; c is entirely below both; d is entirely below c.
    intervals = [(0.60, 0.70), (0.65, 0.80), (0.40, 0.55), (0.10, 0.20), None]
    assert ci_ranks(intervals) == [1, 1, 3, 4, None]
    # Point intervals (reported rows): only equal values tie.
    assert ci_ranks([(0.5, 0.5), (0.5, 0.5), (0.4, 0.4)]) == [1, 1, 3]


def _record(values: dict[str, float], cis: dict[str, list[float]] | None = None) -> Record:
    return Record(
        kind="verified", model=str(sorted(values.items())), revision="r", eval_dataset="e", eval_revision="x",
        template_version="t", metrics_version="m", results={"caption2smiles": values},
        confidence_intervals={"caption2smiles": cis or {}},
    )  # fmt: skip


def _up_down() -> tuple[str, str]:
    hib = higher_is_better()
    up = next(k for k, v in hib.items() if v and k in default_spec()["metrics"]["caption2smiles"])
    down = next(k for k, v in hib.items() if not v and k in default_spec()["metrics"]["caption2smiles"])
    return up, down


def test_aggregate_flips_lower_is_better_and_bounds_each_metric():
    hib = higher_is_better()
    up, down = _up_down()
    base = _record({up: 0.5, down: 10.0})
    better = _record({up: 0.75, down: 5.0}, {up: [0.7, 0.8], down: [4.0, 6.0]})
    agg = aggregate_row(better, base, {"caption2smiles": [up, down]}, hib)
    assert agg["value"] == pytest.approx((0.5 + 0.5) / 2)  # +50% and a halved lower-is-better metric
    assert agg["ci"] == pytest.approx([(0.4 + 0.4) / 2, (0.6 + 0.6) / 2])
    # far above a higher-is-better baseline, far below... each metric counts at most +-1
    metrics = {"caption2smiles": [up, down]}
    huge = aggregate_row(_record({up: 1.0, down: 100.0}), _record({up: 0.1, down: 1.0}), metrics, hib)
    assert huge["value"] == pytest.approx((1.0 - 1.0) / 2)
    undefined = aggregate_row(_record({up: None, down: 5.0}), base, {"caption2smiles": [up, down]}, hib)
    assert undefined["value"] == pytest.approx((-1.0 + 0.5) / 2)  # undefined = the worst value
    assert aggregate_row(better, base, {"smiles2caption": ["meteor"]}, hib) is None  # no such direction
    assert (
        aggregate_row(_record({down: 5.0}), base, {"caption2smiles": [up, down]}, hib) is None
    )  # incomplete


@pytest.mark.parametrize("base_value", [0.0, 1e-300, 2.3e-155, -0.0])
def test_aggregate_is_bounded_for_degenerate_baselines(base_value):
    hib = higher_is_better()
    up, down = _up_down()
    metrics = {"caption2smiles": [up, down]}
    for model_value in (0.0, 1e-300, 1e-150, 0.05, 1.0):
        row = _record({up: model_value, down: model_value}, {up: [0.0, 1.0], down: [0.0, 1e9]})
        agg = aggregate_row(row, _record({up: base_value, down: base_value}), metrics, hib)
        assert -1.0 <= agg["ci"][0] <= agg["value"] <= agg["ci"][1] <= 1.0, (base_value, model_value, agg)
    # numerically tiny differences from a ~0 baseline count as ~nothing, not as 1e+150
    tiny = aggregate_row(_record({up: 1e-150, down: 0.0}), _record({up: base_value, down: 0.0}), metrics, hib)
    assert abs(tiny["value"]) < 1e-100


def test_aggregate_equal_to_baseline_is_zero_and_worse_is_negative():
    hib = higher_is_better()
    up, down = _up_down()
    metrics = {"caption2smiles": [up, down]}
    base = _record({up: 0.3, down: 40.0})
    assert aggregate_row(_record({up: 0.3, down: 40.0}), base, metrics, hib)["value"] == 0.0
    worse = aggregate_row(_record({up: 0.3, down: 60.0}), base, metrics, hib)  # lower is better: 60 > 40
    assert worse["value"] == pytest.approx((0 - 0.5) / 2)
    much_worse = aggregate_row(_record({up: 0.3, down: 1e12}), _record({up: 0.3, down: 0.0}), metrics, hib)
    assert much_worse["value"] == pytest.approx(
        -0.5
    )  # capped at -1 for that metric, also against a 0 baseline


def test_reported_and_verified_are_ranked_separately():
    root_records = reported_records()
    verified = [verified_record(synthetic_results(f"o/lmolt-{m}", c * 40, q, i)) for i, (m, c, q) in
                enumerate([("sft", "a", 0.3), ("cpo", "b", 0.9)])]  # fmt: skip
    scores = score_records(root_records + verified, default_spec("o/lmolt-sft"), higher_is_better())
    sft, cpo = (scores[r.row_id] for r in verified)
    assert sft["baseline"] == cpo["baseline"] == "o/lmolt-sft"
    assert sft["aggregate"]["overall"]["value"] == pytest.approx(0.0)
    assert (cpo["rank"]["overall"], sft["rank"]["overall"]) == (1, 2)
    paper = {r.model: scores[r.row_id] for r in root_records}
    assert paper["Meditron-7B SFT"]["aggregate"]["overall"]["value"] == pytest.approx(0.0)
    assert sorted(p["rank"]["overall"] for p in paper.values()) == list(range(1, len(paper) + 1))


def test_baseline_is_an_explicit_model_id_not_a_pattern():
    """A stranger's ``aaa/lmolt-sft`` (sorts first, same method) is not the baseline."""
    hijack = verified_record(synthetic_results("aaa/lmolt-sft", "e" * 40, 0.0, 9))
    ours = verified_record(synthetic_results("lmolt/lmolt-sft", "a" * 40, 0.3, 1))
    scores = score_records([hijack, ours], default_spec("lmolt/lmolt-sft"), higher_is_better())
    assert {s["baseline"] for s in scores.values()} == {"lmolt/lmolt-sft"}
    assert default_spec()["baseline"]["verified"] == {"model": f"{default_org()}/lmolt-sft"}
    with pytest.raises(ValueError, match="model id"):
        score_records(
            [ours], {**default_spec(), "baseline": {"verified": {"method": "sft"}}}, higher_is_better()
        )


def _quickstart_like() -> list[Record]:
    """Rows with the values of a real quickstart run (tiny models, 8 pairs; aggregate version 1 gave
    the zero-validity rows 2.8e+151 and 6.7e+151 and ranked them first)."""

    def row(model: str, c2s: dict, s2c: dict) -> Record:
        return Record(kind="verified", model=f"lmolt/{model}", revision="r", eval_dataset="lmolt/lmolt-eval-3k",
                      eval_revision="e", template_version="t", metrics_version="m",
                      results={"caption2smiles": c2s, "smiles2caption": s2c})  # fmt: skip

    zero = {"exact_match": 0.0, "maccs_fts": 0.0, "morgan_fts": 0.0, "rdk_fts": 0.0, "uniqueness": 0.0,
            "validity": 0.0, "fcd": None}  # fmt: skip
    return [
        row("lmolt-sft-caption2smiles",
            {"bleu": 0.0518, "exact_match": 0.0, "fcd": 51.10, "levenshtein": 141.6, "maccs_fts": 0.0831,
             "morgan_fts": 0.00814, "rdk_fts": 0.0316, "uniqueness": 0.333, "validity": 0.375},
            {"bleu2": 4.0e-156, "bleu4": 1.15e-232, "meteor": 0.00436, "rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}),
        row("lmolt-sft-smiles2caption", {**zero, "bleu": 2.04e-80, "levenshtein": 148.75},
            {"bleu2": 0.00103, "bleu4": 8.9e-157, "meteor": 0.0132, "rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}),
        row("lmolt-slerp-cpo", {**zero, "bleu": 2.29e-79, "levenshtein": 169.5},
            {"bleu2": 0.00241, "bleu4": 2.79e-156, "meteor": 0.0148, "rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}),
    ]  # fmt: skip


def test_quickstart_like_rows_are_bounded_and_zero_validity_ranks_below():
    rows = _quickstart_like()
    scores = score_records(rows, default_spec("lmolt/lmolt-sft-caption2smiles"), higher_is_better())
    for r in rows:
        for agg in scores[r.row_id]["aggregate"].values():
            assert agg is not None and abs(agg["value"]) <= 1.0 and max(map(abs, agg["ci"])) <= 1.0
    valid = scores[rows[0].row_id]["rank"]["overall"]
    for r in rows[1:]:  # validity 0
        assert scores[r.row_id]["rank"]["overall"] > valid
        assert scores[r.row_id]["aggregate"]["overall"]["value"] < 0


def test_rows_missing_a_metric_or_not_computed_are_not_ranked():
    rows = _quickstart_like()
    rows[1].results["caption2smiles"].pop("fcd")  # e.g. a run with FCD switched off
    rows[2].not_computed = {"smiles2caption": {"win_rate": "not computed: no NLI model"}}
    scores = score_records(rows, default_spec("lmolt/lmolt-sft-caption2smiles"), higher_is_better())
    assert scores[rows[1].row_id]["rank"]["overall"] is None
    assert scores[rows[1].row_id]["rank"]["caption2smiles"] is None
    assert scores[rows[1].row_id]["rank"]["smiles2caption"] is not None
    assert scores[rows[1].row_id]["missing"] == ["caption2smiles.fcd"]
    assert scores[rows[2].row_id]["rank"]["overall"] is None
    assert scores[rows[2].row_id]["rank"]["smiles2caption"] is None
    assert scores[rows[2].row_id]["rank"]["caption2smiles"] is not None
    assert scores[rows[2].row_id]["missing"] == ["smiles2caption.win_rate"]


# --------------------------------------------------------------------------- build


def test_build_is_deterministic_and_uses_accepted_results_only(tmp_path):
    root = synthetic_leaderboard_root(tmp_path / "repo")
    (root / "README.md").write_text("not a result")
    docs = [build(tmp_path / out, results_root=root, baseline=SYNTHETIC_BASELINE) for out in ("a", "b")]
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert {"leaderboard.json", "index.html", "app.js", "style.css", "figure1_distributions.png",
            "figure2_win_rates.png"} <= set(files)  # fmt: skip
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for name in docs[0]["plots"].values():
        assert (tmp_path / "a" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((tmp_path / "a" / "leaderboard.json").read_text())
    kinds = [r["kind"] for r in doc["rows"]]
    assert kinds.count("verified") == 4 and kinds.count("reported") == len(reported_records())
    assert len(doc["inputs"]["verified"]) == 4
    assert INJECTED_NAME in {r["model"] for r in doc["rows"]}  # stored verbatim; the page escapes it
    assert doc["aggregate"]["version"] and doc["aggregate"]["baseline"]["verified"]
    for direction, columns in doc["metrics"].items():
        assert columns and all({"key", "label", "higher_is_better"} <= set(c) for c in columns), direction
    verified = [r for r in doc["rows"] if r["kind"] == "verified"]
    ranks = [r["rank"]["overall"] for r in verified]
    assert ranks == sorted(ranks)  # verified rows come first, best first


def test_build_cli_offline_writes_paper_rows(tmp_path):
    from lmolt_hub.cli import main

    assert main(["leaderboard", "build", "--offline", "--output-dir", str(tmp_path / "site")]) == 0
    doc = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    assert {r["kind"] for r in doc["rows"]} == {"reported"}
    assert (tmp_path / "site" / "index.html").exists()


# --------------------------------------------------------------------------- validation pieces


def test_strict_json_refuses_nan_and_infinity():
    for text in ('{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}'):
        with pytest.raises(V.SubmissionError, match="NaN and Infinity"):
            V.strict_json(text, "results.json")
    with pytest.raises(V.SubmissionError, match="not valid JSON"):
        V.strict_json('{"a": ', "results.json")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(wall_time_s="fast"), "schema"),
        (lambda r: r["n_samples"].update(caption2smiles=-3), "schema"),
        (lambda r: r["eval_dataset"].update(n_samples=-1), "schema"),
        (lambda r: r.pop("results"), "schema"),
        (lambda r: r["results"]["caption2smiles"].update(fcd="12.5"), "schema"),
        (lambda r: r.update(kind="predictions"), "Hub model"),
    ],
)
def test_load_results_rejects_bad_documents(tmp_path, mutate, message):
    results = synthetic_results("o/lmolt-cpo", "a" * 40, 0.5, 0)
    mutate(results)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    with pytest.raises(V.SubmissionError, match=message):
        V.load_results(path)


def _eval_set(n: int = 12) -> list[dict[str, str]]:
    """The first ``n`` real ChEBI-20 test pairs as eval-set rows."""
    with open(chebi20_split("test"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:n]
    return [{"id": r["CID"], "molecule": r["SMILES"], "caption": r["description"]} for r in rows]


def _write_samples(folder: Path, eval_set: list[dict], direction: str, rows_edit=None) -> dict:
    rows = []
    for gold in eval_set:
        source, reference = source_target(direction, gold["molecule"], gold["caption"])
        rows.append({"id": gold["id"], "direction": direction, "source": source, "reference": reference,
                     "raw_output": reference, "output": reference, "metrics": {}})  # fmt: skip
    random.Random(0).shuffle(rows)  # matching is by id and hash, not line order
    if rows_edit:
        rows = rows_edit(rows)
    (folder / f"samples_{direction}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"directions": [direction], "samples": {direction: f"samples_{direction}.jsonl"},
            "n_samples": {direction: len(eval_set)}}  # fmt: skip


def test_check_samples_matches_by_id_and_hash_in_any_order(tmp_path):
    eval_set = _eval_set()
    results = _write_samples(tmp_path, eval_set, "caption2smiles")
    ordered = V.check_samples(tmp_path, results, eval_set, "o/lmolt-eval-3k@test")
    assert [r["id"] for r in ordered["caption2smiles"]] == [r["id"] for r in eval_set]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: rows[1:], "1 missing row"),
        (lambda rows: rows + [{**rows[0], "id": "999999999"}], "1 extra row"),
        (lambda rows: rows + [rows[0]], "appears twice"),
        (
            lambda rows: [{**rows[0], "reference": rows[0]["reference"] + "C"}] + rows[1:],
            "differs from the eval set",
        ),
        (lambda rows: [{**rows[0], "direction": "smiles2caption"}] + rows[1:], "not caption2smiles"),
        (lambda rows: [{**rows[0], "output": None}] + rows[1:], "invalid sample row"),
    ],
)
def test_check_samples_rejects_altered_rows(tmp_path, edit, message):
    eval_set = _eval_set()
    results = _write_samples(tmp_path, eval_set, "caption2smiles", edit)
    with pytest.raises(V.SubmissionError, match=message):
        V.check_samples(tmp_path, results, eval_set, "o/lmolt-eval-3k@test")


def test_check_samples_rejects_path_traversal_and_missing_files(tmp_path):
    eval_set = _eval_set()
    results = _write_samples(tmp_path, eval_set, "caption2smiles")
    with pytest.raises(V.SubmissionError, match="plain file name"):
        V.check_samples(tmp_path, {**results, "samples": {"caption2smiles": "../etc/passwd"}}, eval_set, "e")
    with pytest.raises(V.SubmissionError, match="missing"):
        V.check_samples(tmp_path, {**results, "samples": {"caption2smiles": "nope.jsonl"}}, eval_set, "e")


def test_rate_limit_and_duplicates_and_size():
    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    recent = [now - dt.timedelta(hours=h) for h in (1, 2)]
    check_rate_limit("org", now, recent + [now - dt.timedelta(hours=30)], limit=3, window_hours=24)
    with pytest.raises(V.SubmissionError, match="rate limit"):
        check_rate_limit("org", now, recent, limit=2, window_hours=24)
    record = verified_record(synthetic_results("o/lmolt-cpo", "a" * 40, 0.5, 0))
    check_duplicate(record, [verified_record(synthetic_results("o/lmolt-cpo", "b" * 40, 0.5, 0))])
    with pytest.raises(V.SubmissionError, match="duplicate"):
        check_duplicate(record, [verified_record(synthetic_results("o/lmolt-cpo", "a" * 40, 0.7, 1))])
    with pytest.raises(V.SubmissionError, match="1,073,741,824 bytes"):
        V.check_sizes_remote({"submissions/o/x/samples.jsonl": 1024**3, "submissions/o/x/results.json": 0})


def test_method_and_fusion_come_from_the_card_for_community_names(tmp_path):
    from lmolt_hub.leaderboard.records import card_method_fusion

    results = synthetic_results("someone/my-molecule-model", "a" * 40, 0.5, 0)
    assert (verified_record(results).method, verified_record(results).fusion) == (None, None)
    record = verified_record(results, card={"license": "mit", "lmolt": {"method": "SFT"}})
    assert (record.method, record.fusion) == ("sft", None)
    record = verified_record(results, card={"lmolt": {"method": "cpo", "fusion": "slerp"}})
    assert (record.method, record.fusion) == ("cpo", "slerp")
    assert card_method_fusion({"lmolt": {"kind": "merge", "method": "ties"}}) == (None, "ties")
    assert card_method_fusion({"lmolt": {"method": "rlhf-magic"}}) == (None, None)  # not one of ours
    assert card_method_fusion({"lmolt": "sft"}) == (None, None)
    # the reviewer's record of the card, and a lookup at build time
    assert verified_record(results, verification={"card": {"lmolt": {"method": "kto"}}}).method == "kto"
    root = tmp_path / "repo"
    write_submission(root, "someone/my-molecule-model", "a" * 40, 0.5, 0, pr=1)
    seen = []

    def cards(model_id, revision):
        seen.append((model_id, revision))
        return {"lmolt": {"method": "dpo", "fusion": "ties"}}

    (row,) = build(tmp_path / "site", results_root=root, include_paper=False, cards=cards)["rows"]
    assert (row["method"], row["fusion"]) == ("dpo", "ties")
    assert seen == [("someone/my-molecule-model", "a" * 40)]
