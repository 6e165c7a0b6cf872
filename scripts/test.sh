#!/usr/bin/env bash
# Install everything the tests need into .venv, from the hash-locked files only, and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
quiet_pip() { "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }; }
bash scripts/install-browser.sh  # Debian's Chromium, for the HTML report tests
python3 -m venv .venv
quiet_pip .venv/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
quiet_pip .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
.venv/bin/python -m pytest -q "$@"
