#!/usr/bin/env bash
# System packages the tests need, from Debian (bookworm): a real MQTT broker and a real headless browser.
# Idempotent and quiet: does nothing when everything is already installed. CI calls it via `make setup-dev`.
set -euo pipefail

PACKAGES=(
    mosquitto        # tests/test_mqtt.py starts its own broker on a random loopback port
    chromium         # tests/test_browser.py drives the status page headless
    chromium-driver  # Selenium's WebDriver for Debian's chromium (no browser download)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged broker service is not needed (tests start their own); keep it from holding port 1883.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
    $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
fi
