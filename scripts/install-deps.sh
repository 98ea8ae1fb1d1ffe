#!/usr/bin/env bash
# Installs every Debian package that realnet's build and tests need. Idempotent: packages already present are
# left alone, and apt-get update runs only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  lua5.4 liblua5.4-dev lua-busted
  libdnnl-dev libopenblas-dev
  libedit-dev
  libpng-dev libjpeg-dev libtiff-dev libhdf5-dev
  valgrind
  gnuplot-nox
  openmpi-bin
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
