#!/usr/bin/env bash
# Installs headless Chromium (Debian package `chromium`) for the HTML report test
# (`reports/tests/load_html_browser.rs`). Idempotent: does nothing when a Chromium is already on
# PATH. Needs root or sudo for apt-get; without them it says so and exits non-zero.
set -euo pipefail

for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then
        echo "browser: $(command -v "$b") ($("$b" --version 2>/dev/null || echo 'version unknown'))"
        exit 0
    fi
done

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "setup-browser: chromium is missing and neither root nor sudo is available to install it" >&2
    exit 1
fi

echo "browser: installing the Debian package chromium"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
echo "browser: $(command -v chromium) ($(chromium --version 2>/dev/null || true))"
