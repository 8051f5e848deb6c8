"""Merges of tiny Llamas through mergekit's library API: SLERP, TIES, adapters, checks, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("mergekit")

from safetensors.torch import load_file  # noqa: E402

from lmolt_hub.merging import MergeConfigError, load_merge_config, merge_from_config  # noqa: E402
from lmolt_hub.merging.checks import MergeCheckError  # noqa: E402
from lmolt_hub.merging.publish import push_merge  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    from lmolt_hub.tiny import build_tiny_tokenizer

    return build_tiny_tokenizer()


def _save(path: Path, tokenizer, seed: int, **kwargs) -> Path:
    from lmolt_hub.tiny import build_tiny_llama

    build_tiny_llama(tokenizer, seed=seed, **kwargs).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, tokenizer) -> dict[str, Path]:
    """base (common ancestor), a, b: same architecture and tokenizer, different seeds."""
    root = tmp_path_factory.mktemp("merge-models")
    return {name: _save(root / name, tokenizer, seed) for name, seed in (("base", 0), ("a", 1), ("b", 2))}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for f in sorted(path.glob("*.safetensors")):
        out.update(load_file(f))
    return out


def _write(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def _slerp(a: Path, b: Path, t: float) -> dict:
    return {
        "merge_method": "slerp",
        "base_model": str(a),
        "models": [{"model": str(a)}, {"model": str(b)}],
        "parameters": {"t": t},
        "dtype": "float32",
    }


def _dist(x: dict, y: dict) -> float:
    return sum(float((x[k].float() - y[k].float()).norm()) for k in x)


def test_slerp_19_to_1_lands_near_base_and_writes_card(models, tmp_path):
    cfg = _write(tmp_path / "slerp.yaml", _slerp(models["a"], models["b"], 0.05))
    meta = merge_from_config(cfg, tmp_path / "out")
    out = tmp_path / "out"
    assert meta["method"] == "slerp" and meta["hub_revision"] is None
    merged, a, b = _weights(out), _weights(models["a"]), _weights(models["b"])
    assert merged.keys() == a.keys()
    # 19:1 towards the base: far closer to a than to b, but not equal to a
    assert 0 < _dist(merged, a) < _dist(merged, b) / 10
    assert meta["checks"]["tensors"] == len(a) and "sample_generation" in meta["checks"]
    from lmolt_hub.hub.cards import parse_card

    data, body = parse_card((out / "README.md").read_text())
    assert data["lmolt"]["kind"] == "merge" and data["lmolt"]["method"] == "slerp"
    assert {p["id"] for p in data["lmolt"]["parents"]} == {str(models["a"]), str(models["b"])}
    assert "t: 0.05" in body  # the recipe, verbatim
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.partial")]


def test_slerp_t0_is_the_base_exactly(models, tmp_path):
    cfg = _write(tmp_path / "slerp0.yaml", _slerp(models["a"], models["b"], 0.0))
    merge_from_config(cfg, tmp_path / "out", check_generation=False)
    merged, a = _weights(tmp_path / "out"), _weights(models["a"])
    assert all(torch.equal(merged[k], a[k]) for k in a)


def _ties_reference(base, tensors, weights, density):
    """TIES (Yadav et al. 2023) written out: trim, elect sign, disjoint weighted mean."""
    deltas = []
    for t in tensors:
        d = t - base
        k = int(density * d.numel())
        keep = torch.zeros(d.numel(), dtype=torch.bool)
        keep[d.abs().flatten().topk(k).indices] = True
        deltas.append(d * keep.view_as(d))
    w = torch.tensor(weights).view(-1, 1, 1)
    stacked = torch.stack(deltas) * w
    sign = torch.where(stacked.sum(0) >= 0, 1.0, -1.0)
    agree = (torch.sign(stacked) == sign) & (stacked != 0)
    divisor = (w * agree).sum(0)
    mixed = (stacked * agree).sum(0) / torch.where(divisor == 0, 1.0, divisor)
    return base + mixed


def test_ties_weights_and_density(models, tmp_path):
    recipe = {
        "merge_method": "ties",
        "base_model": str(models["base"]),
        "models": [
            {"model": str(models["a"]), "parameters": {"weight": 0.95, "density": 0.5}},
            {"model": str(models["b"]), "parameters": {"weight": 0.05, "density": 0.5}},
        ],
        "dtype": "float32",
    }
    meta = merge_from_config(_write(tmp_path / "ties.yaml", recipe), tmp_path / "out", check_generation=False)
    merged, base = _weights(tmp_path / "out"), _weights(models["base"])
    a = _weights(models["a"])
    b = _weights(models["b"])
    key = "model.layers.0.mlp.down_proj.weight"
    expected = _ties_reference(base[key], [a[key], b[key]], [0.95, 0.05], density=0.5)
    assert torch.allclose(merged[key], expected, atol=1e-5)
    # density 0.5 on two parents: about a quarter of the entries keep no delta at all
    assert 0.2 < (merged[key] == base[key]).float().mean() < 0.35
    assert _dist(merged, a) < _dist(merged, _weights(models["b"]))
    roles = {Path(p["id"]).name: p["role"] for p in meta["parents"]}
    assert roles == {"base": "base", "a": "input", "b": "input"}


def test_rerun_reuses_complete_merge(models, tmp_path):
    cfg = _write(tmp_path / "slerp.yaml", _slerp(models["a"], models["b"], 0.05))
    merge_from_config(cfg, tmp_path / "out", check_generation=False)
    again = merge_from_config(cfg, tmp_path / "out", check_generation=False)
    assert again["reused"] is True
    with pytest.raises(MergeConfigError, match="not empty"):  # a different recipe into the same dir
        merge_from_config(
            _write(tmp_path / "s2.yaml", _slerp(models["a"], models["b"], 0.1)), tmp_path / "out"
        )


def test_lora_adapter_references(models, tmp_path, tokenizer):
    """`base+adapter` and a bare adapter (naming its base) are merged into the base first."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(models["a"])
    peft_model = get_peft_model(
        model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(models["a"])
    for i, ref in enumerate((f"{models['a']}+{tmp_path / 'adapter'}", str(tmp_path / "adapter"))):
        recipe = _slerp(models["base"], models["b"], 0.0)
        recipe["models"][1]["model"] = ref
        recipe["parameters"]["t"] = 1.0  # output == the adapter merged into a
        meta = merge_from_config(
            _write(tmp_path / f"r{i}.yaml", recipe), tmp_path / f"out{i}", check_generation=False
        )
        merged, a = _weights(tmp_path / f"out{i}"), _weights(models["a"])
        q = "model.layers.0.self_attn.q_proj.weight"
        assert not torch.allclose(merged[q], a[q])  # the LoRA delta is in
        k = "model.layers.0.self_attn.k_proj.weight"
        assert torch.allclose(merged[k], a[k], atol=1e-6)  # untouched by the adapter
        parent = next(p for p in meta["parents"] if p.get("adapter"))
        assert parent["adapter"]["id"] == str(tmp_path / "adapter")


# ---------------------------------------------------------------------------------------------
# bad input: clear errors before anything is written


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r["parameters"].update(t=19), r"t=19\.0 is outside \[0, 1\]"),
        (lambda r: r["parameters"].update(t=[0.0, 1.5]), r"outside \[0, 1\]"),
        (lambda r: r["models"][1].update(parameters={"weight": -0.1}), r"weight=-0\.1 is outside"),
        (lambda r: r.update(merge_method="frankenmerge"), "unknown merge_method 'frankenmerge'"),
        (lambda r: r["models"][1].update(model="/nonexistent/parent"), "not found"),
        (lambda r: r["models"][1].update(model="no-such-org/no-such-model"), "not found"),
        (lambda r: r.pop("merge_method"), "needs a `merge_method`"),
    ],
)
def test_bad_recipes_fail_before_writing(models, tmp_path, mutate, message):
    recipe = _slerp(models["a"], models["b"], 0.05)
    mutate(recipe)
    with pytest.raises(MergeConfigError, match=message):
        merge_from_config(_write(tmp_path / "bad.yaml", recipe), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_mismatched_vocab_and_architecture(models, tmp_path):
    from lmolt_hub.tiny import build_tiny_tokenizer

    small_tok = build_tiny_tokenizer(vocab_size=600)
    other_vocab = _save(tmp_path / "v600", small_tok, seed=3)
    wider = _save(tmp_path / "wide", build_tiny_tokenizer(), seed=3, hidden_size=96)
    for other, message in ((other_vocab, "vocabulary sizes differ"), (wider, "differ in hidden_size")):
        with pytest.raises(MergeCheckError, match=message):
            merge_from_config(_write(tmp_path / "m.yaml", _slerp(models["a"], other, 0.05)), tmp_path / "out")
        assert not (tmp_path / "out").exists()
    # same size, different tokens: still refused, unless a tokenizer_source is named
    shutil.copytree(models["b"], tmp_path / "b2")
    tj = json.loads((tmp_path / "b2" / "tokenizer.json").read_text())
    vocab = tj["model"]["vocab"]
    a_tok, b_tok = sorted(vocab, key=vocab.get)[300:302]
    vocab[a_tok], vocab[b_tok] = vocab[b_tok], vocab[a_tok]
    (tmp_path / "b2" / "tokenizer.json").write_text(json.dumps(tj))
    with pytest.raises(MergeCheckError, match="tokenizers differ"):
        merge_from_config(
            _write(tmp_path / "m.yaml", _slerp(models["a"], tmp_path / "b2", 0.05)), tmp_path / "out"
        )
    from lmolt_hub.merging.checks import pre_merge_checks

    recipe = _slerp(models["a"], tmp_path / "b2", 0.05) | {"tokenizer_source": "base"}
    pre_merge_checks(load_merge_config(_write(tmp_path / "ok.yaml", recipe)))


def test_interrupted_merge_leaves_nothing(models, tmp_path, monkeypatch, local_hub):
    import lmolt_hub.merging.merge as run_mod

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "post_merge_checks", boom)
    cfg = _write(tmp_path / "slerp.yaml", _slerp(models["a"], models["b"], 0.05))
    with pytest.raises(KeyboardInterrupt):
        merge_from_config(cfg, tmp_path / "out", push_to="org/never-pushed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slerp.yaml"]
    from huggingface_hub import HfApi

    assert not HfApi().repo_exists("org/never-pushed")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.safetensors").write_bytes(b"partial")
    with pytest.raises(MergeConfigError, match="no completed merge"):
        push_merge(tmp_path / "half", "org/never-pushed")


def test_nan_weights_are_caught(models, tmp_path):
    from safetensors.torch import save_file

    from lmolt_hub.merging.checks import check_finite

    shutil.copytree(models["a"], tmp_path / "m")
    w = _weights(tmp_path / "m")
    w["model.norm.weight"][3] = float("nan")
    save_file(w, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(MergeCheckError, match="model.norm.weight.*NaN"):
        check_finite(tmp_path / "m")


def test_cli_merge_and_bad_ratio(models, tmp_path, capsys):
    import argparse

    from lmolt_hub.merging import cli

    def run(*argv: str) -> int:
        parser = argparse.ArgumentParser()
        cli.add_arguments(parser)
        return cli.main(parser.parse_args(list(argv)))

    recipe = _slerp(models["a"], models["b"], 0.05)
    recipe["models"][1]["model"] = "${other}"
    cfg = _write(tmp_path / "slerp.yaml", recipe)
    out = tmp_path / "out"
    assert (
        run("--config", str(cfg), "--out", str(out), "--var", f"other={models['b']}", "--no-generation-check")
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert shown["method"] == "slerp" and shown["output_dir"] == str(out) and shown["hub_revision"] is None
    assert shown["parents"] == [f"{models['a']}@local", f"{models['b']}@local"]
    assert run("--config", str(cfg), "--out", str(tmp_path / "o2")) == 2  # ${other} has no value
    assert "${other}" in capsys.readouterr().err
    recipe["parameters"]["t"] = 1.5
    assert run("--config", str(_write(tmp_path / "bad.yaml", recipe)), "--var", "other=x") == 2
    assert "t=1.5 is outside [0, 1]" in capsys.readouterr().err


def test_ties_with_tokenizer_source_when_parents_add_a_token(models, tmp_path, tokenizer):
    """The Meditron TIES recipe's situation: fine-tuned parents with an added token, a base without."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for name in ("a", "b"):
        tok = AutoTokenizer.from_pretrained(models[name])
        tok.add_special_tokens({"additional_special_tokens": ["<extra>"]})
        model = AutoModelForCausalLM.from_pretrained(models[name])
        model.resize_token_embeddings(len(tok))
        model.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    recipe = {
        "merge_method": "ties",
        "base_model": str(models["base"]),
        "models": [
            {"model": str(tmp_path / "a"), "parameters": {"weight": 0.95, "density": 0.5}},
            {"model": str(tmp_path / "b"), "parameters": {"weight": 0.05, "density": 0.5}},
        ],
        "parameters": {"normalize": True},
        "dtype": "float32",
    }
    with pytest.raises(MergeCheckError, match="vocabulary sizes differ"):
        merge_from_config(_write(tmp_path / "no-source.yaml", recipe), tmp_path / "out")
    recipe["tokenizer_source"] = str(tmp_path / "a")
    merge_from_config(_write(tmp_path / "ties.yaml", recipe), tmp_path / "out")  # incl. load + generate
    out_tok = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert "<extra>" in out_tok.get_vocab()
    merged = _weights(tmp_path / "out")
    assert merged["model.embed_tokens.weight"].shape[0] == len(out_tok)
    gen = json.loads((tmp_path / "out" / "generation_config.json").read_text())
    assert gen["eos_token_id"] == out_tok.eos_token_id
