"""The shipped TIES and SLERP recipes realise the paper's 0.95 / 0.05 towards the L->M model.

TIES: the paper-row recipes run mergekit as-is (``normalize: true``: a delta that survives alone enters
at full weight); ``ties-19to1.yaml`` (``normalize: false``) is exactly 19:1 at every weight.

Each shipped recipe is run through mergekit's library API with its own parameters, its model
references swapped for tiny Llamas built here: a common base and two "fine-tunes" of it (the
base plus small, independent perturbations), like the two LPM-24 Meditron models.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("mergekit")

from safetensors.torch import load_file  # noqa: E402

from lmolt_hub.merging import merge_from_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TIES_RECIPES = [ROOT / "recipes/meditron-7b/merges/ties.yaml", ROOT / "recipes/tiny/merges/ties.yaml",
                ROOT / "recipes/meditron-7b/merges/ties-19to1.yaml"]  # fmt: skip
SLERP_RECIPES = [ROOT / "recipes/meditron-7b/merges/slerp.yaml", ROOT / "recipes/tiny/merges/slerp.yaml"]


def _finetune(base, seed: int, scale: float):
    """A copy of ``base`` with every tensor moved by ``scale`` x its own spread (a fine-tune's delta)."""
    import copy

    model = copy.deepcopy(base)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            spread = p.float().std() if p.numel() > 1 else p.abs().float()
            p.add_(torch.randn(p.shape, generator=gen) * scale * (spread + 1e-3))
    return model


def _models(root: Path, scale: float) -> dict[str, Path]:
    from lmolt_hub.tiny import build_tiny_llama, build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    base = build_tiny_llama(tok, seed=0)
    out = {"base": base, "lm": _finetune(base, 1, scale), "ml": _finetune(base, 2, scale)}
    paths = {}
    for name, model in out.items():
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
        paths[name] = root / name
    return paths


def _role(ref: str) -> str:
    """L->M is caption2smiles, M->L smiles2caption; anything else is the common base."""
    return "lm" if "caption2smiles" in ref else "ml" if "smiles2caption" in ref else "base"


def _local(recipe: Path, paths: dict[str, Path], tmp: Path) -> tuple[dict, Path]:
    """The shipped recipe with its model references replaced by the tiny models (float32 output)."""
    raw = yaml.safe_load(recipe.read_text())
    raw["base_model"] = str(paths[_role(raw["base_model"])])
    for m in raw["models"]:
        m["model"] = str(paths[_role(m["model"])])
    raw.pop("tokenizer_source", None)  # the tiny models share one tokenizer
    raw["dtype"] = "float32"  # compare exactly (the Meditron recipe writes bfloat16)
    path = tmp / recipe.name
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return raw, path


def _weights(path: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for f in sorted(path.glob("*.safetensors")):
        out.update(load_file(f))
    return out


def _trim(delta: torch.Tensor, density: float) -> torch.Tensor:
    """TIES trimming written out: keep the int(density * n) largest magnitudes."""
    k = max(1, int(density * delta.numel()))
    keep = torch.zeros(delta.numel(), dtype=torch.bool)
    keep[delta.abs().flatten().topk(k).indices] = True
    return delta * keep.view_as(delta)


@pytest.fixture(scope="module")
def finetunes(tmp_path_factory) -> dict[str, Path]:
    return _models(tmp_path_factory.mktemp("ratio-models"), scale=0.5)


def test_paper_rows_run_mergekit_ties_as_is_and_the_variant_is_exact():
    normalize = {p.relative_to(ROOT / "recipes").as_posix(): yaml.safe_load(p.read_text())["parameters"]["normalize"]
                 for p in TIES_RECIPES}  # fmt: skip
    assert normalize == {"meditron-7b/merges/ties.yaml": True, "tiny/merges/ties.yaml": True,
                         "meditron-7b/merges/ties-19to1.yaml": False}  # fmt: skip
    for chain in ("ties-cpo", "ties-dpo"):  # the TIES paper rows merge with the as-is recipe
        merge = yaml.safe_load((ROOT / "recipes/meditron-7b" / chain / "chain.yaml").read_text())["merge"]
        assert merge["config"] == "../merges/ties.yaml" and merge["name"] == "lmolt-ties"


@pytest.mark.parametrize("recipe", TIES_RECIPES, ids=lambda p: "/".join(p.parts[-3::2]))
def test_ties_recipe_is_19_to_1_where_both_deltas_survive(recipe, finetunes, tmp_path):
    raw, cfg = _local(recipe, finetunes, tmp_path)
    params = {_role_of(m["model"], finetunes): m["parameters"] for m in raw["models"]}
    w_lm, w_ml = params["lm"]["weight"], params["ml"]["weight"]
    assert (w_lm, w_ml) == (0.95, 0.05) and raw["merge_method"] == "ties"
    normalize = raw["parameters"]["normalize"]
    lone = (1.0, 1.0) if normalize else (w_lm, w_ml)  # the weight a delta that survives alone gets
    merge_from_config(cfg, tmp_path / "out", check_generation=False)
    merged, base = _weights(tmp_path / "out"), _weights(finetunes["base"])
    lm, ml = _weights(finetunes["lm"]), _weights(finetunes["ml"])
    counts = {"both": 0, "lm only": 0, "ml only": 0}
    for key in base:
        d_lm = _trim(lm[key] - base[key], params["lm"]["density"])
        d_ml = _trim(ml[key] - base[key], params["ml"]["density"])
        elected = torch.where(w_lm * d_lm + w_ml * d_ml >= 0, 1.0, -1.0)
        s_lm = (d_lm != 0) & (torch.sign(d_lm) == elected)  # survives trimming and sign election
        s_ml = (d_ml != 0) & (torch.sign(d_ml) == elected)
        delta = merged[key] - base[key]
        both, lm_only, ml_only = s_lm & s_ml, s_lm & ~s_ml, s_ml & ~s_lm
        # the stated ratio, exactly, wherever both deltas survive trimming and agree in sign
        torch.testing.assert_close(delta[both], (w_lm * d_lm + w_ml * d_ml)[both], atol=1e-6, rtol=1e-5)
        # where only one survives: at full weight (normalize: true) or its own (false)
        torch.testing.assert_close(delta[lm_only], (lone[0] * d_lm)[lm_only], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(delta[ml_only], (lone[1] * d_ml)[ml_only], atol=1e-6, rtol=1e-5)
        assert torch.all(delta[~(s_lm | s_ml)] == 0)
        counts["both"] += int(both.sum())
        counts["lm only"] += int(lm_only.sum())
        counts["ml only"] += int(ml_only.sum())
    assert all(n > 1000 for n in counts.values()), counts  # every case was actually exercised
    card = (tmp_path / "out" / "README.md").read_text()
    if normalize:
        assert "`normalize=True`" in card and "applied at full weight" in card
    else:
        assert "`normalize=False`" in card and "keeps its own weight" in card


def _role_of(path: str, paths: dict[str, Path]) -> str:
    return next(name for name, p in paths.items() if str(p) == path)


def test_the_two_ties_recipes_differ_exactly_where_one_delta_survives_alone(finetunes, tmp_path):
    """normalize: true (paper rows) and false (19:1 variant) agree wherever both deltas survive."""
    out = {}
    for recipe in (TIES_RECIPES[0], TIES_RECIPES[2]):
        (tmp_path / recipe.stem).mkdir()
        _, cfg = _local(recipe, finetunes, tmp_path / recipe.stem)
        merge_from_config(cfg, tmp_path / recipe.stem / "out", check_generation=False)
        out[recipe.stem] = _weights(tmp_path / recipe.stem / "out")
    key = "model.layers.0.mlp.down_proj.weight"
    base = _weights(finetunes["base"])[key]
    d_lm = _trim(_weights(finetunes["lm"])[key] - base, 0.5)
    d_ml = _trim(_weights(finetunes["ml"])[key] - base, 0.5)
    full, exact = out["ties"][key] - base, out["ties-19to1"][key] - base
    lm_only = (d_lm != 0) & (d_ml == 0)
    torch.testing.assert_close(full[lm_only], d_lm[lm_only], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(exact[lm_only], 0.95 * d_lm[lm_only], atol=1e-6, rtol=1e-5)
    both = (d_lm != 0) & (d_ml != 0) & (torch.sign(d_lm) == torch.sign(d_ml))
    assert int(both.sum()) > 100
    torch.testing.assert_close(full[both], exact[both], atol=1e-6, rtol=1e-5)
    # bench/ties_variants.py's survival count (run there on the cpu study's trained bases) reproduces
    # both merged files from its formula, and its categories cover every weight
    import importlib.util

    spec = importlib.util.spec_from_file_location("ties_variants", ROOT / "bench/ties_variants.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    share = bench.survival(finetunes["base"], finetunes["lm"], finetunes["ml"],
                           {True: tmp_path / "ties" / "out", False: tmp_path / "ties-19to1" / "out"})  # fmt: skip
    assert share["weights"] == sum(v.numel() for v in _weights(finetunes["base"]).values())
    assert share["counts"]["lm_only"] > 0 and share["counts"]["ml_only"] > 0
    assert max(share["max_abs_deviation_from_formula"].values()) < 1e-5


def _row_coefficients(merged: torch.Tensor, v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
    """Per output row, (a, b) with merged = a * v0 + b * v1, by least squares."""
    x = torch.stack([v0.reshape(v0.shape[0], -1), v1.reshape(v1.shape[0], -1)], dim=-1).double()
    y = merged.reshape(merged.shape[0], -1, 1).double()
    return torch.linalg.lstsq(x, y).solution.squeeze(-1)


@pytest.mark.parametrize("recipe", SLERP_RECIPES, ids=lambda p: p.parent.parent.name)
def test_slerp_recipe_is_19_to_1_towards_the_lm_model(recipe, tmp_path):
    # Fine-tunes move weights by ~1% of their spread, so each row of the two models is nearly
    # parallel (as for the two LPM-24 models): SLERP is then 0.95 * L->M + 0.05 * M->L.
    paths = _models(tmp_path / "models", scale=0.01)
    raw, cfg = _local(recipe, paths, tmp_path)
    assert raw["base_model"] == str(paths["lm"]) and raw["parameters"]["t"] == 0.05
    merge_from_config(cfg, tmp_path / "out", check_generation=False)
    merged, lm, ml = _weights(tmp_path / "out"), _weights(paths["lm"]), _weights(paths["ml"])
    for key in lm:
        torch.testing.assert_close(merged[key], 0.95 * lm[key] + 0.05 * ml[key], atol=1e-6, rtol=1e-5)
    key = "model.layers.0.self_attn.q_proj.weight"
    coef = _row_coefficients(merged[key], lm[key], ml[key])
    assert torch.allclose(coef[:, 0] / coef[:, 1], torch.full_like(coef[:, 0], 19.0), rtol=1e-3)


def test_slerp_between_tensors_far_apart_follows_the_sine_weights(tmp_path):
    """Tensors at angle theta get sin(0.95 theta) : sin(0.05 theta), below 19:1 (documented)."""
    paths = _models(tmp_path / "models", scale=0.5)
    _, cfg = _local(SLERP_RECIPES[0], paths, tmp_path)
    merge_from_config(cfg, tmp_path / "out", check_generation=False)
    key = "model.layers.0.self_attn.q_proj.weight"
    merged, v0, v1 = (_weights(p)[key] for p in (tmp_path / "out", paths["lm"], paths["ml"]))
    cos = torch.nn.functional.cosine_similarity(v0.flatten().double(), v1.flatten().double(), dim=0)
    theta = torch.acos(cos)
    assert float(theta) > 0.1  # far enough apart that SLERP is not the linear fallback
    expected = torch.stack([torch.sin(0.95 * theta), torch.sin(0.05 * theta)]) / torch.sin(theta)
    coef = _row_coefficients(merged, v0, v1)  # the same (a, b) in every row: the angle is per tensor
    torch.testing.assert_close(coef, expected.expand_as(coef), atol=2e-5, rtol=1e-4)
    assert float(expected[0] / expected[1]) < 19  # sin(0.95 x) / sin(0.05 x) < 19 for x > 0
