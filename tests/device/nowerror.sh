#!/usr/bin/env bash
# nowerror.sh COMPILER ARGS...: runs the compiler without the flags that turn
# warnings into errors (-Werror, -Werror=..., nvcc's "-Werror all-warnings"
# and "-Xcompiler -Werror"). tests/device/run.sh builds through it on the GPU
# machine, whose compilers differ from the build machine's: a new warning
# there must be logged (build.log), not stop the one device run.
set -u
[ $# -ge 1 ] || { echo "nowerror.sh: usage: nowerror.sh COMPILER ARGS..." >&2; exit 2; }
cc=$1; shift
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -Werror) [ "${2:-}" = all-warnings ] && shift ;;          # nvcc: -Werror all-warnings
    -Werror=*) ;;
    -Xcompiler)
      if [ "${2:-}" = -Werror ]; then shift; else args+=("$1"); fi ;;
    *) args+=("$1") ;;
  esac
  shift
done
exec $cc "${args[@]}"
