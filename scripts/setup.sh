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

# A real MTA for tests/test_real_mta.py and benchmarks/real_mta.py: a throwaway Postfix instance on loopback
# (its own config and queue under /tmp; never the system's /etc/postfix or port 25) with STARTTLS (a certificate
# made by openssl) and SMTP AUTH (Cyrus SASL: saslpasswd2 from sasl2-bin, PLAIN/LOGIN from libsasl2-modules);
# the benchmarks also use Postfix's smtp-sink. Debian's "No configuration" install writes no main.cf and starts
# no Postfix service. Without these (or not as root) those tests are skipped, or fail when CI is set.
mta_missing=""
[ -x /usr/sbin/postfix ] && [ -x /usr/sbin/smtp-sink ] || mta_missing="$mta_missing postfix"
[ -x /usr/sbin/saslpasswd2 ] || mta_missing="$mta_missing sasl2-bin"
ls /usr/lib/*/sasl2/libplain.so* >/dev/null 2>&1 || mta_missing="$mta_missing libsasl2-modules"
command -v openssl >/dev/null || mta_missing="$mta_missing openssl"
if [ -n "$mta_missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing the Debian packages${mta_missing} for the real-MTA tests"
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        # shellcheck disable=SC2086  # one word per package
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $mta_missing >/dev/null 2>&1 || {
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $mta_missing >/dev/null
        }
    else
        echo "setup:${mta_missing} missing and cannot be installed here (needs root and apt-get);" \
             "the real-MTA tests will be skipped" >&2
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
