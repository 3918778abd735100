#!/usr/bin/env bash
# Install Debian's chromium for the browser tests (tests/test_app_browser.py)
# when it is missing. Playwright drives this browser; we never run
# `playwright install` (it downloads a browser build from outside the
# package registries). Needs root (or sudo) and apt.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install_chromium: /usr/bin/chromium is missing and we are neither root nor have sudo: install Debian's chromium by hand" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: no apt-get here: install chromium by hand (the browser tests need /usr/bin/chromium)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
