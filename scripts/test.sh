#!/usr/bin/env bash
# Install everything the tests need into .venv, from the hash-locked files only, and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-browser.sh  # Debian's Chromium, for the HTML report tests
source scripts/install.sh
.venv/bin/python -m pytest -q "$@"
if [ "$#" -eq 0 ]; then
    # The tests of calls once more, every hosted model's call sent by two worker processes
    # (calls/pool.py), as large runs do: Ctrl-C, SIGTERM, retries, the breaker, adaptive
    # concurrency, --max-cost and redaction must behave the same either way.
    echo "again with calls sent by worker processes (PROMPTTEST_WORKERS=2):" >&2
    PROMPTTEST_WORKERS=2 .venv/bin/python -m pytest -q tests/test_pool.py tests/test_faults.py \
        tests/test_budget.py tests/test_interrupt.py tests/test_interrupt_moments.py \
        tests/test_cli_run.py tests/test_tool_calls.py tests/test_judge.py
fi
