#!/usr/bin/env bash
# Installs the Debian packages s1c needs, only those missing. Usage: scripts/deps.sh [build|test]
#   build: compiler, CMake, pkg-config, cJSON, PCRE2, utf8proc, libcurl
#   test:  build + cmocka, clang with libFuzzer, OpenMPI (data-parallel training is built and
#          tested when present), PyTorch/NumPy (reference fixtures; OpenBLAS so
#          torch does not fall back to the 20x slower reference BLAS)
set -euo pipefail
set_name="${1:-build}"
pkgs=(gcc make cmake pkg-config libcjson-dev libpcre2-dev libutf8proc-dev libcurl4-openssl-dev)
if [ "$set_name" = test ]; then
    pkgs+=(libcmocka-dev clang libclang-rt-14-dev python3 python3-numpy python3-torch python3-jinja2 libopenblas0-pthread chromium libopenmpi-dev openmpi-bin)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "[deps] installing: ${missing[*]}" >&2
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
