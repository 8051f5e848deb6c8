#!/usr/bin/env bash
# The prepared GPU check as one command (offline; under 8 minutes on one H100/H200 by our estimate).
#   bash bench/gpu_check.sh [--out FILE] [--only SECTION ...]      (see bench/README.md)
# Wheels brought along in $WHEELS (default bench/wheels) are installed only for the packages that
# are missing, from that folder alone (pip --no-index): nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
WHEELS="${WHEELS:-bench/wheels}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  missing=()
  for whl in "$WHEELS"/*.whl; do
    name="$(basename "$whl" | cut -d- -f1)"
    "$PY" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$name" 2>/dev/null || missing+=("$name")
  done
  if ((${#missing[@]})); then
    echo "installing from $WHEELS: ${missing[*]}"
    "$PY" -m pip install --quiet --no-index --find-links "$WHEELS" "${missing[@]}"
  fi
fi
exec timeout 590 "$PY" bench/gpu_check.py "$@"
