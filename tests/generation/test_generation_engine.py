"""One generation engine: negatives, the harness and the spot check generate and clean alike;
a fully cached run loads no weights; the chain's typed training settings reach the parsed recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmolt_hub.data.config import GenerationConfig, RejectedConfig
from lmolt_hub.data.negatives import ModelRejecter
from lmolt_hub.generation import Engine, GenerationParams, LoadOptions
from lmolt_hub.prompts import build_prompt

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SOURCES = ["CCO", "c1ccccc1", "CC(=O)O"]


def test_rejected_outputs_are_the_engines_cleaned_outputs(tiny_llama_dir: Path, tmp_path: Path) -> None:
    gen = GenerationConfig(batch_size=2, max_new_tokens=6, input="prompt", cache_dir=str(tmp_path / "neg"))
    rejected = ModelRejecter("smiles2caption", RejectedConfig(model=str(tiny_llama_dir)), gen, tmp_path)
    prompts = [build_prompt("smiles2caption", s) for s in SOURCES]
    engine = Engine.for_model(str(tiny_llama_dir), load=LoadOptions(dtype="float32"), use_cache=False,
                              show_progress=False)  # fmt: skip
    evaluated = engine.generate(prompts, GenerationParams(max_new_tokens=6))
    assert rejected.outputs(SOURCES) == evaluated.outputs
    assert evaluated.generated == len(SOURCES) and all(evaluated.outputs)


def test_a_fully_cached_run_loads_no_weights(tiny_llama_dir: Path, tmp_path: Path) -> None:
    params = GenerationParams(max_new_tokens=4)
    prompts = [build_prompt("caption2smiles", f"The molecule is compound {i}.") for i in range(3)]

    def engine() -> Engine:
        return Engine.for_model(str(tiny_llama_dir), cache_dir=str(tmp_path), show_progress=False)

    with engine() as first:
        made = first.generate(prompts, params)
    assert made.generated == 3 and first._backend is not None
    with engine() as again:
        cached = again.generate(prompts, params)
    assert again._backend is None  # nothing to generate: the weights were never loaded
    assert (cached.outputs, cached.generated) == (made.outputs, 0)


def test_spot_check_regenerates_in_memory(tiny_llama_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from lmolt_hub.leaderboard.validate import regenerator

    monkeypatch.chdir(tmp_path)
    results = {
        "model": {"id": str(tiny_llama_dir), "sha": None, "dtype": "float32", "load_in_4bit": False},
        "prompt_format": "card",
        "generation": {"params": {"max_new_tokens": 5, "do_sample": False, "num_beams": 1}},
    }
    rows = [{"id": str(i), "source": s, "reference": "x"} for i, s in enumerate(SOURCES)]
    outputs = regenerator(device="cpu")(results, {"smiles2caption": rows})["smiles2caption"]
    engine = Engine.for_model(str(tiny_llama_dir), load=LoadOptions(dtype="float32"), use_cache=False,
                              show_progress=False)  # fmt: skip
    prompts = [build_prompt("smiles2caption", s) for s in SOURCES]
    assert outputs == engine.generate(prompts, GenerationParams(max_new_tokens=5)).outputs
    assert list(tmp_path.iterdir()) == []  # no eval set, no results, no samples written


def test_typed_training_settings_win_over_the_recipe_and_show_as_flags(tmp_path: Path) -> None:
    from lmolt_hub.training import RecipeError, TrainSettings, parse_recipe

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "tiny" / "cpo" / "qlora.yaml"
    settings = TrainSettings(model_name_or_path="someone/merge", model_revision="a" * 40,
                             output_dir=str(tmp_path / "out"), push_to_hub=True, hub_model_id="someone/m-cpo")  # fmt: skip
    script, training, model = parse_recipe(
        "cpo", str(recipe), ["--output_dir", "elsewhere"], settings.values()
    )
    assert (model.model_name_or_path, model.model_revision) == ("someone/merge", "a" * 40)
    assert (training.output_dir, training.push_to_hub, training.hub_model_id) == (
        str(tmp_path / "out"), True, "someone/m-cpo",
    )  # fmt: skip
    assert settings.as_flags()[:2] == ["--model_name_or_path", "someone/merge"]
    assert "--push_to_hub" in settings.as_flags() and "true" in settings.as_flags()
    with pytest.raises(RecipeError, match="unknown training setting 'no_such_field'"):
        parse_recipe("cpo", str(recipe), [], {"no_such_field": 1})
