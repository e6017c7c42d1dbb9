#!/usr/bin/env bash
# fetch-debs.sh: run HERE (the Debian build machine, which has network), not
# on the GPU machine. Downloads the Debian packages that the GPU machine's
# image lacks (headers and shared libraries for Criterion, OpenBLAS/LAPACKE,
# ZeroMQ, msgpack-c, LMDB, libpng, libjpeg, zlib, cJSON and their library
# dependencies, and GNU make in case the image has none) into .devdeps/ (git-ignored via .git/info/exclude), with the
# ordinary apt client. tests/device/run.sh unpacks them with dpkg-deb -x into
# a private root (never into /) when the image lacks the headers.
# Pass .devdeps to the device tool's `carry`.
set -euo pipefail
case "${1:-}" in
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  "") ;;
  *) echo "fetch-debs.sh: takes no arguments (see --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../.."
grep -qx '/.devdeps/' .git/info/exclude 2>/dev/null || echo '/.devdeps/' >> .git/info/exclude
mkdir -p .devdeps
cd .devdeps
pkgs="libcriterion-dev libcriterion3 libnanomsg5 libgit2-1.5 libmbedtls14 libmbedx509-1
 libmbedcrypto7 libhttp-parser2.9 libssh2-1 libffi8
 libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libopenblas0 libgfortran5 libquadmath0
 liblapacke-dev liblapacke libtmglib3 libblas3 liblapack3
 libzmq3-dev libzmq5 libsodium23 libpgm-5.3-0 libnorm1 libbsd0 libmd0
 libmsgpack-dev libmsgpackc2 liblmdb-dev liblmdb0 libpng-dev libpng16-16
 libjpeg62-turbo-dev libjpeg62-turbo zlib1g-dev zlib1g libcjson-dev libcjson1
 make"
# apt-get download as root warns that _apt cannot write here; harmless.
apt-get download $pkgs 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
ls -1 *.deb | wc -l
du -sh .
