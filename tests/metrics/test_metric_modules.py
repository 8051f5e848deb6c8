"""Issue 22 section 1: the metric modules as Hub Spaces, and the harness scoring through them.

On the session's local Hub: ``lmolt-hub metrics push`` publishes the three Spaces; ``evaluate.load``
loads them by Hub id (and by revision, and from a local path); their ``compute()`` equals the
harness's numbers for the bundled MolT5-large predictions; the results record each module's id and
revision; an eval set pins module revisions and the harness / reviewer score with the pinned ones.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmolt_hub.formats.direction import Direction
from lmolt_hub.metrics import METRICS_VERSION
from lmolt_hub.resources import molt5_predictions

ORG = "mmods"
ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "eval_harness" / "metrics"
N_FAST = 300  # rows of each MolT5-large file in the default suite (the whole files: the slow test)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pushed(local_hub) -> dict[str, dict[str, str]]:
    from lmolt_hub.metrics.spaces import push_modules

    return push_modules(ORG)


def _subset(tmp: Path, direction: str, n: int | None) -> Path:
    """The first ``n`` rows of the bundled MolT5-large file of ``direction`` (header kept)."""
    src = molt5_predictions("large", direction)
    if n is None:
        return src
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    out = tmp / f"molt5-large-{direction}-{n}.txt"
    out.write_text("".join(lines[: n + 1]), encoding="utf-8")
    return out


def _pairs(path: Path) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["output"] for r in rows], [r["ground truth"] for r in rows]


def _harness(path: Path, direction: str, out: Path, **kw) -> dict:
    from lmolt_hub.evaluation import score_predictions_file

    return score_predictions_file(
        path, direction, output_dir=out, bootstrap_resamples=0, eval_dataset=str(path), **kw
    )


def _check_equal_to_harness(pushed, tmp_path, n: int | None, nli_dir: Path | None = None) -> None:
    import evaluate

    for direction, name in (("caption2smiles", "lmolt_molecule"), ("smiles2caption", "lmolt_caption")):
        path = _subset(tmp_path, direction, n)
        nli = {"nli_model": str(nli_dir)} if nli_dir and direction == "smiles2caption" else {}
        hallucination = direction == "caption2smiles" or bool(nli)
        doc = _harness(path, direction, tmp_path / "results", hallucination=hallucination, **nli)
        assert doc["metric_modules"][name]["source"] == "bundled"  # the harness ran the same script
        preds, refs = _pairs(path)
        module = evaluate.load(f"{ORG}/{name}")
        assert isinstance(module, evaluate.EvaluationModule)
        got = module.compute(predictions=preds, references=refs)
        assert got == doc["results"][direction]  # to the last digit: exact float equality
        if hallucination:
            hal = evaluate.load(f"{ORG}/lmolt_hallucination").compute(
                predictions=preds, references=refs, direction=direction, **nli
            )
            assert hal == doc["hallucination"][direction]


def test_push_writes_spaces_as_evaluate_expects(pushed, local_hub):
    from huggingface_hub import HfApi

    from lmolt_hub import __version__
    from lmolt_hub.metrics.modules import content_hash

    api = HfApi()
    assert set(pushed) == {"lmolt_caption", "lmolt_molecule", "lmolt_hallucination"}
    for name, pin in pushed.items():
        assert pin["id"] == f"{ORG}/{name}" and len(pin["revision"]) == 40
        info = api.space_info(pin["id"], revision=pin["revision"])
        files = {s.rfilename for s in info.siblings}
        assert {f"{name}.py", "README.md", "requirements.txt", "app.py"} <= files
        script = Path(
            api.hf_hub_download(pin["id"], f"{name}.py", repo_type="space", revision=pin["revision"])
        )
        assert content_hash(script) == content_hash(MODULE_DIR / name / f"{name}.py")  # byte for byte
        card = Path(api.hf_hub_download(pin["id"], "README.md", repo_type="space")).read_text()
        assert card.startswith("---\n") and "sdk: gradio" in card and "- evaluate\n- metric" in card
        for section in ("## Metric description", "### Inputs", "### Output values", "## Citation"):
            assert section in card, (name, section)
        assert "Edwards" in card and f'evaluate.load("{ORG}/{name}")' in card
        req = Path(api.hf_hub_download(pin["id"], "requirements.txt", repo_type="space")).read_text()
        from packaging.requirements import Requirement

        parsed = Requirement(req.strip())
        assert parsed.name == "lmolt-hub" and parsed.specifier.contains(__version__)
        assert not parsed.specifier.contains("1.0.0")  # a compatible range, not "anything"
    card = Path(api.hf_hub_download(f"{ORG}/lmolt_molecule", "README.md", repo_type="space")).read_text()
    for key in ("exact_match", "levenshtein", "fcd", "validity", "uniqueness", "morgan_fts"):
        assert f"`{key}`" in card
    # pushing unchanged files makes no new commit: the pinned revision stays the head
    from lmolt_hub.metrics.spaces import push_modules

    assert push_modules(ORG) == pushed


def test_compute_by_hub_id_equals_the_harness(pushed, tmp_path, session_dir):
    """evaluate.load("<org>/<module>") from the local Hub: compute() gives the harness's numbers
    (the molecule, caption and hallucination modules; M->L hallucination with the tiny NLI model)."""
    from lmolt_hub.tiny import save_tiny_nli

    nli_dir = session_dir / "mmods-tiny-nli"
    if not (nli_dir / "config.json").exists():
        save_tiny_nli(nli_dir)
    _check_equal_to_harness(pushed, tmp_path, N_FAST, nli_dir)


@pytest.mark.slow
def test_compute_on_the_whole_molt5_large_files_equals_the_harness(pushed, tmp_path):
    _check_equal_to_harness(pushed, tmp_path, None)


def test_local_path_and_details_give_the_harness_per_sample_values(tmp_path):
    import evaluate

    from lmolt_hub.metrics.scoring import score_direction

    path = _subset(tmp_path, "caption2smiles", 40)
    preds, refs = _pairs(path)
    module = evaluate.load(str(MODULE_DIR / "lmolt_molecule"))
    got = module.compute(predictions=preds, references=refs, fcd=False, details=True)
    harness = score_direction("caption2smiles", preds, refs, options={"fcd": False}, hallucination=False,
                              bootstrap_resamples=0)  # fmt: skip
    assert got.pop("per_sample") == harness.per_sample
    assert got == harness.corpus
    assert module.higher_is_better["levenshtein"] is False
    with pytest.raises(TypeError, match="belong to lmolt_hallucination"):
        module.compute(predictions=preds, references=refs, nli_model="x")


def test_revision_pinning(local_hub):
    """A later commit of a Space does not change what a pinned revision computes; a module written
    for other metric definitions refuses to score (no silent re-ranking)."""
    import evaluate
    from huggingface_hub import CommitOperationAdd, HfApi

    from lmolt_hub.metrics.hf_evaluate import ModuleVersionError
    from lmolt_hub.metrics.modules import ModuleError, resolve, run_modules
    from lmolt_hub.metrics.spaces import push_modules

    org = "mmodspin"  # its own Space: the other tests load <ORG>/lmolt_molecule at main
    space = f"{org}/lmolt_molecule"
    old = push_modules(org, ("lmolt_molecule",))["lmolt_molecule"]["revision"]
    script = (MODULE_DIR / "lmolt_molecule" / "lmolt_molecule.py").read_text()
    newer = script.replace(f'METRICS_VERSION = "{METRICS_VERSION}"', 'METRICS_VERSION = "99.0.0"')
    assert newer != script
    new = HfApi().create_commit(space, [CommitOperationAdd("lmolt_molecule.py", newer.encode())],
                                commit_message="metrics 99", repo_type="space").oid  # fmt: skip
    preds, refs = ["CCO", "c1ccccc1"], ["OCC", "c1ccccc1"]
    pinned = evaluate.load(space, revision=old)
    assert pinned.compute(predictions=preds, references=refs, fcd=False)["exact_match"] == 1.0
    with pytest.raises(ModuleVersionError, match="99.0.0"):
        evaluate.load(space).compute(predictions=preds, references=refs, fcd=False)  # main = the new one
    assert resolve("lmolt_molecule", space).revision == new
    assert resolve("lmolt_molecule", space, old).revision == old
    ok = run_modules({"lmolt_molecule": {"id": space, "revision": old}})
    assert ok.refs["lmolt_molecule"].revision == old
    with pytest.raises(ModuleVersionError, match="99.0.0"):
        run_modules({"lmolt_molecule": {"id": space, "revision": new}})
    with pytest.raises(ModuleError, match="not found"):
        resolve("lmolt_molecule", space, "no-such-branch")
    with pytest.raises(ModuleError, match="not named lmolt_molecule"):
        resolve("lmolt_molecule", f"{org}/lmolt_caption")


def test_results_record_each_module_id_and_revision(pushed, tmp_path):
    from lmolt_hub.metrics.modules import content_hash

    path = _subset(tmp_path, "caption2smiles", 20)
    pin = pushed["lmolt_molecule"]
    doc = _harness(path, "caption2smiles", tmp_path / "r1",
                   metric_modules={"lmolt_molecule": f"{pin['id']}@{pin['revision']}"})  # fmt: skip
    assert doc["metric_modules"]["lmolt_molecule"] == {
        "id": pin["id"], "revision": pin["revision"], "metrics_version": METRICS_VERSION, "source": "hub",
    }  # fmt: skip
    bundled = doc["metric_modules"]["lmolt_hallucination"]
    assert bundled["source"] == "bundled" and bundled["id"] == "lmolt_hallucination"
    assert bundled["revision"] == content_hash(MODULE_DIR / "lmolt_hallucination" / "lmolt_hallucination.py")
    assert "lmolt_caption" not in doc["metric_modules"]  # only the modules that scored
    local = _harness(path, "caption2smiles", tmp_path / "r2", hallucination=False,
                     metric_modules={"lmolt_molecule": str(MODULE_DIR / "lmolt_molecule")})  # fmt: skip
    assert set(local["metric_modules"]) == {"lmolt_molecule"}
    assert local["metric_modules"]["lmolt_molecule"]["source"] == "local"
    assert local["results"] == doc["results"]  # the same script: the same numbers


def test_the_harness_never_imports_evaluate(tmp_path):
    code = (
        "import sys\n"
        "from lmolt_hub.metrics.scoring import score_direction\n"
        "s = score_direction('caption2smiles', ['CCO', 'xx'], ['OCC', 'CC'], options={'fcd': False},"
        " bootstrap_resamples=5)\n"
        "assert s.corpus['exact_match'] == 0.5 and s.hallucination['win_rate'] == 0.5, s\n"
        "print('evaluate' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"


def test_eval_set_pins_module_revisions(pushed, local_hub, tmp_path):
    """The data stage writes the pins (resolved to commit shas); metric_config.json refuses paths
    and branches; the harness and the reviewer score with the pinned modules."""
    from lmolt_hub.data.config import EvalMetricsConfig
    from lmolt_hub.data.eval_set import metric_config_bytes
    from lmolt_hub.metrics.metric_config import MetricConfigError, parse_metric_config

    class Recipe:  # the two fields metric_config_bytes reads
        fcd_convention = "fcd_1.1"
        metrics = EvalMetricsConfig(
            modules={"lmolt_caption": f"{ORG}/lmolt_caption", "lmolt_molecule": f"{ORG}/lmolt_molecule@main"}
        )

    doc = json.loads(metric_config_bytes(Recipe(), None))
    assert doc["modules"] == {n: pushed[n] for n in ("lmolt_caption", "lmolt_molecule")}
    cfg = parse_metric_config(doc)
    refs = cfg.run_modules().refs
    assert refs["lmolt_caption"].revision == pushed["lmolt_caption"]["revision"]
    assert refs["lmolt_hallucination"].source == "bundled"
    for bad in (
        {"lmolt_caption": {"id": "/tmp/evil", "revision": "a" * 40}},
        {"lmolt_caption": {"id": f"{ORG}/lmolt_caption", "revision": "main"}},
        {"lmolt_caption": {"id": f"{ORG}/lmolt_molecule", "revision": "a" * 40}},
        {"lmolt_bleu": {"id": f"{ORG}/lmolt_bleu", "revision": "a" * 40}},
    ):
        with pytest.raises(MetricConfigError, match="modules"):
            parse_metric_config({"modules": bad})


def test_reviewer_rescores_with_the_pinned_modules(pushed, tmp_path, monkeypatch):
    from lmolt_hub.leaderboard import validate
    from lmolt_hub.metrics import scoring
    from lmolt_hub.metrics.metric_config import MetricConfig

    preds, refs = _pairs(_subset(tmp_path, "caption2smiles", 12))
    rows = [{"output": p, "reference": r} for p, r in zip(preds, refs, strict=True)]
    pins = {n: pushed[n] for n in ("lmolt_molecule", "lmolt_hallucination")}
    cfg = MetricConfig(modules=pins, hallucination=False, bootstrap_resamples=0, fcd=False)
    seen = []
    original = scoring.score_direction

    def spy(*args, **kwargs):
        seen.append(kwargs["modules"].refs)
        return original(*args, **kwargs)

    monkeypatch.setattr(scoring, "score_direction", spy)  # validate imports it at call time
    submitted = {"results": {}, "bootstrap": {"n_resamples": 0, "seed": 0}}
    with pytest.raises(validate.SubmissionError):  # nothing submitted: the first comparison fails
        validate.check_metrics(submitted, {"caption2smiles": rows, "smiles2caption": rows}, cfg)
    assert seen[0]["lmolt_molecule"].revision == pins["lmolt_molecule"]["revision"]
    assert seen[0]["lmolt_molecule"].source == "hub" and seen[0]["lmolt_caption"].source == "bundled"


def test_metrics_push_command(local_hub, tmp_path):
    env = {**os.environ}
    proc = subprocess.run([sys.executable, "-m", "lmolt_hub.cli", "metrics", "push", "--org", "mmodscli"],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert [x.split("@")[0] for x in lines[:3]] == [
        f"mmodscli/{n}" for n in ("lmolt_caption", "lmolt_molecule", "lmolt_hallucination")
    ]
    assert "metrics.modules.lmolt_molecule=mmodscli/lmolt_molecule@" in proc.stdout
    dead = {**env, "HF_ENDPOINT": "http://127.0.0.1:9"}
    proc = subprocess.run([sys.executable, "-m", "lmolt_hub.cli", "metrics", "push", "--org", "x"],
                          capture_output=True, text=True, env=dead)  # fmt: skip
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "HF_ENDPOINT" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_module_scripts_declare_this_metrics_version():
    from lmolt_hub.metrics.hf_evaluate import MODULE_NAMES
    from lmolt_hub.metrics.modules import bundled, declared_version
    from lmolt_hub.resources import METRIC_MODULES

    for name in MODULE_NAMES:
        assert declared_version(MODULE_DIR / name / f"{name}.py") == METRICS_VERSION
        assert Path(bundled(name).path).resolve() == (MODULE_DIR / name / f"{name}.py").resolve()
    assert (METRIC_MODULES / "lmolt_molecule" / "lmolt_molecule.py").is_file()
    assert Direction.CAPTION2SMILES.value == "caption2smiles"


def test_bad_module_choices_are_one_line_errors(local_hub, tmp_path):
    path = _subset(tmp_path, "caption2smiles", 5)
    base = [sys.executable, "-m", "lmolt_hub.cli", "eval", "--predictions", str(path), "--direction",
            "caption2smiles", "--eval-dataset", str(path), "--output-dir", str(tmp_path / "out")]  # fmt: skip
    for choice, message in (
        ("lmolt_bleu=x/lmolt_bleu", "unknown metric module"),
        ("lmolt_molecule=nobody/lmolt_molecule", "not found"),
        (f"lmolt_molecule={ORG}/lmolt_caption", "not named lmolt_molecule"),
        (f"lmolt_molecule={tmp_path / 'missing'}", "no script"),
    ):
        proc = subprocess.run([*base, "--metric-module", choice], capture_output=True, text=True)
        assert proc.returncode == 2, (choice, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr and message in proc.stderr, (choice, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "out").exists()  # refused before anything was written
