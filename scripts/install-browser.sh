#!/usr/bin/env bash
# Install the browser the HTML report tests drive: Debian's Chromium at /usr/bin/chromium.
# Playwright (from requirements-dev.lock) drives it; never let a tool download a browser of its own.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: not root, skipping; install Debian's chromium package (as root) to run" \
        "the browser tests" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "installed: $(/usr/bin/chromium --version 2>/dev/null)"
