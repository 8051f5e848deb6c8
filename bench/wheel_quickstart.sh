#!/usr/bin/env bash
# The quickstart from an installed wheel, not from the checkout (issue 16):
#   1. build the wheel from a clean copy of what the build reads (pyproject, README, src, recipes);
#   2. install it into a fresh venv (no pip inside, nothing downloaded: --no-deps --no-index);
#   3. run `lmolt-hub quickstart` from another directory, with that venv's entry point.
# Dependencies come from the project's environment: a .pth path line in the fresh venv adds its
# site-packages *after* the venv's own (a path line, so the .pth files there, such as the
# checkout's editable install, are not processed and src/ never reaches sys.path).
#
#   bash bench/wheel_quickstart.sh [WORK_DIR] [-- QUICKSTART_ARGS...]
#   bash bench/wheel_quickstart.sh /tmp/wq -- --limit 8 --max-new-tokens 24
#
# PYTHON selects the environment that provides the dependencies (default: the checkout's .venv).
# Prints one "[wheel] ..." line per step with seconds; tests/project/test_wheel_quickstart.py runs it.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
if [ $# -gt 0 ] && [ "$1" != "--" ]; then WORK=$1; shift; else WORK=$(mktemp -d); fi
[ "${1:-}" = "--" ] && shift
mkdir -p "$WORK" && WORK=$(cd "$WORK" && pwd)

step() { echo "[wheel] $1: $(($(date +%s) - T0)) s"; T0=$(date +%s); }
START=$(date +%s); T0=$START

rm -rf "$WORK/src-copy" "$WORK/dist" && mkdir -p "$WORK/src-copy"
(cd "$REPO" && tar cf - --exclude=__pycache__ --exclude='*.egg-info' --exclude=build \
    pyproject.toml README.md src recipes) | tar xf - -C "$WORK/src-copy"
"$PY" -m pip wheel -q --no-deps --no-build-isolation "$WORK/src-copy" -w "$WORK/dist"
WHEEL=$(ls "$WORK"/dist/lmolt_hub-*.whl)
step "built $(basename "$WHEEL")"

"$PY" -m venv --without-pip --clear "$WORK/venv"
"$PY" -m pip --python "$WORK/venv/bin/python" install -q --no-deps --no-index "$WHEEL"
DEPS=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
SITE=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$DEPS" > "$SITE/zz_lmolt_deps.pth"
step "installed into $WORK/venv (dependencies from $DEPS)"

mkdir -p "$WORK/elsewhere" && cd "$WORK/elsewhere"
"$WORK/venv/bin/python" - "$REPO" "$WORK/venv" <<'EOF'
import sys
from pathlib import Path

import lmolt_hub
from lmolt_hub.resources import recipe

repo, venv = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
where = Path(lmolt_hub.__file__).resolve()
print(f"[wheel] lmolt_hub: {where}")
chain = recipe("tiny/slerp-cpo/chain.yaml").resolve()
if not where.is_relative_to(venv) or not chain.is_relative_to(venv):
    sys.exit(f"[wheel] lmolt_hub or its recipes come from outside the venv: {where}, {chain}")
if any(Path(p or ".").resolve().is_relative_to(repo / "src") for p in sys.path):
    sys.exit("[wheel] the checkout's src/ is on sys.path")
EOF
PATH="$WORK/venv/bin:$PATH" env -u HF_ENDPOINT lmolt-hub quickstart --root "$WORK/quickstart" "$@"
step "quickstart"
test -s "$WORK/quickstart/quickstart.json"
echo "[wheel] total: $(($(date +%s) - START)) s"
