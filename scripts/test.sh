#!/usr/bin/env bash
# Install everything the tests need into .venv (from the hash-locked file) and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
.venv/bin/python -m pytest -q "$@"
