#!/usr/bin/env bash
# Install everything the tests need into .venv, from the hash-locked files only, and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-browser.sh  # Debian's Chromium, for the HTML report tests
source scripts/install.sh
.venv/bin/python -m pytest -q "$@"
