"""Reviewing submissions: validate every open PR, merge the accepted ones, close the others.

What the reviewer trusts: nothing in the PR but the bytes it validates. The PR head is
resolved to a commit sha once; every file is read at that sha, the verification record is
committed with that sha as its parent, and the merge names the expected head, so a push
during review is refused, never merged. ``verification.json`` carries ``results_sha256``
(the accepted results.json bytes) and the statuses ("re-scored", "reproduced"). The rate
limit counts PRs by their author, not by the namespace a title or folder claims.
``ReviewPolicy`` holds the reviewer's knobs (spot check, sizes, rate limit, device).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import os
import pickle
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmolt_hub.leaderboard import layout, protocol
from lmolt_hub.leaderboard.layout import REQUEST_FILE, RESULTS_FILE, SUBMISSIONS_DIR, VERIFICATION_FILE
from lmolt_hub.leaderboard.records import Record, verified_record
from lmolt_hub.leaderboard.sandbox import Limits, SandboxError, run_limited
from lmolt_hub.leaderboard.validate import (
    DEFAULT_SPOT_CHECK,
    MAX_DOWNLOAD_BYTES,
    MAX_PARAMS,
    MAX_SUBMISSION_BYTES,
    Regenerate,
    ReviewerSetupError,
    SubmissionError,
    check_sizes_remote,
    results_sha256,
    validate_request,
    validate_results_submission,
)
from lmolt_hub.naming import default_org

log = logging.getLogger(__name__)

# (model_id, revision) -> folder holding a results file (results*.json) and its samples.
Evaluate = Callable[[str, str], Path]


@dataclass(frozen=True)
class ReviewPolicy:
    """The reviewer's settings. ``spot_check_n``: pairs regenerated per direction (0: off);
    ``max_bytes``: per submission; ``rate_limit`` PRs per author per ``window_hours``;
    ``device``: where the default spot check generates; ``spot_check_full``: regenerate every pair;
    ``limits``: the child process of every step that touches a submitted model; ``max_params`` and
    ``max_download_bytes``: the largest model the reviewer builds and downloads."""

    spot_check_n: int = DEFAULT_SPOT_CHECK
    max_bytes: int = MAX_SUBMISSION_BYTES
    rate_limit: int = 5
    window_hours: float = 24.0
    device: str | None = "cpu"
    spot_check_full: bool = False
    limits: Limits = field(default_factory=Limits)
    max_params: int = MAX_PARAMS
    max_download_bytes: int = MAX_DOWNLOAD_BYTES

    def model_options(self) -> dict[str, Any]:
        """``check_model``'s limits (its loading runs on the CPU: the memory cap applies)."""
        return {
            "limits": self.limits,
            "max_params": self.max_params,
            "max_download_bytes": self.max_download_bytes,
        }

    def device_limits(self) -> Limits:
        """The child's limits on ``device``: CUDA reserves far more address space than it uses."""
        return (
            self.limits
            if self.device in (None, "cpu")
            else dataclasses.replace(self.limits, memory_bytes=None)
        )

    def with_overrides(self, **overrides: Any) -> ReviewPolicy:
        """This policy with some fields replaced (an unknown name is a TypeError)."""
        return dataclasses.replace(self, **overrides) if overrides else self


@dataclass
class Outcome:
    pr_num: int
    state: str
    reason: str
    folder: str | None = None
    record: Record | None = None
    checks: list[str] = field(default_factory=list)


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
    base = layout.tree(api, repo_id, _fork_point(api, repo_id, head))
    pr_tree = layout.tree(api, repo_id, head)
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


def check_duplicate(record: Record, accepted: Sequence[Record]) -> None:
    """Same key (model at its commit sha, eval set sha, versions) as an accepted record: refused."""
    for other in accepted:
        if other.key() == record.key():
            raise SubmissionError(
                f"duplicate: {record.model}@{(record.revision or '')[:12]} on {record.eval_dataset}"
                f"@{(record.eval_revision or '')[:12]} (template {record.template_version}, metrics "
                f"{record.metrics_version}) is already on the leaderboard ({other.source})"
            )


def check_rate_limit(
    who: str, this_time: _dt.datetime, earlier: Sequence[_dt.datetime], limit: int, window_hours: float
) -> None:
    """At most ``limit`` reviews of PRs by one author (``who``) within ``window_hours`` (counting this
    one): reviews, not PRs, so reopening a closed PR buys no extra review."""
    start = this_time - _dt.timedelta(hours=window_hours)
    recent = [t for t in earlier if start <= t <= this_time]
    if len(recent) + 1 > limit:
        raise SubmissionError(
            f"rate limit: submissions by {who!r} were already reviewed {len(recent)} time(s) in the last "
            f"{window_hours:g} h (limit {limit}); try again later"
        )


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
            raw = layout.read_file(api, repo_id, path)
            verification = json.loads(layout.read_file(api, repo_id, ver_path))
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


def _still_open(api: Any, repo_id: str, num: int) -> str:
    """The PR's state now (a second reviewer's snapshot may predate a merge or a close)."""
    return str(api.get_discussion_details(repo_id, num, repo_type="dataset").status)


class MergeReverted(SubmissionError):
    """This reviewer's own merge brought in unvalidated changes and was reverted: the PR is merged,
    and the rejection must still be posted on it."""


def _reject(
    api: Any, repo_id: str, num: int, reason: str, folder: str | None = None, check_state: bool = True
) -> Outcome:
    reason = reason.replace("\r", " ").strip()[:2000]
    from huggingface_hub.errors import HfHubHTTPError

    now = _still_open(api, repo_id, num) if check_state else "open"
    if now != "open":  # merged or closed meanwhile (by another reviewer): its outcome stands
        return Outcome(
            pr_num=num, state="skipped", reason=f"the PR is {now} now; nothing posted", folder=folder
        )

    api.comment_discussion(repo_id, num, protocol.review_comment("rejected", reason), repo_type="dataset")
    try:
        api.change_discussion_status(repo_id, num, "closed", repo_type="dataset")
    except HfHubHTTPError:  # already merged (an unvalidated merge that was reverted): the comment says it
        if api.get_discussion_details(repo_id, num, repo_type="dataset").status == "open":
            raise
    return Outcome(pr_num=num, state="rejected", reason=reason, folder=folder)


def _run_evaluate(evaluate: Evaluate, model: str, revision: str, limits: Limits) -> Path:
    """The harness on a submitted model, in a child under ``limits``: a panic, a timeout or a crash is
    the submission's rejection. (A test's in-process hook that cannot be pickled runs in process.)"""
    try:
        pickle.dumps(evaluate)
    except Exception:  # noqa: BLE001 - a closure: only tests hand one in
        return evaluate(model, revision)
    try:
        return run_limited(evaluate, model, revision, limits=limits, what=f"evaluation of {model}")
    except SandboxError as exc:
        raise SubmissionError(str(exc)) from None


def _evaluate_into_pr(
    api: Any, repo_id: str, pr: Any, folder: str, request: dict, evaluate: Evaluate, limits: Limits
) -> Path:
    """Run the harness for a request and push its results + samples onto the PR branch."""
    from huggingface_hub import CommitOperationAdd

    out = Path(_run_evaluate(evaluate, request["model"], request["revision"], limits))
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
    policy: ReviewPolicy = field(default_factory=ReviewPolicy)
    regenerate: Regenerate | None = None
    evaluate: Evaluate | None = None
    evaluated: bool = False  # the reviewer itself ran the harness for this PR's request
    reviews: dict[str, list[Any]] = field(default_factory=dict)  # author -> times of reviews of their PRs


def _review_times(api: Any, repo_id: str, author: str, ctx: _Context) -> list[Any]:
    """When the reviewers reviewed (verified or rejected) PRs by ``author``: read once per run from the
    PRs' comments, then kept up to date as this run reviews."""
    if author not in ctx.reviews:
        times = []
        for d in ctx.history:
            if getattr(d, "author", None) != author:
                continue
            for e in api.get_discussion_details(repo_id, d.num, repo_type="dataset").events:
                text = getattr(e, "content", "") or ""
                if getattr(e, "type", "") == "comment" and getattr(e, "author", None) in ctx.reviewers and \
                        protocol.last_review([text])[0] in ("verified", "rejected"):  # fmt: skip
                    times.append(e.created_at)
        ctx.reviews[author] = times
    return ctx.reviews[author]


def _check_rate(api: Any, repo_id: str, pr: Any, ctx: _Context) -> None:
    """Rate limit by the PR's author (the Hub account that opened it), whatever it claims to be,
    counting reviews (a reopened PR is reviewed again, and counts again)."""
    author = getattr(pr, "author", None) or "<unknown>"
    earlier = _review_times(api, repo_id, author, ctx)
    check_rate_limit(author, layout.now(), earlier, ctx.policy.rate_limit, ctx.policy.window_hours)
    earlier.append(layout.now())


def _owners(api: Any, namespace: str) -> set[str]:
    """Who may create rows for models in ``namespace``: the account itself, or the org's members."""
    try:
        return {namespace} | {m.username for m in api.list_organization_members(namespace)}
    except Exception:  # noqa: BLE001 - not an org (or the Hub lists no members): the account alone
        return {namespace}


def check_owner(api: Any, pr: Any, namespace: str, ctx: _Context) -> None:
    """Only the namespace's owner (or a member of the org), a reviewer, or the reviewer's own run of
    an evaluation request creates a row for a model: nobody squats another team's model."""
    author = getattr(pr, "author", None) or "<unknown>"
    if ctx.evaluated or author in ctx.reviewers or author in _owners(api, namespace):
        return
    raise SubmissionError(
        f"{author!r} is not {namespace!r} nor a member of it: only the model's owner submits its results; "
        f"anyone may ask for an evaluation instead (lmolt-hub leaderboard submit --model MODEL)"
    )


def review_one(
    api: Any,
    repo_id: str,
    pr: Any,
    *,
    org: str,
    main: dict[str, tuple[str | None, int]],
    accepted: list[Record],
    history: list[Any],
    policy: ReviewPolicy | None = None,
    regenerate: Regenerate | None = None,
    evaluate: Evaluate | None = None,
    reviewers: set[str] | None = None,
    **policy_fields: Any,
) -> Outcome:
    """Review one PR (``review`` does all open ones); ``policy_fields`` override ``policy``."""
    ctx = _Context(
        org, main, accepted, history, reviewers if reviewers is not None else protocol.reviewers(api, repo_id),
        (policy or ReviewPolicy()).with_overrides(**policy_fields), regenerate, evaluate,
    )  # fmt: skip
    return _review(api, repo_id, pr, ctx)


def _review(api: Any, repo_id: str, pr: Any, ctx: _Context) -> Outcome:
    folder = None
    try:
        _check_rate(api, repo_id, pr, ctx)
        head = layout.head(api, repo_id, pr.git_reference)  # validated and merged: this sha, nothing else
        added = _new_files(api, repo_id, head, ctx.main)
        folder = os.path.dirname(next(iter(added)))
        check_sizes_remote({p: size for p, (_, size) in added.items()}, ctx.policy.max_bytes)
        namespace = folder.split("/")[1]
        with tempfile.TemporaryDirectory(prefix="lmolt-review-") as tmp:
            local = layout.download(api, repo_id, head, sorted(added), Path(tmp))
            names = {os.path.basename(p) for p in added}
            if REQUEST_FILE in names and RESULTS_FILE not in names:
                return _request(api, repo_id, pr, folder, local, ctx)
            verdict = validate_results_submission(
                local, api=api, org=ctx.org, max_bytes=ctx.policy.max_bytes, regenerate=ctx.regenerate,
                spot_check_n=ctx.policy.spot_check_n, spot_check_full=ctx.policy.spot_check_full,
                model_options=ctx.policy.model_options(), requested=ctx.evaluated,
            )  # fmt: skip
            if not verdict.results["model"]["id"].startswith(f"{namespace}/"):
                raise SubmissionError(
                    f"folder namespace {namespace!r} does not match model {verdict.record.model}"
                )
            check_owner(api, pr, namespace, ctx)
            check_duplicate(verdict.record, ctx.accepted)
            verdict.verification["pr_author"] = getattr(pr, "author", None)
            verdict.verification["evaluated_by_reviewer"] = ctx.evaluated
            copy_of = _copy_of(verdict, ctx.accepted)
            if copy_of:
                verdict.verification["copy_of"] = copy_of
                verdict.record.verification = verdict.verification
        return _accept(api, repo_id, pr, folder, verdict, ctx.accepted, head)
    except SubmissionError as exc:
        return _reject(api, repo_id, pr.num, str(exc), folder, check_state=not isinstance(exc, MergeReverted))


def _request(api: Any, repo_id: str, pr: Any, folder: str, local: Path, ctx: _Context) -> Outcome:
    request = validate_request(local, api=api, max_bytes=ctx.policy.max_bytes,
                               model_options=ctx.policy.model_options())  # fmt: skip
    if ctx.evaluate is None:
        msg = f"evaluation of {request['model']}@{request['revision'][:12]} queued for a maintainer"
        if (
            protocol.last_review(protocol.pr_comments(api, repo_id, pr.num, ctx.reviewers))[0] != "running"
        ):  # say it once
            api.comment_discussion(
                repo_id, pr.num, protocol.review_comment("running", msg), repo_type="dataset"
            )
        return Outcome(pr_num=pr.num, state="running", reason=msg, folder=folder)
    _evaluate_into_pr(api, repo_id, pr, folder, request, ctx.evaluate, ctx.policy.device_limits())
    again = dataclasses.replace(ctx, evaluate=None, evaluated=True, reviews={})
    again.reviews[getattr(pr, "author", None) or "<unknown>"] = []  # one review, not two
    return _review(api, repo_id, pr, again)  # the results now on the PR, validated like any others


def _copy_of(verdict: Any, accepted: list[Record]) -> str | None:
    """The model of an accepted row with the same weights (content hash) under another id, if any."""
    mine = verdict.verification.get("weights_sha256")
    for other in accepted:
        if mine and other.model != verdict.record.model and other.verification.get("weights_sha256") == mine:
            return other.verification.get("copy_of") or other.model
    return None


def _merge_validated(api: Any, repo_id: str, num: int, sha: str) -> None:
    """Merge PR ``num`` only while its head is still ``sha``: checked just before, and named in the
    request (``expectedHeadOid``, which the local Hub enforces atomically)."""
    pr_ref = f"refs/pr/{num}"
    now = layout.head(api, repo_id, pr_ref)
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

    now = _still_open(api, repo_id, pr.num)
    if now != "open":  # another reviewer decided it meanwhile
        return Outcome(
            pr_num=pr.num, state="skipped", reason=f"the PR is {now} now; nothing posted", folder=folder
        )
    verification = {**verdict.verification, "reviewed_at": layout.now().isoformat(), "pr": pr.num,
                    "validated_commit": validated}  # fmt: skip
    main_before = layout.head(api, repo_id, "main")
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
    api.comment_discussion(repo_id, pr.num, protocol.review_comment("verified", detail), repo_type="dataset")
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

    before = layout.tree(api, repo_id, main_before)
    ours = {p: e for p, e in layout.tree(api, repo_id, verified).items() if p.startswith(folder + "/")}
    want = {p: blob for p, (blob, _) in {**before, **ours}.items()}
    after = {p: blob for p, (blob, _) in layout.tree(api, repo_id, "main").items()}
    if after == want:
        return
    ops: list[Any] = [CommitOperationDelete(p) for p in sorted(set(after) - set(before))]
    ops += [
        CommitOperationAdd(p, layout.read_file(api, repo_id, p, main_before))
        for p in sorted(before)
        if after.get(p) != before[p][0]
    ]
    api.create_commit(
        repo_id, ops, commit_message=f"Revert an unvalidated merge ({folder})", repo_type="dataset"
    )
    changed = sorted(p for p in set(after) | set(want) if after.get(p) != want.get(p))
    raise MergeReverted(
        f"the merge brought in changes that were not validated ({', '.join(changed[:3])}); main was "
        "restored and nothing was accepted: open a new PR and do not push to it while it is reviewed"
    )


def _network_error(exc: BaseException) -> bool:
    extra: list[type[BaseException]] = []
    try:
        import httpx

        extra.append(httpx.TransportError)
    except ImportError:  # huggingface_hub may use another HTTP client
        pass
    try:
        import requests

        extra += [requests.ConnectionError, requests.Timeout]
    except ImportError:
        pass
    return isinstance(exc, (ConnectionError, TimeoutError, *extra))


def review(
    repo_id: str | None = None,
    *,
    org: str | None = None,
    api: Any = None,
    policy: ReviewPolicy | None = None,
    regenerate: Regenerate | None = None,
    evaluate: Evaluate | None = None,
    **policy_fields: Any,
) -> list[Outcome]:
    """Validate every open PR (oldest first): merge accepted ones, close rejected ones, comment on all.

    ``policy`` (with ``policy_fields`` overriding it, e.g. ``rate_limit=50``) sets the limits.
    The spot check is on by default (``policy.spot_check_n`` pairs per direction, regenerated
    in memory on ``policy.device`` unless ``regenerate`` is given); ``spot_check_n=0`` turns it off.
    A submission that breaks the review is rejected with the reason; only the reviewer's own
    trouble (no network, the eval set's NLI model missing) leaves a PR pending.
    """
    policy = (policy or ReviewPolicy()).with_overrides(**policy_fields)
    if policy.spot_check_n > 0 and regenerate is None:
        from lmolt_hub.leaderboard.validate import regenerator

        regenerate = regenerator(device=policy.device, limits=policy.limits)
    api = layout.hub_api(api)
    org = org or default_org()
    repo_id = repo_id or layout.leaderboard_repo(org)
    main = layout.tree(api, repo_id, "main")
    history = sorted(
        (d for d in api.get_repo_discussions(repo_id, repo_type="dataset") if d.is_pull_request),
        key=lambda d: d.num,
    )
    ctx = _Context(
        org, main, accepted_records(api, repo_id, main), history,
        protocol.reviewers(api, repo_id) | ({layout.whoami(api)} - {None}),
        policy, regenerate, evaluate,
    )  # fmt: skip
    outcomes = []
    for pr in [d for d in history if d.status == "open"]:
        outcome = _review_safely(api, repo_id, pr, ctx)
        outcomes.append(outcome)
        if outcome.state == "verified":
            ctx.main = layout.tree(api, repo_id, "main")
    return outcomes


def _review_safely(api: Any, repo_id: str, pr: Any, ctx: _Context) -> Outcome:
    """One PR's review; whatever it raises ends as an outcome, so the next PR is reviewed."""
    try:
        return _review(api, repo_id, pr, ctx)
    except ReviewerSetupError as exc:
        log.warning("PR #%s stays pending: %s", pr.num, exc)
        return Outcome(pr_num=pr.num, state="pending", reason=f"reviewer cannot run: {exc}")
    except BaseException as exc:  # noqa: BLE001 - one broken review (even a Rust panic) must not stop the others
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise  # KeyboardInterrupt, SystemExit, a test's timeout: not the submission's doing
        if _network_error(exc):  # the reviewer's connection, not the submission: retried next time
            log.warning("PR #%s stays pending (network): %s", pr.num, exc)
            return Outcome(pr_num=pr.num, state="pending", reason=f"review failed, will retry: {exc!r}")
        log.exception("review of PR #%s failed", pr.num)
        reason = f"the review could not process this submission ({type(exc).__name__}: {str(exc)[:300]})"
        try:
            return _reject(api, repo_id, pr.num, reason)
        except Exception:  # noqa: BLE001 - could not even comment: leave it for the next run
            return Outcome(pr_num=pr.num, state="pending", reason=f"review failed, will retry: {exc!r}")
