#!/usr/bin/env bash
# Make a fresh Debian Bookworm root for the install test, the way a Raspberry Pi OS Lite image starts:
# systemd, python3 and CA certificates, nothing of ours.
#
# usage: make_root.sh ROOT [CACHE_DIR]
#
# debootstrap takes minutes on two cores, so with CACHE_DIR the pristine root is kept there as a tarball
# and later runs only unpack it. CI passes no cache dir and so proves the whole path from the mirror.
set -euo pipefail

root=${1:?usage: make_root.sh ROOT [CACHE_DIR]}
cache_dir=${2:-}
suite=${MASKWATCH_TEST_SUITE:-bookworm}
mirror=${MASKWATCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${MASKWATCH_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# What Raspberry Pi OS Lite has before setup.sh runs: an init, Python and the CA bundle.
include=systemd,python3,ca-certificates

tarball=${cache_dir:+$cache_dir/$suite-minbase.tar}

# A root file system's / is world-readable; a test's temporary folder may not be (pytest makes 0700 ones),
# and then no user but root could run anything inside.
mkdir -p "$root"
chmod 0755 "$root"

if [[ -n $tarball && -s $tarball ]]; then
    echo "make_root: unpacking cached $tarball"
    tar -xpf "$tarball" -C "$root"
    exit 0
fi

echo "make_root: debootstrap $suite from $mirror (minutes)"
# nice: the machine is shared with a training run that must not starve.
nice -n 19 debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror"

# The same sources a real Bookworm system has, so apt sees the point releases and security fixes.
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
SOURCES
rm -rf "$root"/var/cache/apt/archives/*.deb

if [[ -n $tarball ]]; then
    mkdir -p "$cache_dir"
    tar -cpf "$tarball.tmp" -C "$root" .
    mv "$tarball.tmp" "$tarball"
    echo "make_root: cached $tarball"
fi
