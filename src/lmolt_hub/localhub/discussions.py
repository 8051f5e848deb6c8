"""Discussions and pull requests of the local Hub, on top of ``storage``: opening, commenting,
status and title changes, commits to ``refs/pr/N``, merging (fast-forward or a conflict-checked
three-way merge), and the repair of crash windows (``recover``).

Files: ``repos/<type>s/<ns>/<name>/discussions/<n>.json`` (one per discussion, its events inline);
a pull request's head is the ref ``refs/pr/<n>`` in ``refs.json``.

Multi-file updates are ordered so a crash leaves no visible half-state, and ``recover`` (run by
the first server to open a root, before it serves) repairs what an older version could leave:
a pull request's ref is written before its discussion file (an orphan ref is dropped on start),
and a merge commit records the PR it merges (``mergedPr``), so a PR whose merge moved the branch
but was not yet marked merged is recognised as merged and never merged twice.

Every JSON file is written through ``storage.write_json_atomic`` (looked up at call time: one
seam for the crash tests' fault injection).
"""

from __future__ import annotations

import contextlib
import html
import json
import uuid
from pathlib import Path
from typing import Any

from lmolt_hub.localhub import storage as st
from lmolt_hub.localhub.entries import FileEntry
from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.storage import Storage, now_iso

Operation = tuple[str, str, FileEntry | None]


class Discussions:
    """Discussions and pull requests of the repos in ``store``; safe to call from many threads."""

    def __init__(self, store: Storage):
        self.store = store

    # ---- reading
    def get(self, repo_type: str, repo_id: str, num: int) -> dict:
        self.store.repo_meta(repo_type, repo_id)
        try:
            return st.read_json(self._dir(repo_type, repo_id) / f"{int(num)}.json")
        except FileNotFoundError:
            raise HubError(404, f"Discussion #{num} not found in {repo_id}") from None

    def list(self, repo_type: str, repo_id: str) -> list[dict]:
        """All discussions of a repo, newest first."""
        self.store.repo_meta(repo_type, repo_id)
        items = [st.read_json(p) for p in self._dir(repo_type, repo_id).glob("*.json")]
        return sorted(items, key=lambda x: x["num"], reverse=True)

    def pr_diff(self, repo_type: str, repo_id: str, disc: dict) -> str:
        """A name-status summary (``A``/``D``/``M`` and the path) of a PR against its base."""
        head = self.store.refs(repo_type, repo_id)["pr"].get(str(disc["num"]))
        base = disc.get("baseCommit")
        if not head or not base:
            return ""
        a, b = self.store.files(repo_type, repo_id, base), self.store.files(repo_type, repo_id, head)
        return "\n".join(
            f"{'A' if p not in a else 'D' if p not in b else 'M'}\t{p}"
            for p in sorted(set(a) | set(b))
            if a.get(p) != b.get(p)
        )

    # ---- opening and commenting
    def create(
        self, repo_type: str, repo_id: str, title: str, description: str, pull_request: bool, author: str
    ) -> dict:
        title = (title or "").strip()
        if not 3 <= len(title) <= 200:
            raise HubError(400, "Discussion title must be 3-200 characters")
        with self.store.lock(repo_type, repo_id):
            d = self.store.repo_dir(repo_type, repo_id)
            refs = self.store.refs(repo_type, repo_id)
            num = _next_num(d, refs)
            disc = _new_discussion(num, title, description, author, pull_request, repo_type, repo_id)
            if pull_request:
                disc["status"] = "draft"
                disc["changes"] = {"base": "refs/heads/main"}
                disc["baseCommit"] = refs["heads"]["main"]
                refs["pr"][str(num)] = refs["heads"]["main"]
                self.store.save_refs(d, refs)  # ref first (see commit)
            st.write_json_atomic(d / "discussions" / f"{num}.json", disc)
            return disc

    def commit(
        self,
        repo_type: str,
        repo_id: str,
        revision: str,
        header: dict,
        operations: list[Operation],
        author: str,
        create_pr: bool = False,
    ) -> tuple[str, int | None]:
        """Commit to a branch, to ``refs/pr/N``, or as a new pull request (``create_pr``) based on
        ``revision``; returns (commit sha, new PR number or None). See ``Storage.stage_commit``."""
        with self.store.committing(repo_type, repo_id) as d:
            refs = self.store.refs(repo_type, repo_id)
            staged = self.store.stage_commit(repo_type, repo_id, refs, revision, header, operations, author)
            event = _event("commit", author, {"subject": staged.title, "oid": staged.sha})
            if not create_pr:
                refs[staged.kind][staged.name] = staged.sha
                self.store.save_refs(d, refs)  # the commit becomes visible here
                if staged.kind == "pr" and staged.sha != staged.head:
                    self._append_event(d, int(staged.name), event)
                return staged.sha, None
            num = _next_num(d, refs)
            refs["pr"][str(num)] = staged.sha
            base = staged.name if staged.kind == "heads" else "main"
            disc = _new_discussion(num, staged.title, staged.message, author, True, repo_type, repo_id)
            disc["changes"] = {"base": f"refs/heads/{base}"}
            disc["baseCommit"] = staged.head
            disc["events"].append(event)
            # Ref first, discussion last: a crash in between leaves an orphan ref (dropped by
            # recover), never a listed PR without a ref.
            self.store.save_refs(d, refs)
            st.write_json_atomic(d / "discussions" / f"{num}.json", disc)
            return staged.sha, num

    def comment(self, repo_type: str, repo_id: str, num: int, text: str, author: str) -> dict:
        if not text or not text.strip():
            raise HubError(400, "Comment must not be empty")
        with self.store.lock(repo_type, repo_id):
            self.get(repo_type, repo_id, num)
            event = _comment_event(author, text)
            self._append_event(self.store.repo_dir(repo_type, repo_id), num, event)
            return event

    def edit_comment(
        self,
        repo_type: str,
        repo_id: str,
        num: int,
        comment_id: str,
        user: str,
        may_moderate: bool,
        **change: str,
    ) -> dict:
        """Edit (``content=``, its author only) or hide (``hide=``, its author or a moderator) a
        comment; returns the updated event. The first comment (the description) is editable too."""
        d = self.store.repo_dir(repo_type, repo_id)
        with self.store.lock(repo_type, repo_id):
            disc = self.get(repo_type, repo_id, num)
            event = next(
                (e for e in disc["events"] if e["id"] == comment_id and e["type"] == "comment"), None
            )
            if event is None:
                raise HubError(404, f"Comment {comment_id[:40]!r} not found in #{num} of {repo_id}")
            owner = event["author"]["name"] == user
            if not (owner or ("hide" in change and may_moderate)):
                raise HubError(
                    403, f"User {user!r} may not change comment {comment_id!r}: only its author may"
                )
            data = event["data"]
            if "content" in change:
                text = change["content"]
                if not text.strip():
                    raise HubError(400, "Comment must not be empty")
                latest = {
                    **data["latest"],
                    "raw": text,
                    "html": f"<p>{html.escape(text)}</p>",
                    "updatedAt": now_iso(),
                }
                data.update(latest=latest, edited=True, numEdits=data.get("numEdits", 0) + 1)
                data["history"] = [latest, *data.get("history", [])]
            else:
                hidden = {**data["latest"], "raw": "", "html": "", "updatedAt": now_iso()}
                data.update(hidden=True, hiddenBy=user, latest=hidden, history=[])  # content is gone
            st.write_json_atomic(d / "discussions" / f"{num}.json", disc)
            return event

    def change_status(
        self, repo_type: str, repo_id: str, num: int, status: str, comment: str | None, author: str
    ) -> dict:
        if status not in ("open", "closed"):
            raise HubError(400, "status must be 'open' or 'closed'")
        d = self.store.repo_dir(repo_type, repo_id)
        with self.store.lock(repo_type, repo_id):
            disc = self.get(repo_type, repo_id, num)
            if disc["status"] == "merged":
                raise HubError(400, f"Pull request #{num} is already merged")
            event = _event("status-change", author, {"status": status})
            if comment:
                self._append_event(d, num, _comment_event(author, comment))
            self._append_event(d, num, event, status=status)
            return event

    def rename(self, repo_type: str, repo_id: str, num: int, title: str, author: str) -> dict:
        d = self.store.repo_dir(repo_type, repo_id)
        with self.store.lock(repo_type, repo_id):
            disc = self.get(repo_type, repo_id, num)
            event = _event("title-change", author, {"from": disc["title"], "to": title})
            self._append_event(d, num, event, title=title)
            return event

    def _append_event(self, d: Path, num: int, event: dict, **updates: Any) -> dict:
        """Add an event to a discussion; the caller holds the repo lock."""
        path = d / "discussions" / f"{num}.json"
        try:
            disc = st.read_json(path)
        except FileNotFoundError:
            raise HubError(404, f"Discussion #{num} not found") from None
        disc["events"].append(event)
        disc.update(updates)
        st.write_json_atomic(path, disc)
        return disc

    def _dir(self, repo_type: str, repo_id: str) -> Path:
        return self.store.repo_dir(repo_type, repo_id) / "discussions"

    # ---- merging
    def merge_pr(
        self,
        repo_type: str,
        repo_id: str,
        num: int,
        comment: str | None,
        author: str,
        expected_head: str | None = None,
    ) -> str:
        """Merge PR ``num`` into its base branch (fast-forward or a conflict-checked 3-way merge).

        ``expected_head``: refuse (409) unless the PR's head is still this commit (merge only
        what was reviewed). Order: merge commit, branch ref, then the discussion's "merged"
        record; a crash before the last step is recognised by the merge commit's ``mergedPr``.
        """
        with self.store.committing(repo_type, repo_id) as d:
            disc = self.get(repo_type, repo_id, num)
            if not disc["isPullRequest"]:
                raise HubError(400, f"#{num} is a discussion, not a pull request")
            if disc["status"] not in ("open", "draft"):
                raise HubError(400, f"Pull request #{num} is {disc['status']}; only open PRs can be merged")
            refs = self.store.refs(repo_type, repo_id)
            base_branch = disc["changes"]["base"].removeprefix("refs/heads/")
            if base_branch not in refs["heads"]:
                raise HubError(404, f"Base branch {base_branch!r} no longer exists", "RevisionNotFound")
            if str(num) not in refs["pr"]:
                raise HubError(409, f"Pull request #{num} has no head ref; it cannot be merged")
            pr_head = refs["pr"][str(num)]
            if expected_head is not None and expected_head != pr_head:
                raise HubError(
                    409,
                    f"Pull request #{num} head moved to {pr_head} (expected {expected_head}); "
                    "review the new head before merging",
                )
            base_head = refs["heads"][base_branch]
            done = _find_merge(d, disc, base_head)
            if done is not None:  # merged before a crash: record it, never merge twice
                self._record_merged(d, disc, done, author)
                raise HubError(400, f"Pull request #{num} is already merged (commit {done})")
            fork = disc.get("baseCommit", base_head)
            title = f"Merge pull request #{num}: {disc['title']}"
            if base_head == fork:
                files = self.store.files(repo_type, repo_id, pr_head)
            else:
                files = self._three_way(repo_type, repo_id, fork, base_head, pr_head, num)
            sha = self.store.write_commit(d, [base_head, pr_head], files, title, comment or "", author, num)
            refs["heads"][base_branch] = sha
            self.store.save_refs(d, refs)
            if comment:
                self._append_event(d, num, _comment_event(author, comment))
            self._record_merged(d, disc, sha, author)
            return sha

    def _record_merged(self, d: Path, disc: dict, sha: str, author: str) -> None:
        changes = {**disc["changes"], "mergeCommitId": sha}
        self._append_event(
            d,
            disc["num"],
            _event("status-change", author, {"status": "merged"}),
            status="merged",
            changes=changes,
        )

    def _three_way(
        self, repo_type: str, repo_id: str, fork: str, ours: str, theirs: str, num: int
    ) -> dict[str, FileEntry]:
        base_f = self.store.files(repo_type, repo_id, fork)
        ours_f = self.store.files(repo_type, repo_id, ours)
        theirs_f = self.store.files(repo_type, repo_id, theirs)
        merged = dict(ours_f)
        conflicts = []
        for path in set(base_f) | set(theirs_f):
            b, t, o = base_f.get(path), theirs_f.get(path), ours_f.get(path)
            if b == t:
                continue  # unchanged in the PR
            if o == b or o == t:
                if t is None:
                    merged.pop(path, None)
                else:
                    merged[path] = t
            else:
                conflicts.append(path)
        if conflicts:
            raise HubError(
                409, f"Pull request #{num} conflicts with its base on: {', '.join(sorted(conflicts))}"
            )
        return merged

    # ---- crash recovery (run with no other server on the root)
    def recover(self) -> list[str]:
        """Repair half-states a crash can leave; returns one line per repair.

        - a PR ref without a discussion file (crash while opening a PR): the ref is dropped;
        - a PR discussion without a ref (older versions wrote the discussion first): the ref is
          restored to its last pushed commit (or its base);
        - a merge that moved the branch but was not recorded: the PR is marked merged.
        """
        fixes: list[str] = []
        for meta_path in sorted((self.store.root / "repos").glob("*/*/*/repo.json")):
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError, HubError):
                meta = st.read_json(meta_path)
                fixes += self._recover_repo(meta["type"], meta["id"])
        return fixes

    def _recover_repo(self, repo_type: str, repo_id: str) -> list[str]:
        d = self.store.repo_dir(repo_type, repo_id)
        fixes = []
        with self.store.lock(repo_type, repo_id):
            refs = self.store.refs(repo_type, repo_id)
            discs = {
                int(p.stem): st.read_json(p) for p in (d / "discussions").glob("*.json") if p.stem.isdigit()
            }
            prs = {n: x for n, x in discs.items() if x.get("isPullRequest")}
            changed = False
            for n in [n for n in refs["pr"] if not n.isdigit() or int(n) not in prs]:
                del refs["pr"][n]
                changed = True
                fixes.append(f"{repo_id}: dropped orphan ref refs/pr/{n}")
            for n, disc in prs.items():
                if str(n) not in refs["pr"]:
                    pushed = [e["data"]["oid"] for e in disc["events"] if e.get("type") == "commit"]
                    refs["pr"][str(n)] = (pushed or [disc.get("baseCommit") or refs["heads"]["main"]])[-1]
                    changed = True
                    fixes.append(f"{repo_id}: restored ref refs/pr/{n}")
            if changed:
                self.store.save_refs(d, refs)
            for n, disc in prs.items():
                branch = disc.get("changes", {}).get("base", "refs/heads/main").removeprefix("refs/heads/")
                if disc["status"] in ("open", "draft") and branch in refs["heads"]:
                    done = _find_merge(d, disc, refs["heads"][branch])
                    if done is not None:
                        self._record_merged(d, disc, done, "lmolt-hub")
                        fixes.append(f"{repo_id}: PR #{n} recorded as merged ({done})")
        return fixes


# ---------------------------------------------------------------- module helpers


def _next_num(d: Path, refs: dict) -> int:
    nums = [int(p.stem) for p in (d / "discussions").glob("*.json") if p.stem.isdigit()]
    nums += [int(n) for n in refs["pr"] if n.isdigit()]  # an orphan ref's number is not reused
    return max(nums, default=0) + 1


def _find_merge(d: Path, disc: dict, base_head: str) -> str | None:
    """The merge commit of this PR on the base branch's first-parent line, if there is one."""
    stop = 0
    with contextlib.suppress(FileNotFoundError, KeyError):
        stop = st.read_json(d / "commits" / f"{disc['baseCommit']}.json").get("generation", 0)
    cur: str | None = base_head
    while cur:
        c = st.read_json(d / "commits" / f"{cur}.json")
        if c.get("mergedPr") == disc["num"]:
            return cur
        if c.get("generation", 0) <= stop:
            return None
        cur = c["parents"][0] if c["parents"] else None
    return None


def _new_discussion(
    num: int, title: str, description: str, author: str, pr: bool, repo_type: str, repo_id: str
) -> dict:
    return {
        "num": num,
        "title": title,
        "status": "open",
        "isPullRequest": pr,
        "author": {"name": author},
        "createdAt": now_iso(),
        "repo": {"name": repo_id, "type": repo_type},
        "events": [_comment_event(author, description or "")],
        "filesWithConflicts": [],
    }


def _event(kind: str, author: str, data: dict) -> dict:
    return {
        "id": uuid.uuid4().hex[:24],
        "type": kind,
        "createdAt": now_iso(),
        "author": {"name": author},
        "data": data,
    }


def _comment_event(author: str, text: str) -> dict:
    latest = {
        "raw": text,
        "html": f"<p>{html.escape(text)}</p>",
        "updatedAt": now_iso(),
        "author": {"name": author},
    }
    return _event(
        "comment",
        author,
        {"edited": False, "hidden": False, "numEdits": 0, "latest": latest, "history": [latest]},
    )
