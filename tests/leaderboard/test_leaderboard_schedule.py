"""The scheduled reviewer: the GitHub Actions workflow, the Hugging Face scheduled Job, the crontab line.

- The workflow (deploy/github/leaderboard-review.yml) parses; its review steps are the CLI that
  lmolt_hub.leaderboard.schedule defines and docs/leaderboard.md documents, verbatim; and they run:
  this test extracts them and runs them with bash against the local Hub (a bad PR is closed, the
  leaderboard Space is published from the accepted submissions, the log is written).
- The Jobs API cannot be reached offline, so the exact request it would get is captured by a
  stand-in HTTP server: image, command, schedule, flavour, and the token only as a secret.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from lmolt_hub.leaderboard import schedule

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = REPO_ROOT / "deploy" / "github" / "leaderboard-review.yml"
DOCS = REPO_ROOT / "docs" / "leaderboard.md"
ORG = "wforg"
SECRET_VALUE = "hf_reviewer_secret_value_123"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps() -> list[dict]:
    return _workflow()["jobs"]["review"]["steps"]


def test_workflow_parses_and_its_steps_are_the_documented_cli():
    wf = _workflow()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["schedule"] == [{"cron": schedule.DEFAULT_SCHEDULE}] and "workflow_dispatch" in triggers
    assert wf["defaults"]["run"]["shell"] == "bash"  # bash -eo pipefail: a failing command fails the step
    steps = _steps()
    runs = [s["run"] for s in steps if "run" in s]
    assert runs[0].splitlines() == list(schedule.SETUP_COMMANDS)
    assert runs[1:] == [f"{c} 2>&1 | tee -a {schedule.LOG_FILE}" for c in schedule.COMMANDS]
    upload = steps[-1]
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "always()"
    assert upload["with"]["path"] == schedule.LOG_FILE
    # the token comes from the repository's secrets, and it is the only secret
    env = wf["jobs"]["review"]["env"]
    assert env["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"
    assert set(re.findall(r"secrets\.(\w+)", WORKFLOW.read_text())) == {"HF_TOKEN"}
    # the documentation shows the same commands, and the crontab line runs them
    docs = DOCS.read_text()
    assert "## Running the leaderboard on huggingface.co" in docs
    for command in (*schedule.COMMANDS, *schedule.SETUP_COMMANDS):
        assert command in docs, command
    (cron,) = [ln for ln in docs.splitlines() if re.match(r"^17 \*/6 \* \* \* ", ln)]
    assert all(c in cron for c in schedule.COMMANDS) and schedule.LOG_FILE in cron


@pytest.fixture()
def leaderboard_with_a_pr(local_hub, tmp_path):
    """``wforg/lmolt-leaderboard``: synthetic accepted submissions on main, and one broken open PR."""
    from huggingface_hub import CommitOperationAdd, HfApi

    from lmolt_hub.leaderboard import create_leaderboard_repo

    from helpers.leaderboard_data import synthetic_leaderboard_root

    api = HfApi()
    repo = f"{ORG}/lmolt-leaderboard"
    create_leaderboard_repo(repo, api=api)
    root = synthetic_leaderboard_root(tmp_path / "accepted")
    api.upload_folder(
        folder_path=root, repo_id=repo, repo_type="dataset", commit_message="accepted (test data)"
    )
    pr = api.create_commit(
        repo, [CommitOperationAdd(f"submissions/{ORG}/broken/results.json", b"{not json")],
        commit_message="a broken submission", repo_type="dataset", create_pr=True,
    ).pr_num  # fmt: skip
    verified = sorted(
        json.loads(p.read_text())["model"]["id"] for p in root.glob("submissions/*/*/results.json")
    )
    return {"api": api, "repo": repo, "pr": pr, "verified": verified}


def _run_step(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """One workflow step as GitHub runs it with `shell: bash` (bash --noprofile --norc -eo pipefail)."""
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_workflow_commands_run_against_the_local_hub(leaderboard_with_a_pr, local_hub, tmp_path):
    api, repo = leaderboard_with_a_pr["api"], leaderboard_with_a_pr["repo"]
    # `lmolt-hub` on PATH runs this checkout (as the workflow's `pip install` would provide it)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "lmolt-hub"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m lmolt_hub.cli "$@"\n')
    shim.chmod(0o755)
    wf_env = _workflow()["jobs"]["review"]["env"]
    values = {"HF_TOKEN": local_hub.token, "LMOLT_ORG": ORG, "LMOLT_SPOT_CHECK": "0", "LMOLT_DEVICE": "cpu"}
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", HF_ENDPOINT=local_hub.url)
    env.update({k: values.get(k, str(v)) for k, v in wf_env.items() if k != "LMOLT_HUB_PACKAGE"})
    work = tmp_path / "runner"
    work.mkdir()
    for step in _steps()[2:4]:  # the review and the build step, verbatim
        proc = _run_step(step["run"], work, env)
        assert proc.returncode == 0, step["name"] + "\n" + proc.stdout[-2000:] + proc.stderr[-2000:]

    log = (work / schedule.LOG_FILE).read_text()
    pr = leaderboard_with_a_pr["pr"]
    assert re.search(rf"PR #{pr}: rejected - .+", log), log
    assert api.get_discussion_details(repo, pr, repo_type="dataset").status == "closed"
    assert f"published the Space {ORG}/lmolt-leaderboard" in log
    board = json.loads(Path(api.hf_hub_download(repo, "leaderboard.json", repo_type="space")).read_text())
    assert (
        sorted(r["model"] for r in board["rows"] if r["kind"] == "verified")
        == leaderboard_with_a_pr["verified"]
    )
    assert api.space_info(repo).card_data.sdk == "static"


# ------------------------------------------------------------------ the Hugging Face scheduled Job
class _JobsApi(BaseHTTPRequestHandler):
    """Stands in for https://huggingface.co/api/scheduled-jobs: records each request, keeps the jobs."""

    requests: list[dict]
    jobs: dict[str, dict]

    def log_message(self, *args):
        pass

    def _record(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        req = {
            "method": self.command,
            "path": self.path,
            "body": body,
            "auth": self.headers.get("Authorization"),
        }
        self.requests.append(req)
        return req

    def _reply(self, obj) -> None:
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # list (label filter is applied client-side too)
        self._record()
        self._reply(list(self.jobs.values()))

    def do_POST(self):
        req = self._record()
        parts = req["path"].split("/")  # /api/scheduled-jobs/<ns>[/<id>/<action>]
        if len(parts) == 4:
            jid = f"job{len(self.jobs) + 1}"
            self.jobs[jid] = {"id": jid, "jobSpec": req["body"]["jobSpec"], "schedule": req["body"]["schedule"],
                              "suspend": False, "owner": {"id": "o1", "name": parts[3], "type": "org"}, "status": {}}  # fmt: skip
            return self._reply(self.jobs[jid])
        self.jobs[parts[4]]["suspend"] = parts[5] == "suspend"
        self._reply({})

    def do_DELETE(self):
        req = self._record()
        self.jobs.pop(req["path"].split("/")[4])
        self._reply({})


@pytest.fixture()
def jobs_api():
    from huggingface_hub import HfApi

    handler = type("Handler", (_JobsApi,), {"requests": [], "jobs": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = HfApi(endpoint=f"http://127.0.0.1:{server.server_address[1]}", token="hf_creator_token")
    yield api, handler
    server.shutdown()
    server.server_close()


def test_scheduled_job_spec_as_sent(jobs_api, monkeypatch):
    api, server = jobs_api
    monkeypatch.setenv(schedule.REVIEWER_TOKEN_ENV, SECRET_VALUE)
    info = schedule.create(schedule.ReviewerJob("acme", spot_check=3), api=api)
    post = [r for r in server.requests if r["method"] == "POST"][0]
    assert post["path"] == "/api/scheduled-jobs/acme" and post["auth"] == "Bearer hf_creator_token"
    script = "\n".join(["set -eo pipefail", *schedule.SETUP_COMMANDS, *schedule.COMMANDS]) + "\n"
    assert post["body"] == {
        "schedule": "17 */6 * * *",
        "concurrency": False,
        "jobSpec": {
            "dockerImage": "python:3.11",
            "command": ["bash", "-c", script],
            "arguments": [],
            "environment": {
                "LMOLT_ORG": "acme",
                "LMOLT_SPOT_CHECK": "3",
                "LMOLT_DEVICE": "cuda",
                "LMOLT_HUB_PACKAGE": schedule.DEFAULT_PACKAGE,
                "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            },  # fmt: skip
            "flavor": "a10g-small",  # a GPU: the spot check regenerates outputs of 7B models
            "secrets": {"HF_TOKEN": SECRET_VALUE},
            "timeoutSeconds": 3 * 3600,
            "labels": {schedule.LABEL: "acme", "name": schedule.LABEL},
        },
    }
    # the token travels only as a secret: never in the environment or the command
    spec = post["body"]["jobSpec"]
    assert SECRET_VALUE not in json.dumps({k: v for k, v in spec.items() if k != "secrets"})
    assert info.id == "job1"

    with pytest.raises(schedule.ScheduleError, match="already has a reviewer Job"):
        schedule.create(schedule.ReviewerJob("acme"), api=api)
    assert schedule.act("pause", "acme", api=api) == "job1" and server.jobs["job1"]["suspend"] is True
    assert schedule.act("resume", "acme", api=api) == "job1" and server.jobs["job1"]["suspend"] is False
    assert schedule.act("remove", "acme", api=api) == "job1" and server.jobs == {}
    calls = [(r["method"], r["path"]) for r in server.requests if r["method"] != "GET"][1:]
    assert calls == [("POST", "/api/scheduled-jobs/acme/job1/suspend"), ("POST", "/api/scheduled-jobs/acme/job1/resume"),
                     ("DELETE", "/api/scheduled-jobs/acme/job1")]  # fmt: skip
    with pytest.raises(schedule.ScheduleError, match="found none: pass --id"):
        schedule.act("pause", "acme", api=api)


def test_job_without_spot_check_runs_on_cpu():
    spec = schedule.ReviewerJob("acme", spot_check=0).spec()
    assert spec["flavor"] == "cpu-upgrade" and spec["env"]["LMOLT_DEVICE"] == "cpu"
    assert schedule.ReviewerJob("acme", flavor="l4x1").spec()["env"]["LMOLT_DEVICE"] == "cuda"


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, **{schedule.REVIEWER_TOKEN_ENV: SECRET_VALUE})
    return subprocess.run([sys.executable, "-m", "lmolt_hub.cli", "leaderboard", "schedule", *args],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip


def test_cli_dry_run_names_secrets_never_values():
    proc = _cli("create", "--org", "acme", "--spot-check", "0", "--schedule", "@daily", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(proc.stdout.split("\n# ")[0])
    assert (
        spec["secrets"] == ["HF_TOKEN"] and spec["schedule"] == "@daily" and spec["flavor"] == "cpu-upgrade"
    )
    assert SECRET_VALUE not in proc.stdout + proc.stderr
    for command in schedule.COMMANDS:
        assert command in proc.stdout
    proc = _cli("pause", "--org", "acme", "--dry-run")  # a dry run of the other actions sends nothing either
    assert (
        proc.returncode == 0
        and "would pause the reviewer Job labelled lmolt-leaderboard-reviewer=acme" in proc.stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--flavor", "gpu-huge"], "is not a Job flavour"),
        (["--schedule", "every hour"], "5-field cron line"),
        (["--spot-check", "-1"], "use 0 (off) or more"),
        (["--repo", "x/y"], "pass --org instead"),
    ],
)
def test_cli_refuses_bad_options_in_one_line(args, message):
    proc = _cli("create", "--dry-run", *args)
    assert proc.returncode != 0 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_cli_creates_shows_pauses_and_removes_the_job(jobs_api):
    api, server = jobs_api

    def cli(*args: str) -> str:
        env = dict(os.environ, HF_ENDPOINT=api.endpoint, HF_TOKEN="hf_creator_token",
                   **{schedule.REVIEWER_TOKEN_ENV: SECRET_VALUE})  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "lmolt_hub.cli", "leaderboard", "schedule", *args, "--org", "acme"],
                              capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert SECRET_VALUE not in proc.stdout + proc.stderr
        return proc.stdout

    assert "created the reviewer Job job1 of acme (17 */6 * * *, a10g-small)" in cli("create")
    assert server.jobs["job1"]["jobSpec"]["secrets"] == {"HF_TOKEN": SECRET_VALUE}
    assert "job1  active  17 */6 * * *  a10g-small" in cli("show")
    assert "paused the reviewer Job job1 of acme" in cli("pause")
    assert "job1  paused" in cli("show")
    assert "removed the reviewer Job job1 of acme" in cli("remove")
    assert server.jobs == {} and cli("show").startswith("no reviewer Job of acme")
