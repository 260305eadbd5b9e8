#!/usr/bin/env bash
# Debian packages the install tests need: shellcheck (setup.sh lint), debootstrap (a fresh Bookworm root),
# systemd (systemd-analyze verify and security), systemd-container (boots the installed root with nspawn),
# python3-seccomp (runs the demo under the unit's syscall filter). Does nothing when all are there; needs root
# or passwordless sudo otherwise (`sudo -n`: a test run must never stop at a password prompt).
# The tests call it themselves when a tool is missing, so CI needs no extra step.
set -euo pipefail

packages=(shellcheck debootstrap systemd systemd-container python3-seccomp)

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0

as_root=()
if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1 || ! sudo -n true 2>/dev/null; then
        echo "deps.sh: need root or passwordless sudo to install ${missing[*]}" >&2
        exit 1
    fi
    as_root=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
