"""The scheduled reviewer: ``leaderboard review`` then ``build --push-space``, on existing infrastructure.

One definition of what the reviewer runs (:data:`COMMANDS`), used by all three ways to schedule it:

- the GitHub Actions workflow ``deploy/github/leaderboard-review.yml`` (its steps are these
  commands, verbatim; a test checks it and runs them against the local Hub);
- a Hugging Face scheduled Job (``lmolt-hub leaderboard schedule create|pause|resume|remove|show``),
  on the hardware the spot check needs;
- a crontab line on a lab's own machine (docs/leaderboard.md).

The commands read their settings from the environment (``LMOLT_ORG``, ``LMOLT_SPOT_CHECK``,
``LMOLT_DEVICE``) and the reviewer's token from ``HF_TOKEN``, which is always a secret: the Job
spec names it among its secrets and never carries it in its environment or command, and what is
printed shows secret names only.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from typing import Any

from lmolt_hub import __version__
from lmolt_hub.leaderboard.validate import DEFAULT_SPOT_CHECK

REVIEW_COMMAND = 'lmolt-hub leaderboard review --org "$LMOLT_ORG" --spot-check "$LMOLT_SPOT_CHECK" --device "$LMOLT_DEVICE"'  # noqa: E501
BUILD_COMMAND = 'lmolt-hub leaderboard build --org "$LMOLT_ORG" --output-dir leaderboard-site --push-space "$LMOLT_ORG/lmolt-leaderboard"'  # noqa: E501
COMMANDS = (REVIEW_COMMAND, BUILD_COMMAND)
LOG_FILE = "reviewer.log"
SETUP_COMMANDS = ('pip install "$LMOLT_HUB_PACKAGE"', "lmolt-hub setup-wordnet")
DEFAULT_SCHEDULE = "17 */6 * * *"  # every 6 hours, off the hour (the workflow's cron too)
SCHEDULE_WORDS = ("@annually", "@yearly", "@monthly", "@weekly", "@daily", "@hourly")
DEFAULT_PACKAGE = f"lmolt-hub[eval]=={__version__}"
DEFAULT_IMAGE = "python:3.11"  # PyPI's torch wheels bring their own CUDA runtime for GPU flavours
GPU_FLAVOR = "a10g-small"  # 24 GB: a 7B model in bf16 (~14 GB) regenerates the spot-check pairs
CPU_FLAVOR = "cpu-upgrade"  # re-scoring only (8 vCPU, 32 GB: FCD and the NLI model on 3k pairs)
TIMEOUT = "3h"
SECRET = "HF_TOKEN"
REVIEWER_TOKEN_ENV = "LMOLT_REVIEWER_TOKEN"  # the Job's token when it is not the one creating the Job
LABEL = "lmolt-leaderboard-reviewer"  # label key; its value is the leaderboard's org


class ScheduleError(RuntimeError):
    """A scheduling request that cannot be carried out: the message names the problem and the fix."""


@dataclass
class ReviewerJob:
    """What the Hub Jobs API receives to run the reviewer (secret *names* only; values are added at send)."""

    org: str
    schedule: str = DEFAULT_SCHEDULE
    spot_check: int = DEFAULT_SPOT_CHECK
    flavor: str | None = None  # None: the flavour the spot check needs
    image: str = DEFAULT_IMAGE
    package: str = DEFAULT_PACKAGE
    namespace: str | None = None  # where the Job lives (default: the org)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def hardware(self) -> str:
        return self.flavor or (GPU_FLAVOR if self.spot_check > 0 else CPU_FLAVOR)

    @property
    def device(self) -> str:
        return "cpu" if self.hardware.startswith("cpu") else "cuda"

    def script(self) -> str:
        """The Job's shell script: set up, then the reviewer's commands, exactly as in the workflow."""
        return "\n".join(["set -eo pipefail", *SETUP_COMMANDS, *COMMANDS]) + "\n"

    def spec(self) -> dict[str, Any]:
        """Keyword arguments of ``HfApi.create_scheduled_job``, with ``secrets`` as a list of names."""
        env = {
            "LMOLT_ORG": self.org,
            "LMOLT_SPOT_CHECK": str(self.spot_check),
            "LMOLT_DEVICE": self.device,
            "LMOLT_HUB_PACKAGE": self.package,
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            **self.env,
        }
        return {
            "image": self.image,
            "command": ["bash", "-c", self.script()],
            "schedule": self.schedule,
            "env": env,
            "secrets": [SECRET],
            "flavor": self.hardware,
            "timeout": TIMEOUT,
            "name": LABEL,
            "labels": {LABEL: self.org},
            "namespace": self.namespace or self.org,
            "concurrency": False,  # a slow run never overlaps the next one (two reviewers, one PR)
        }


def _api(api: Any = None) -> Any:
    if api is not None:
        return api
    from huggingface_hub import HfApi

    return HfApi()


def reviewer_token() -> str:
    """The token the Job runs with: ``$LMOLT_REVIEWER_TOKEN``, else the one in use (``HF_TOKEN``, login)."""
    from huggingface_hub import get_token

    token = os.environ.get(REVIEWER_TOKEN_ENV) or get_token()
    if not token:
        raise ScheduleError(
            f"the reviewer Job needs a token to run with: set {REVIEWER_TOKEN_ENV} (or HF_TOKEN) to a token "
            "with write access to the leaderboard dataset and Space"
        )
    return token


def find_jobs(org: str, namespace: str | None = None, api: Any = None) -> list[Any]:
    """The scheduled reviewer Jobs of ``org`` (by their label)."""
    return list(_api(api).list_scheduled_jobs(labels={LABEL: org}, namespace=namespace or org))


def create(job: ReviewerJob, api: Any = None) -> Any:
    """Create the scheduled Job (refused if the org already has one); returns its ``ScheduledJobInfo``."""
    api = _api(api)
    existing = find_jobs(job.org, job.namespace, api)
    if existing:
        raise ScheduleError(
            f"{job.org} already has a reviewer Job ({', '.join(j.id for j in existing)}): remove it first "
            f"(lmolt-hub leaderboard schedule remove --org {job.org})"
        )
    spec = job.spec()
    secrets = {name: reviewer_token() for name in spec.pop("secrets")}
    return api.create_scheduled_job(**spec, secrets=secrets)


def _one(org: str, namespace: str | None, job_id: str | None, api: Any) -> str:
    if job_id:
        return job_id
    jobs = find_jobs(org, namespace, api)
    if len(jobs) != 1:
        found = "none" if not jobs else ", ".join(j.id for j in jobs)
        raise ScheduleError(f"expected one reviewer Job of {org}, found {found}: pass --id")
    return jobs[0].id


def act(
    action: str, org: str, namespace: str | None = None, job_id: str | None = None, api: Any = None
) -> str:
    """``pause`` (suspend), ``resume`` or ``remove`` (delete) the org's reviewer Job; returns its id."""
    api = _api(api)
    jid = _one(org, namespace, job_id, api)
    call = {"pause": api.suspend_scheduled_job, "resume": api.resume_scheduled_job,
            "remove": api.delete_scheduled_job}[action]  # fmt: skip
    call(scheduled_job_id=jid, namespace=namespace or org)
    return jid


# ------------------------------------------------------------------ CLI
def add_arguments(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "schedule", parents=parents,
        help="run the reviewer as a Hugging Face scheduled Job: create, pause, resume, remove, show",
    )  # fmt: skip
    p.add_argument("job_action", choices=["create", "pause", "resume", "remove", "show"])
    p.add_argument(
        "--schedule",
        default=DEFAULT_SCHEDULE,
        help=f"cron line or @hourly/@daily (default {DEFAULT_SCHEDULE!r})",
    )
    p.add_argument("--spot-check", type=int, default=DEFAULT_SPOT_CHECK, metavar="N",
                   help=f"pairs regenerated per direction (default {DEFAULT_SPOT_CHECK}; needs a GPU flavour, "
                        f"{GPU_FLAVOR}; 0: {CPU_FLAVOR})")  # fmt: skip
    p.add_argument("--flavor", default=None, help="Job hardware (default: what the spot check needs)")
    p.add_argument("--image", default=DEFAULT_IMAGE, help=f"Docker image (default {DEFAULT_IMAGE})")
    p.add_argument(
        "--package", default=DEFAULT_PACKAGE, help=f"what pip installs (default {DEFAULT_PACKAGE})"
    )
    p.add_argument("--namespace", default=None, help="namespace the Job lives in (default the org)")
    p.add_argument("--id", default=None, help="the scheduled Job's id (default: found by its label)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the Job spec (secret names only) or the action; send nothing")  # fmt: skip


def _check_options(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, as one sentence with the fix (None: nothing)."""
    from huggingface_hub import JobHardware

    flavors = [h.value for h in JobHardware]
    if args.repo:
        return "--repo: the reviewer serves <org>/lmolt-leaderboard; pass --org instead"
    if args.spot_check < 0:
        return f"--spot-check {args.spot_check}: use 0 (off) or more"
    if args.flavor and args.flavor not in flavors:
        return f"--flavor {args.flavor!r} is not a Job flavour; use one of {', '.join(flavors)}"
    fields = args.schedule.split()
    if not (len(fields) == 5 or (len(fields) == 1 and args.schedule in SCHEDULE_WORDS)):
        return f"--schedule {args.schedule!r}: use a 5-field cron line or one of {', '.join(SCHEDULE_WORDS)}"
    return None


def main(args: argparse.Namespace) -> int:
    from huggingface_hub.errors import HfHubHTTPError

    from lmolt_hub.naming import default_org

    org = args.org or default_org()
    problem = _check_options(args)
    if problem:
        raise SystemExit(f"lmolt-hub leaderboard schedule {args.job_action}: error: {problem}")
    job = ReviewerJob(
        org, args.schedule, args.spot_check, args.flavor, args.image, args.package, args.namespace
    )
    if args.dry_run:
        if args.job_action == "create":
            print(json.dumps(job.spec(), indent=1))
            print(f"# the Job's shell script, as run by bash -c:\n{job.script()}", end="")
        else:
            which = args.id or f"labelled {LABEL}={org}"
            print(
                f"dry run: would {args.job_action} the reviewer Job {which} in {args.namespace or org}; nothing sent"
            )
        return 0
    from lmolt_hub.hub.errors import ensure_hub_reachable

    ensure_hub_reachable(f"lmolt-hub leaderboard schedule {args.job_action}")
    try:
        if args.job_action == "create":
            info = create(job)
            print(f"created the reviewer Job {info.id} of {org} ({job.schedule}, {job.hardware}); "
                  f"its runs and logs: https://huggingface.co/jobs/{job.namespace or org}")  # fmt: skip
        elif args.job_action == "show":
            jobs = find_jobs(org, args.namespace)
            for j in jobs:
                state = "paused" if j.suspend else "active"
                print(
                    f"{j.id}  {state}  {j.schedule}  {j.job_spec.flavor}  next run {j.status.next_job_run_at}"
                )
            if not jobs:
                print(
                    f"no reviewer Job of {org} (create one: lmolt-hub leaderboard schedule create --org {org})"
                )
        else:
            jid = act(args.job_action, org, args.namespace, args.id)
            done = {"pause": "paused", "resume": "resumed", "remove": "removed"}[args.job_action]
            print(f"{done} the reviewer Job {jid} of {org}")
    except ScheduleError as e:
        raise SystemExit(f"lmolt-hub leaderboard schedule {args.job_action}: error: {e}") from None
    except HfHubHTTPError as e:  # no Jobs access, unknown id, bad token: one line, no traceback
        first = str(e).splitlines()[0]
        raise SystemExit(f"lmolt-hub leaderboard schedule {args.job_action}: error: {first}") from None
    return 0
