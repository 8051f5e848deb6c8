"""Submissions as pull requests to the leaderboard dataset repo, their review, and their status.

Layout of ``<org>/lmolt-leaderboard`` (a dataset repo)::

    submissions/<namespace>/<submission-id>/submission.json   what it is, who, when
    submissions/<namespace>/<submission-id>/results.json      a harness results file ...
    submissions/<namespace>/<submission-id>/samples_*.jsonl   ... with its samples
    submissions/<namespace>/<submission-id>/request.json      or: a request to evaluate a model
    submissions/<namespace>/<submission-id>/verification.json written by the reviewer on acceptance

A submission only ever *adds* files in its own new folder; ``review`` refuses a
PR that modifies or deletes anything on ``main``, so accepted data cannot be
changed or lost by a later submission. Accepted PRs are merged, rejected ones
are closed, and both get a comment that starts with :data:`REVIEW_MARK` and
states the reason; ``status`` reads those back, from the reviewers' comments only
(the repo's namespace and the card's ``lmolt.reviewers``).

What the reviewer trusts: nothing in the PR but the bytes it validates. The PR head is
resolved to a commit sha once; every file is read at that sha, the verification record is
committed with that sha as its parent, and the merge names the expected head, so a push
during review is refused, never merged. ``verification.json`` carries ``results_sha256``
(the accepted results.json bytes) and the statuses ("re-scored", "reproduced"). The rate
limit counts PRs by their author, not by the namespace a title or folder claims.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmolt_hub.leaderboard.records import Record, verified_record
from lmolt_hub.leaderboard.validate import (
    DEFAULT_SPOT_CHECK,
    MAX_SUBMISSION_BYTES,
    REQUEST_FILE,
    RESULTS_FILE,
    Regenerate,
    ReviewerSetupError,
    SubmissionError,
    check_duplicate,
    check_rate_limit,
    check_sizes_remote,
    results_sha256,
    strict_json,
    validate_request,
    validate_results_submission,
)
from lmolt_hub.naming import LEADERBOARD_DATASET

log = logging.getLogger(__name__)
SUBMISSIONS_DIR = "submissions"
SUBMISSION_FILE = "submission.json"
VERIFICATION_FILE = "verification.json"
REVIEW_MARK = "**lmolt-hub review:"
STATES = ("pending", "running", "verified", "rejected")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

# (model_id, revision) -> folder holding a results file (results*.json) and its samples.
Evaluate = Callable[[str, str], Path]


def default_org() -> str:
    from lmolt_hub.naming import default_org as _default_org

    return _default_org()


def leaderboard_repo(org: str | None = None) -> str:
    return f"{org or default_org()}/{LEADERBOARD_DATASET}"


def _api(api: Any = None) -> Any:
    if api is not None:
        return api
    from huggingface_hub import HfApi

    return HfApi()


def _safe(part: str) -> str:
    return _SAFE.sub("-", part).strip("-") or "_"


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


CARD = """---
license: apache-2.0
pretty_name: lmolt-hub leaderboard submissions
tags:
- leaderboard
- chemistry
- molecule-captioning
lmolt:
  reviewers: {reviewers}
---
# lmolt-hub leaderboard

Submissions to the lmolt-hub leaderboard (machine language-molecule translation,
L+M-24 3k evaluation set). Open a pull request with `lmolt-hub leaderboard submit`;
`lmolt-hub leaderboard review` validates it, recomputes the metrics from the samples,
and merges or closes it with a comment. `main` holds accepted submissions only.
"""


def create_leaderboard_repo(repo_id: str, api: Any = None) -> str:
    """Create the dataset repo with its card if it does not exist; return its id."""
    from huggingface_hub import CommitOperationAdd

    api = _api(api)
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    if not api.file_exists(repo_id, "README.md", repo_type="dataset"):
        reviewers = json.dumps(sorted({_whoami(api)} - {None}))  # whose review comments count
        api.create_commit(
            repo_id,
            [CommitOperationAdd("README.md", CARD.replace("{reviewers}", reviewers).encode())],
            commit_message="Leaderboard repository card",
            repo_type="dataset",
        )
    return repo_id


# --------------------------------------------------------------------------- submit


@dataclass
class Submitted:
    folder: str
    pr_num: int | None
    pr_url: str | None


def _submission_id(model_id: str, revision: str, payload: bytes) -> str:
    digest = hashlib.sha256(payload).hexdigest()[:10]
    stamp = _now().strftime("%Y%m%dT%H%M%S")
    return f"{_safe(model_id.split('/')[-1])}-{_safe(revision)[:12]}-{stamp}-{digest}"


def _open_pr(api: Any, repo_id: str, files: dict[str, bytes], title: str, description: str) -> Submitted:
    from huggingface_hub import CommitOperationAdd

    folder = os.path.dirname(next(iter(files)))
    info = api.create_commit(
        repo_id,
        [CommitOperationAdd(path, data) for path, data in sorted(files.items())],
        commit_message=title,
        commit_description=description,
        repo_type="dataset",
        create_pr=True,
    )
    return Submitted(
        folder=folder, pr_num=getattr(info, "pr_num", None), pr_url=getattr(info, "pr_url", None)
    )


def submit_results(results_path: Path | str, repo_id: str | None = None, api: Any = None) -> Submitted:
    """Open a PR adding a harness results file and its samples (found next to it)."""
    api = _api(api)
    repo_id = repo_id or leaderboard_repo()
    results_path = Path(results_path)
    payload = results_path.read_bytes()
    results = strict_json(payload, results_path.name)  # refuse obviously broken files before uploading
    model = (results.get("model") or {}) if isinstance(results, dict) else {}
    model_id = model.get("id") or "unknown/unknown"
    revision = model.get("sha") or model.get("revision") or "unknown"
    namespace = _safe(model_id.split("/")[0]) if "/" in model_id else "_"
    folder = f"{SUBMISSIONS_DIR}/{namespace}/{_submission_id(model_id, revision, payload)}"
    files = {f"{folder}/{RESULTS_FILE}": payload}
    for direction, name in sorted((results.get("samples") or {}).items()):
        sample_path = results_path.parent / str(name)
        if Path(str(name)).name != name or not sample_path.is_file():
            raise FileNotFoundError(f"samples file {name!r} for {direction} not found next to {results_path}")
        files[f"{folder}/{name}"] = sample_path.read_bytes()
    meta = {"type": "results", "model": model_id, "revision": revision, "submitted_at": _now().isoformat()}
    files[f"{folder}/{SUBMISSION_FILE}"] = json.dumps(meta, indent=1, sort_keys=True).encode()
    return _open_pr(
        api, repo_id, files, f"Results: {model_id}@{revision[:12]}", f"Submitted results for {model_id}."
    )


def submit_request(
    model_id: str, revision: str | None = None, repo_id: str | None = None, api: Any = None
) -> Submitted:
    """Open a PR asking the maintainers to evaluate ``model_id`` with the harness."""
    api = _api(api)
    repo_id = repo_id or leaderboard_repo()
    request = {"model": model_id, "revision": revision}
    payload = json.dumps(request, indent=1, sort_keys=True).encode()
    namespace = _safe(model_id.split("/")[0]) if "/" in model_id else "_"
    folder = f"{SUBMISSIONS_DIR}/{namespace}/{_submission_id(model_id, revision or 'main', payload)}"
    meta = {"type": "request", "model": model_id, "revision": revision, "submitted_at": _now().isoformat()}
    files = {
        f"{folder}/{REQUEST_FILE}": payload,
        f"{folder}/{SUBMISSION_FILE}": json.dumps(meta, indent=1, sort_keys=True).encode(),
    }
    title = f"Evaluation request: {model_id}@{revision or 'main'}"
    return _open_pr(api, repo_id, files, title, f"Please evaluate {model_id}.")


# --------------------------------------------------------------------------- review


@dataclass
class Outcome:
    pr_num: int
    state: str
    reason: str
    folder: str | None = None
    record: Record | None = None
    checks: list[str] = field(default_factory=list)


def _tree(api: Any, repo_id: str, revision: str) -> dict[str, tuple[str | None, int]]:
    """path -> (blob id, size) of every file at ``revision``."""
    out = {}
    for entry in api.list_repo_tree(repo_id, recursive=True, revision=revision, repo_type="dataset"):
        if hasattr(entry, "size") and not hasattr(entry, "tree_id"):
            out[entry.path] = (getattr(entry, "blob_id", None), int(entry.size or 0))
    return out


def _head(api: Any, repo_id: str, ref: str) -> str:
    """The commit sha ``ref`` points at now (everything of one review is read at this sha)."""
    return api.dataset_info(repo_id, revision=ref).sha


def _fork_point(api: Any, repo_id: str, head: str) -> str:
    """The main commit the PR branched from (its newest commit that is also on main)."""
    on_main = {c.commit_id for c in api.list_repo_commits(repo_id, repo_type="dataset", revision="main")}
    for commit in api.list_repo_commits(repo_id, repo_type="dataset", revision=head):
        if commit.commit_id in on_main:
            return commit.commit_id
    raise SubmissionError("the PR does not branch from the leaderboard's main branch")


def _new_files(
    api: Any, repo_id: str, head: str, main: dict[str, tuple[str | None, int]]
) -> dict[str, tuple[str | None, int]]:
    """Files the PR adds at commit ``head`` (path -> (blob, size)); refuses PRs that change or
    delete anything.

    Compared with the commit the PR branched from (main may have moved on since, with other
    accepted submissions the PR does not contain; the Hub merges those three-way).
    """
    base = _tree(api, repo_id, _fork_point(api, repo_id, head))
    pr_tree = _tree(api, repo_id, head)
    changed = sorted(p for p, (blob, _) in base.items() if p not in pr_tree or pr_tree[p][0] != blob)
    if changed:
        raise SubmissionError(
            f"the PR modifies or deletes existing files ({', '.join(changed[:5])}); submissions may only add files"
        )
    added = {p: entry for p, entry in pr_tree.items() if p not in base}
    if not added:
        raise SubmissionError("the PR adds no files")
    folders = {os.path.dirname(p) for p in added}
    parts = next(iter(folders)).split("/")
    if len(folders) != 1 or len(parts) != 3 or parts[0] != SUBMISSIONS_DIR:
        raise SubmissionError(
            f"all files must be in one folder {SUBMISSIONS_DIR}/<namespace>/<id>/, got {sorted(folders)}"
        )
    folder = next(iter(folders))
    if any(p.startswith(folder + "/") for p in main):
        raise SubmissionError(f"folder {folder} already exists on the leaderboard")
    if f"{folder}/{VERIFICATION_FILE}" in added:
        raise SubmissionError(f"{VERIFICATION_FILE} is written by the reviewer, not by a submission")
    return added


def _download(api: Any, repo_id: str, revision: str, paths: list[str], target: Path) -> Path:
    for path in paths:  # through ``api``: its endpoint and token
        api.hf_hub_download(repo_id, path, repo_type="dataset", revision=revision, local_dir=target)
    return target / os.path.dirname(paths[0])


def _read_main(api: Any, repo_id: str, path: str, revision: str = "main") -> bytes:
    return Path(api.hf_hub_download(repo_id, path, repo_type="dataset", revision=revision)).read_bytes()


def _is_sha(revision: str | None) -> bool:
    return bool(revision) and bool(re.fullmatch(r"[0-9a-f]{40}", revision or ""))


def accepted_records(api: Any, repo_id: str, main: dict[str, tuple[str | None, int]]) -> list[Record]:
    """Records of every verified submission on main (for the duplicate check).

    Only results bound to a ``verification.json`` by ``results_sha256`` count; revisions are the
    commit shas the reviewer verified. A damaged file on main is skipped with a warning, never fatal.
    """
    records = []
    for path in sorted(p for p in main if p.endswith(f"/{RESULTS_FILE}")):
        ver_path = f"{os.path.dirname(path)}/{VERIFICATION_FILE}"
        if ver_path not in main:
            continue
        try:
            raw = _read_main(api, repo_id, path)
            verification = json.loads(_read_main(api, repo_id, ver_path))
            if not isinstance(verification, dict) or verification.get("results_sha256") != results_sha256(
                raw
            ):
                continue
            record = verified_record(json.loads(raw), source=path, verification=verification)
        except Exception as exc:  # noqa: BLE001 - one damaged file must not stop every review
            log.warning("skipping %s on main: %s", path, exc)
            continue
        record.revision = verification.get("model_sha") or record.revision
        record.eval_revision = verification.get("eval_revision") or record.eval_revision
        records.append(record)
    return records


def _comment(state: str, reason: str, extra: str = "") -> str:
    return f"{REVIEW_MARK} {state}**\n\nReason: {reason}\n" + (f"\n{extra}\n" if extra else "")


def _reject(api: Any, repo_id: str, num: int, reason: str, folder: str | None = None) -> Outcome:
    reason = reason.replace("\r", " ").strip()[:2000]
    from huggingface_hub.errors import HfHubHTTPError

    api.comment_discussion(repo_id, num, _comment("rejected", reason), repo_type="dataset")
    try:
        api.change_discussion_status(repo_id, num, "closed", repo_type="dataset")
    except HfHubHTTPError:  # already merged (an unvalidated merge that was reverted): the comment says it
        if api.get_discussion_details(repo_id, num, repo_type="dataset").status == "open":
            raise
    return Outcome(pr_num=num, state="rejected", reason=reason, folder=folder)


def _evaluate_into_pr(
    api: Any, repo_id: str, pr: Any, folder: str, request: dict, evaluate: Evaluate
) -> Path:
    """Run the harness for a request and push its results + samples onto the PR branch."""
    from huggingface_hub import CommitOperationAdd

    out = Path(evaluate(request["model"], request["revision"]))
    results_file = sorted(out.glob("results*.json"))[-1]
    results = json.loads(results_file.read_text())
    if results.get("not_computed"):  # the reviewer's machine lacks the eval set's NLI model
        raise ReviewerSetupError(
            f"the harness could not compute {results['not_computed']} here; give the reviewer the eval "
            "set's NLI model (see its metric_config.json)"
        )
    ops = [CommitOperationAdd(f"{folder}/{RESULTS_FILE}", results_file.read_bytes())]
    ops += [
        CommitOperationAdd(f"{folder}/{n}", (out / n).read_bytes())
        for n in sorted(results["samples"].values())
    ]
    api.create_commit(
        repo_id,
        ops,
        commit_message="Harness results for the request",
        repo_type="dataset",
        revision=pr.git_reference,
    )
    return results_file


@dataclass
class _Context:
    """What one review run shares across PRs."""

    org: str
    main: dict[str, tuple[str | None, int]]
    accepted: list[Record]
    history: list[Any]
    reviewers: set[str]
    max_bytes: int = MAX_SUBMISSION_BYTES
    rate_limit: int = 5
    window_hours: float = 24.0
    spot_check_n: int = DEFAULT_SPOT_CHECK
    regenerate: Regenerate | None = None
    evaluate: Evaluate | None = None


def _check_rate(pr: Any, ctx: _Context) -> None:
    """Rate limit by the PR's author (the Hub account that opened it), whatever it claims to be."""
    author = getattr(pr, "author", None) or "<unknown>"
    earlier = [d.created_at for d in ctx.history if d.num < pr.num and getattr(d, "author", None) == author]
    check_rate_limit(author, pr.created_at, earlier, ctx.rate_limit, ctx.window_hours)


def review_one(
    api: Any,
    repo_id: str,
    pr: Any,
    *,
    org: str,
    main: dict[str, tuple[str | None, int]],
    accepted: list[Record],
    history: list[Any],
    max_bytes: int = MAX_SUBMISSION_BYTES,
    rate_limit: int = 5,
    window_hours: float = 24.0,
    spot_check_n: int = DEFAULT_SPOT_CHECK,
    regenerate: Regenerate | None = None,
    evaluate: Evaluate | None = None,
    reviewers: set[str] | None = None,
) -> Outcome:
    ctx = _Context(
        org, main, accepted, history, reviewers if reviewers is not None else _reviewers(api, repo_id),
        max_bytes, rate_limit, window_hours, spot_check_n, regenerate, evaluate,
    )  # fmt: skip
    return _review(api, repo_id, pr, ctx)


def _review(api: Any, repo_id: str, pr: Any, ctx: _Context) -> Outcome:
    folder = None
    try:
        _check_rate(pr, ctx)
        head = _head(api, repo_id, pr.git_reference)  # validated and merged: this sha, nothing else
        added = _new_files(api, repo_id, head, ctx.main)
        folder = os.path.dirname(next(iter(added)))
        check_sizes_remote({p: size for p, (_, size) in added.items()}, ctx.max_bytes)
        namespace = folder.split("/")[1]
        with tempfile.TemporaryDirectory(prefix="lmolt-review-") as tmp:
            local = _download(api, repo_id, head, sorted(added), Path(tmp))
            names = {os.path.basename(p) for p in added}
            if REQUEST_FILE in names and RESULTS_FILE not in names:
                return _request(api, repo_id, pr, folder, local, ctx)
            verdict = validate_results_submission(
                local, api=api, org=ctx.org, max_bytes=ctx.max_bytes, regenerate=ctx.regenerate,
                spot_check_n=ctx.spot_check_n, seed=pr.num,
            )  # fmt: skip
            if not verdict.results["model"]["id"].startswith(f"{namespace}/"):
                raise SubmissionError(
                    f"folder namespace {namespace!r} does not match model {verdict.record.model}"
                )
            check_duplicate(verdict.record, ctx.accepted)
        return _accept(api, repo_id, pr, folder, verdict, ctx.accepted, head)
    except SubmissionError as exc:
        return _reject(api, repo_id, pr.num, str(exc), folder)


def _request(api: Any, repo_id: str, pr: Any, folder: str, local: Path, ctx: _Context) -> Outcome:
    request = validate_request(local, api=api, max_bytes=ctx.max_bytes)
    if ctx.evaluate is None:
        msg = f"evaluation of {request['model']}@{request['revision'][:12]} queued for a maintainer"
        if _last_review(_pr_comments(api, repo_id, pr.num, ctx.reviewers))[0] != "running":  # say it once
            api.comment_discussion(repo_id, pr.num, _comment("running", msg), repo_type="dataset")
        return Outcome(pr_num=pr.num, state="running", reason=msg, folder=folder)
    _evaluate_into_pr(api, repo_id, pr, folder, request, ctx.evaluate)
    again = dataclasses.replace(ctx, evaluate=None, history=[d for d in ctx.history if d.num != pr.num])
    return _review(api, repo_id, pr, again)  # the results now on the PR, validated like any others


def _merge_validated(api: Any, repo_id: str, num: int, sha: str) -> None:
    """Merge PR ``num`` only while its head is still ``sha``: checked just before, and named in the
    request (``expectedHeadOid``, which the local Hub enforces atomically)."""
    pr_ref = f"refs/pr/{num}"
    now = _head(api, repo_id, pr_ref)
    if now != sha:
        raise SubmissionError(
            f"the PR changed during review (head {sha[:12]} -> {now[:12]}); nothing was merged: "
            "open a new PR and do not push to it while it is reviewed"
        )
    post = getattr(api, "_post_discussion_changes", None)
    if post is None:  # a client without the raw call: the check above is the guard
        api.merge_pull_request(repo_id, num, repo_type="dataset")
        return
    post(repo_id=repo_id, discussion_num=num, resource="merge", body={"expectedHeadOid": sha},
         repo_type="dataset")  # fmt: skip


def _accept(
    api: Any, repo_id: str, pr: Any, folder: str, verdict: Any, accepted: list[Record], validated: str
) -> Outcome:
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    verification = {**verdict.verification, "reviewed_at": _now().isoformat(), "pr": pr.num,
                    "validated_commit": validated}  # fmt: skip
    main_before = _head(api, repo_id, "main")
    try:  # parent_commit: refused by the Hub if anything was pushed since the validated sha
        info = api.create_commit(
            repo_id,
            [CommitOperationAdd(f"{folder}/{VERIFICATION_FILE}",
                                json.dumps(verification, indent=1, sort_keys=True).encode())],
            commit_message="Verification record", repo_type="dataset", revision=pr.git_reference,
            parent_commit=validated,
        )  # fmt: skip
        _merge_validated(api, repo_id, pr.num, info.oid)
        _audit_merge(api, repo_id, main_before, info.oid, folder)
    except HfHubHTTPError as exc:
        if exc.response is not None and exc.response.status_code in (409, 412):
            raise SubmissionError(
                f"the PR changed during review (its head is no longer {validated[:12]}); nothing was merged: "
                "open a new PR and do not push to it while it is reviewed"
            ) from None
        raise
    statuses = " and ".join(verification.get("statuses") or [])
    detail = f"{statuses}; checks passed: " + ", ".join(verdict.checks)
    spot = verification.get("spot_check")
    if spot:
        detail += f"; spot check matched {sum(len(v) for v in spot['ids'].values())} regenerated outputs"
    api.comment_discussion(repo_id, pr.num, _comment("verified", detail), repo_type="dataset")
    verdict.record.source = f"{folder}/{RESULTS_FILE}"
    accepted.append(verdict.record)
    return Outcome(
        pr_num=pr.num,
        state="verified",
        reason=detail,
        folder=folder,
        record=verdict.record,
        checks=verdict.checks,
    )


def _audit_merge(api: Any, repo_id: str, main_before: str, verified: str, folder: str) -> None:
    """After the merge, main must be exactly main before it plus the validated folder. Where a
    Hub does not enforce the expected head (a push raced the merge), restore main and refuse."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    before = _tree(api, repo_id, main_before)
    ours = {p: e for p, e in _tree(api, repo_id, verified).items() if p.startswith(folder + "/")}
    want = {p: blob for p, (blob, _) in {**before, **ours}.items()}
    after = {p: blob for p, (blob, _) in _tree(api, repo_id, "main").items()}
    if after == want:
        return
    ops: list[Any] = [CommitOperationDelete(p) for p in sorted(set(after) - set(before))]
    ops += [
        CommitOperationAdd(p, _read_main(api, repo_id, p, main_before))
        for p in sorted(before)
        if after.get(p) != before[p][0]
    ]
    api.create_commit(
        repo_id, ops, commit_message=f"Revert an unvalidated merge ({folder})", repo_type="dataset"
    )
    changed = sorted(p for p in set(after) | set(want) if after.get(p) != want.get(p))
    raise SubmissionError(
        f"the merge brought in changes that were not validated ({', '.join(changed[:3])}); main was "
        "restored and nothing was accepted: open a new PR and do not push to it while it is reviewed"
    )


def _whoami(api: Any) -> str | None:
    try:
        return api.whoami()["name"]
    except Exception:  # noqa: BLE001 - anonymous or an old server
        return None


def _reviewers(api: Any, repo_id: str) -> set[str]:
    """Accounts whose review comments carry status: the repo's namespace and the card's
    ``lmolt.reviewers`` (only the owner can change main's card)."""
    names = {repo_id.split("/")[0]}
    try:
        card = api.dataset_info(repo_id, revision="main").card_data
        card = card.to_dict() if hasattr(card, "to_dict") else (card or {})
        listed = (card.get("lmolt") or {}).get("reviewers") or []
        names |= {str(n) for n in listed if isinstance(n, str)}
    except Exception:  # noqa: BLE001 - no card: the namespace alone
        pass
    return names


def _network_error(exc: BaseException) -> bool:
    import httpx

    try:
        import requests

        extra: tuple[type[BaseException], ...] = (requests.ConnectionError, requests.Timeout)
    except ImportError:
        extra = ()
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError, *extra))


def review(
    repo_id: str | None = None,
    *,
    org: str | None = None,
    api: Any = None,
    max_bytes: int = MAX_SUBMISSION_BYTES,
    rate_limit: int = 5,
    window_hours: float = 24.0,
    spot_check_n: int = DEFAULT_SPOT_CHECK,
    regenerate: Regenerate | None = None,
    evaluate: Evaluate | None = None,
) -> list[Outcome]:
    """Validate every open PR (oldest first): merge accepted ones, close rejected ones, comment on all.

    The spot check is on by default (``spot_check_n`` pairs per direction, regenerated with the
    harness on the CPU unless ``regenerate`` is given); ``spot_check_n=0`` turns it off.
    A submission that breaks the review is rejected with the reason; only the reviewer's own
    trouble (no network, the eval set's NLI model missing) leaves a PR pending.
    """
    if spot_check_n > 0 and regenerate is None:
        from lmolt_hub.leaderboard.harness import regenerator

        regenerate = regenerator(device="cpu")
    api = _api(api)
    org = org or default_org()
    repo_id = repo_id or leaderboard_repo(org)
    main = _tree(api, repo_id, "main")
    history = sorted(
        (d for d in api.get_repo_discussions(repo_id, repo_type="dataset") if d.is_pull_request),
        key=lambda d: d.num,
    )
    ctx = _Context(
        org, main, accepted_records(api, repo_id, main), history,
        _reviewers(api, repo_id) | ({_whoami(api)} - {None}),
        max_bytes, rate_limit, window_hours, spot_check_n, regenerate, evaluate,
    )  # fmt: skip
    outcomes = []
    for pr in [d for d in history if d.status == "open"]:
        outcome = _review_safely(api, repo_id, pr, ctx)
        outcomes.append(outcome)
        if outcome.state == "verified":
            ctx.main = _tree(api, repo_id, "main")
    return outcomes


def _review_safely(api: Any, repo_id: str, pr: Any, ctx: _Context) -> Outcome:
    """One PR's review; whatever it raises ends as an outcome, so the next PR is reviewed."""
    try:
        return _review(api, repo_id, pr, ctx)
    except ReviewerSetupError as exc:
        log.warning("PR #%s stays pending: %s", pr.num, exc)
        return Outcome(pr_num=pr.num, state="pending", reason=f"reviewer cannot run: {exc}")
    except Exception as exc:  # noqa: BLE001 - one broken review must not stop the others
        if _network_error(exc):  # the reviewer's connection, not the submission: retried next time
            log.warning("PR #%s stays pending (network): %s", pr.num, exc)
            return Outcome(pr_num=pr.num, state="pending", reason=f"review failed, will retry: {exc!r}")
        log.exception("review of PR #%s failed", pr.num)
        reason = f"the review could not process this submission ({type(exc).__name__}: {str(exc)[:300]})"
        try:
            return _reject(api, repo_id, pr.num, reason)
        except Exception:  # noqa: BLE001 - could not even comment: leave it for the next run
            return Outcome(pr_num=pr.num, state="pending", reason=f"review failed, will retry: {exc!r}")


# --------------------------------------------------------------------------- status


def _pr_comments(api: Any, repo_id: str, num: int, reviewers: set[str] | None = None) -> list[str]:
    """Comment texts of PR ``num``; with ``reviewers``, only theirs (others' carry no status)."""
    details = api.get_discussion_details(repo_id, num, repo_type="dataset")
    return [
        getattr(e, "content", "") or ""
        for e in details.events
        if getattr(e, "type", "") == "comment"
        and (reviewers is None or getattr(e, "author", None) in reviewers)
    ]


def _last_review(comments: list[str]) -> tuple[str | None, str]:
    for text in reversed(comments):
        if text.startswith(REVIEW_MARK):
            state = text[len(REVIEW_MARK) :].split("**", 1)[0].strip()
            reason = text.split("Reason:", 1)[1].strip().split("\n\n", 1)[0] if "Reason:" in text else ""
            return state, reason
    return None, ""


def status(repo_id: str | None = None, api: Any = None) -> list[dict[str, Any]]:
    """Every submission PR with its state (pending, running, verified, rejected) and reason."""
    api = _api(api)
    repo_id = repo_id or leaderboard_repo()
    reviewers = _reviewers(api, repo_id)
    rows = []
    for d in sorted(api.get_repo_discussions(repo_id, repo_type="dataset"), key=lambda d: d.num):
        if not d.is_pull_request:
            continue
        review_state, reason = _last_review(_pr_comments(api, repo_id, d.num, reviewers))
        if d.status == "merged":  # unless the reviewer reverted an unvalidated merge
            state = "rejected" if review_state == "rejected" else "verified"
        elif d.status == "closed":
            state = "rejected"
            reason = reason or "closed without a review comment"
        else:
            state = "running" if review_state == "running" else "pending"
        rows.append(
            {
                "pr": d.num,
                "title": d.title,
                "author": d.author,
                "created_at": d.created_at.isoformat(),
                "state": state,
                "reason": reason,
            }
        )
    return rows
