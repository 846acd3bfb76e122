#!/bin/sh
# Installs Debian's Chromium (/usr/bin/chromium) for the browser tests of the HTML report
# (tests/report/test_browser.py), when it is missing and this runs as root with apt-get.
# Never fails: where Chromium cannot be had, those tests skip and say why.
# Used by `make test`; CI scripts may call it too.
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: not root or no apt-get; the browser tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# another apt run on the machine holds the lock: wait for it (up to 10 minutes)
lock="-o DPkg::Lock::Timeout=600"
if ! apt-get $lock install -y -q --no-install-recommends chromium >/dev/null 2>&1; then
    apt-get $lock update -q >/dev/null 2>&1
    apt-get $lock install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
        || echo "install-chromium: apt-get install chromium failed; the browser tests will skip" >&2
fi
exit 0
