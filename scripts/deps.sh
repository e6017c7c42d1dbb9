#!/usr/bin/env bash
# Installs the Debian packages the project needs, or prints the exact command
# when not root. Idempotent and quiet when everything is present.
set -u
PKGS=(
  build-essential clang libclang-rt-14-dev
  libopenblas-dev libopenblas-openmp-dev liblapacke-dev
  libzmq3-dev libmsgpack-dev liblmdb-dev lmdb-utils
  libpng-dev libjpeg-dev zlib1g-dev libcjson-dev libstb-dev
  libcriterion-dev
  libopenmpi-dev openmpi-bin
  python3 python3-numpy python3-scipy python3-pil
  python3-zmq python3-msgpack python3-lmdb
  dataset-fashion-mnist
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: missing packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: not root; run:"
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || { echo "deps: apt-get update failed"; exit 1; }
apt-get install -y -qq "${missing[@]}" >/dev/null || {
  echo "deps: apt-get install failed; run: apt-get install -y ${missing[*]}"; exit 1; }
echo "deps: installed ${missing[*]}"
