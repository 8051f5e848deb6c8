"""One-line errors for the first hour's mistakes: no Hub server, a bad token, a typo, a missing file.

Each command runs as a user runs it (a subprocess) where the point is what reaches the terminal.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmolt_hub.cli import main
from lmolt_hub.training import RecipeError, train

ROOT = Path(__file__).resolve().parents[2]
TINY_SFT = str(ROOT / "recipes/tiny/sft/qlora.yaml")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: nothing listens there


def _run(cmd: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _fake_output_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (path / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    (path / "README.md").write_text("---\nlicense: apache-2.0\n---\nA finished run.\n")
    (path / "checkpoint-1").mkdir(exist_ok=True)
    (path / "checkpoint-1" / "optimizer.pt").write_bytes(b"\0")
    return path


LMOLT = [sys.executable, "-m", "lmolt_hub.cli"]
NO_SERVER_COMMANDS = {
    "harness": [sys.executable, "eval_harness/run.py", "--model", "someone/model", "--limit", "2"],
    "leaderboard status": [*LMOLT, "leaderboard", "status"],
    "leaderboard submit": [*LMOLT, "leaderboard", "submit", "--model", "someone/model"],
    "train": [*LMOLT, "train", "sft", "--config", TINY_SFT, "--dataset_name", "someone/triples"],
    "recipe script": [
        sys.executable,
        "recipes/sft.py",
        "--config",
        TINY_SFT,
        "--dataset_name",
        "someone/triples",
    ],
    "push": [*LMOLT, "push", "OUT", "--repo-id", "someone/model"],
    "lineage": [*LMOLT, "lineage", "someone/model"],
    "data check": [*LMOLT, "data", "check", "--dataset", "someone/triples"],
    # accelerate's own traceback after a failed child is silenced by its -q (docs/troubleshooting.md)
    "accelerate launch": [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "-q",
        "--cpu",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--num_cpu_threads_per_process",
        "1",
        "recipes/sft.py",
        "--config",
        TINY_SFT,
        "--dataset_name",
        "someone/triples",
    ],  # fmt: skip
}


@pytest.mark.parametrize("name", list(NO_SERVER_COMMANDS))
def test_no_server_is_one_line_naming_hf_endpoint(name: str, tmp_path: Path):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    env = dict(os.environ, HF_ENDPOINT=endpoint, OMP_NUM_THREADS="1")
    out = _fake_output_dir(tmp_path / "out")
    cmd = [str(out) if a == "OUT" else a for a in NO_SERVER_COMMANDS[name]]
    if name in ("train", "recipe script", "accelerate launch"):
        cmd += ["--output_dir", str(tmp_path / "train")]
    proc = _run(cmd, env)
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode != 0
    assert 1 <= len(lines) <= 3, proc.stderr[-3000:]
    assert f"HF_ENDPOINT={endpoint}" in lines[-1] and "lmolt-hub serve" in lines[-1], lines
    assert "Traceback" not in proc.stderr


def test_submit_missing_results_file_is_one_line(local_hub, capsys):
    with pytest.raises(SystemExit) as e:
        main(["leaderboard", "submit", "--results", "no/such/results.json"])
    assert "--results no/such/results.json: no such file" in str(e.value.code)


def test_serve_on_a_taken_port_is_one_line(tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = _run(
            [*LMOLT, "serve", "--root", str(tmp_path / "hub"), "--port", str(port)], dict(os.environ), 60
        )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and f"port {port}" in proc.stderr and "--port" in proc.stderr


def test_cli_flag_typo_is_blamed_on_the_command_line_with_a_suggestion():
    with pytest.raises(RecipeError) as e:
        train("sft", TINY_SFT, ["--learning-rat", "1e-3"])  # a prefix: argparse would have expanded it
    msg = str(e.value)
    assert msg == "unknown command-line option '--learning-rat' (did you mean --learning_rate?)"
    with pytest.raises(RecipeError, match=r"command line: argument --learning_rate.*invalid float value"):
        train("sft", TINY_SFT, ["--learning_rate", "fast"])


def test_recipe_key_typo_names_the_recipe_and_no_trl_internals(tmp_path: Path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(Path(TINY_SFT).read_text() + "\nnum_train_epoch: 2\n")
    with pytest.raises(RecipeError) as e:
        train("sft", str(recipe), [])
    msg = str(e.value)
    assert msg == f"recipe {recipe}: unknown key 'num_train_epoch' (did you mean num_train_epochs?)"
    assert "fail_with_unknown_args" not in msg


def test_lmolt_hub_options_are_never_abbreviated(capsys):
    with pytest.raises(SystemExit) as e:
        main(["leaderboard", "status", "--js"])  # --json's prefix
    assert e.value.code == 2
    assert "unrecognized arguments: --js (did you mean --json?)" in capsys.readouterr().err
    assert main(["leaderbord"]) == 2
    assert "did you mean leaderboard?" in capsys.readouterr().err


def test_short_train_help_is_fast_and_lists_config(tmp_path: Path):
    code = (
        "import sys, time; t = time.time(); from lmolt_hub.cli import main; main(['train', 'dpo', '--help']); "
        "print('SECONDS', time.time() - t, 'TRL', 'trl' in sys.modules, 'TORCH', 'torch' in sys.modules)"
    )
    proc = _run([sys.executable, "-c", code], dict(os.environ), 60)
    out = proc.stdout
    assert proc.returncode == 0 and proc.stderr == ""
    assert "--config RECIPE.yaml" in out and "--help-all" in out
    for key in ("--learning_rate", "--beta", "--loss_type", "--dataset_name", "--push_to_hub", "--max_steps"):
        assert key in out, key
    assert len(out.splitlines()) < 70
    last = out.splitlines()[-1].split()
    assert last[2:] == ["TRL", "False", "TORCH", "False"] and float(last[1]) < 2.0


def test_help_all_lists_every_trl_field(capsys):
    assert main(["train", "dpo", "--help-all"]) == 0
    out = capsys.readouterr().out
    assert (
        "--dataloader_num_workers" in out
        and "--gradient_checkpointing" in out
        and len(out.splitlines()) > 300
    )


# -------------------------------------------------------------------- push pre-check (point 5)
def _push_args(tmp_path: Path, repo: str) -> list[str]:
    # The dataset does not exist: a check that ran after loading would fail on it instead.
    return ["--dataset_name", "nobody/no-such-dataset", "--output_dir", str(tmp_path / "o"),
            "--push_to_hub", "true", "--hub_model_id", repo]  # fmt: skip


def _fails_fast(tmp_path: Path, repo: str, match: str) -> None:
    steps: list[int] = []

    from transformers import TrainerCallback

    class Steps(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            steps.append(state.global_step)

    t = time.monotonic()
    with pytest.raises(RecipeError, match=match) as e:
        train("sft", TINY_SFT, _push_args(tmp_path, repo), callbacks=[Steps()])
    assert time.monotonic() - t < 10
    assert "\n" not in str(e.value) and steps == []
    assert not (tmp_path / "o" / "adapter_model.safetensors").exists()


@pytest.fixture(scope="module")
def trl_imported():
    import trl  # noqa: F401  (imported once; the check itself is what is timed)


def test_push_check_missing_token(local_hub, trl_imported, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    _fails_fast(
        tmp_path, "lmolt/never-pushed", r"push_to_hub needs a write token .*HF_ENDPOINT.*set HF_TOKEN"
    )


def test_push_check_wrong_token(local_hub, trl_imported, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_token_of_this_hub")
    _fails_fast(tmp_path, "lmolt/never-pushed", r"rejects HF_TOKEN")


def test_push_check_xet_on_for_a_local_hub(local_hub, trl_imported, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    _fails_fast(tmp_path, "lmolt/never-pushed", r"set HF_HUB_DISABLE_XET=1")


def test_push_check_namespace_of_another_user(trl_imported, tmp_path, monkeypatch):
    """A non-admin token may write only to its own namespace: refused before training."""
    from huggingface_hub import constants

    from lmolt_hub.localhub import start_in_thread
    from lmolt_hub.training.publish import check_push_access

    server = start_in_thread(
        root=tmp_path / "hub", port=0, tokens={"hf_alice_secret_token": {"user": "alice"}}
    )
    try:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setattr(constants, "ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", "hf_alice_secret_token")
        assert check_push_access("alice/my-model") == "alice"
        _fails_fast(tmp_path, "lmolt/not-alices", r"belongs to 'alice'.*hub_model_id: alice/not-alices")
    finally:
        server.stop()


def test_xet_is_disabled_for_a_local_endpoint_only():
    code = "import lmolt_hub, huggingface_hub.constants as c; print(c.HF_HUB_DISABLE_XET)"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_XET", "HF_ENDPOINT")}
    local = _run([sys.executable, "-c", code], dict(env, HF_ENDPOINT="http://127.0.0.1:1"), 60)
    real = _run([sys.executable, "-c", code], env, 60)
    assert (local.stdout.strip(), real.stdout.strip()) == ("True", "False")


def test_push_a_finished_output_dir(local_hub, tmp_path, capsys):
    from huggingface_hub import HfApi

    out = _fake_output_dir(tmp_path / "run")
    assert main(["push", str(out), "--repo-id", "lmolt/pushed-afterwards"]) == 0
    assert "pushed: lmolt/pushed-afterwards @ main" in capsys.readouterr().out
    files = set(HfApi().list_repo_files("lmolt/pushed-afterwards"))
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= files
    assert not any(f.startswith("checkpoint-") for f in files)
    # A second push onto a revision holding a model is refused, as at the end of training.
    assert main(["push", str(out), "--repo-id", "lmolt/pushed-afterwards"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_every_docs_reference_in_code_and_help_exists():
    import re

    texts = [
        p.read_text(encoding="utf-8")
        for d in ("src", "eval_harness", "recipes")
        for p in (ROOT / d).rglob("*.py")
    ]
    texts.append((ROOT / "README.md").read_text(encoding="utf-8"))
    refs = {m for t in texts for m in re.findall(r"docs/[\w.-]+\.md", t)}
    assert refs, "no docs/ reference found: the pattern is wrong"
    assert sorted(r for r in refs if not (ROOT / r).is_file()) == []


def test_hub_error_message_maps_connection_and_token_failures_only(monkeypatch):
    import httpx2 as httpx
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    from lmolt_hub.hub.errors import hub_error_message

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1")
    request = httpx.Request("GET", "http://127.0.0.1:1/api/whoami-v2")
    try:
        try:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        except httpx.ConnectError as inner:
            raise OSError("We couldn't load the files") from inner
    except OSError as wrapped:
        assert "HF_ENDPOINT=http://127.0.0.1:1" in hub_error_message(wrapped)
    response = httpx.Response(401, request=request)
    assert "refused the token" in hub_error_message(HfHubHTTPError("401", response=response))
    assert hub_error_message(RepositoryNotFoundError("401", response=response)) is None
    assert hub_error_message(ValueError("a bug")) is None
    assert hub_error_message(BrokenPipeError(32, "Broken pipe")) is None  # `lmolt-hub ... | head`
