#!/usr/bin/env bash
# Install prompttest with the embedded local model into .venv (hash-locked files only) and
# run the example suites on it: offline, no API key. Extra arguments go to `prompttest run`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install.sh
.venv/bin/prompttest run "$@"
