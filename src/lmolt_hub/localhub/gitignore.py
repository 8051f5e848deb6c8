""".gitignore matching for pre-upload (``shouldIgnore``), as the Hub applies a repo's ``.gitignore``.

Git's rules (gitignore(5)), for the paths of one upload: blank lines and ``#`` comments are
skipped; ``!`` re-includes; a trailing ``/`` matches folders only (so everything under one); a
pattern with a ``/`` before its end is anchored at the repo root, otherwise it matches at any
depth; ``*`` and ``?`` stay inside one path part, ``**`` spans parts; the last matching line wins.
Standard library only, like the rest of the local Hub.
"""

from __future__ import annotations

import re

MAX_RULES = 2000  # lines of a .gitignore honoured (it comes from users)
MAX_RULE_LEN = 256  # longer lines, or lines with more '**' (regex backtracking), are skipped
MAX_DOUBLE_STARS = 3


def _part_regex(glob: str) -> str:
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("/**", i) and i + 3 == len(glob):
            out.append("/.*")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : end].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        elif c == "\\" and i + 1 < len(glob):
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


class GitIgnore:
    """``ignored(path)`` for a repo-relative path (``/``-separated)."""

    def __init__(self, text: str):
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines()[:MAX_RULES]:
            line = raw.rstrip("\r")
            if not line.strip() or line.startswith("#") or len(line) > MAX_RULE_LEN:
                continue
            if line.count("**") > MAX_DOUBLE_STARS:
                continue
            line = line.rstrip(" ") if not line.endswith("\\ ") else line
            negate = line.startswith("!")
            if negate:
                line = line[1:]
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = "/" in line
            line = line.lstrip("/")
            if not line:
                continue
            body = _part_regex(line)
            prefix = "" if anchored else "(?:.*/)?"
            # A match on a folder ignores everything below it; a folder-only rule needs something below.
            suffix = "/.*" if dir_only else "(?:/.*)?"
            try:
                self.rules.append((negate, re.compile(f"^{prefix}{body}{suffix}$", re.DOTALL)))
            except re.error:
                continue  # a malformed class: git ignores the line too

    def ignored(self, path: str) -> bool:
        result = False
        for negate, rx in self.rules:
            if rx.match(path):
                result = not negate
        return result
