#!/usr/bin/env bash
# Creates .venv and installs the project with everything its tests need. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip

# Semantic ranking needs PyTorch. Take the CPU build first (on these machines a local wheel), so that the
# `semantic` extra does not pull a multi-gigabyte CUDA build; without it the ranker runs lexical-only.
extras="test"
if .venv/bin/python -m pip install --quiet "torch==2.13.0"; then
    extras="test,semantic"
else
    echo "setup: PyTorch 2.13.0 (CPU) not available; installing without the semantic extra" >&2
fi
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
echo "setup: installed into .venv with extras [${extras}]"

# Browser tests drive Debian's Chromium through Playwright; never a browser downloaded by a test tool.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
    else
        echo "setup: /usr/bin/chromium missing and cannot install it here; browser tests will be skipped" >&2
    fi
fi

# The deliverability test scores a real edition with SpamAssassin's local rules (tests/test_deliverability.py):
# Debian's package, installed when missing and root (elsewhere the test skips, and fails under CI).
if ! command -v spamassassin >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            spamassassin >/dev/null
    else
        echo "setup: spamassassin missing and cannot install it here; the deliverability test will be skipped" >&2
    fi
fi
