#!/usr/bin/env bash
# Install the Debian packages kith needs to build, test and benchmark, if any is missing.
# Idempotent; needs root (or sudo) only when something must be installed.
set -euo pipefail
packages=(build-essential cmake pkg-config liblmdb-dev lmdb-utils libsodium-dev libmsgpack-dev
          libzmq3-dev libcriterion-dev libjansson-dev libqrencode-dev iproute2 clang clang-format libclang-rt-14-dev
          jq python3 gdb groff-base man-db)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
