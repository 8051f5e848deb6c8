#!/usr/bin/env bash
# One-command set-up on a fresh Debian/Ubuntu machine (run from the repository root).
# System packages: WordNet (METEOR offline) and Chromium (the leaderboard page's browser test).
# Python: a virtual environment in .venv with lmolt-hub and all its extras.
# Nothing here downloads from huggingface.co.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else SUDO=none; fi
fi
if [ "$SUDO" = none ]; then
  echo "warning: not root and no sudo: skipping apt-get (install wordnet-base wordnet-sense-index chromium chromium-driver yourself)" >&2
elif command -v apt-get >/dev/null; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    wordnet-base wordnet-sense-index chromium chromium-driver git
fi

PYTHON="${PYTHON:-python3}"
[ -d .venv ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# The exact tested versions (constraints.txt; pyproject.toml has the compatible ranges). torch first,
# so on the build machines nothing can pull a CUDA build in place of the local CPU wheel.
.venv/bin/pip install -q -c constraints.txt torch
.venv/bin/pip install -q -c constraints.txt -e ".[all]"
.venv/bin/lmolt-hub setup-wordnet
# The real Llama-2 vocabulary for the tokenizer tests (from llama-cpp-python's sdist on the package
# index, ~75 MB once, 3 files kept in $LMOLT_CACHE/test-vocab); a failure only makes those tests skip.
.venv/bin/python -m lmolt_hub.llama_vocab || true
echo "lmolt-hub is set up: source .venv/bin/activate"
