#!/usr/bin/env bash
# check-layering.sh [ROOT]: the layering rule of docs/ARCHITECTURE.md, checked.
# Reads every `#include "..."` in the C/CUDA sources under ROOT (default: the
# repository this script is in) and fails when a file includes from a layer
# its folder may not use. Each violation is printed as
#   FILE:LINE: includes "PATH" (layer L): RULE
# and the exit status is 1 if there was any, 0 if none, 2 on usage errors.
#
# Layers (a folder may include its own files and the layers named here):
#   core/                      nothing else of ours
#   nn/ (nn/cpu, nn/cuda)      core
#   models/                    core, nn
#   metrics/                   core, nn, models, data (pixel bytes of images)
#   data/, bus/, store/        core
#   dist/                      core, nn
#   stages/common/             every library above
#   stages/X/                  every library, stages/common (never stages/Y)
#   tests/, bench/, fuzz/, tools/   everything below the stages' own folders
#                              (libraries and stages/common), and their own folder
# nn/cpu/ and nn/cuda/ (the backends) are included only by nn/ itself, tests/
# and bench/ (and nn/cuda by dist/'s NCCL code): everything else uses nn/*.h.
# Angle-bracket includes (system and third-party headers) are not checked.
# A quoted include resolves as the compiler resolves it: first beside the
# including file, then from ROOT (the build uses -I.).
set -u
case "${1:-}" in
  -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
esac
[ $# -le 1 ] || { echo "check-layering.sh: at most one argument, the tree's root (see --help)" >&2; exit 2; }
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
[ -d "$ROOT" ] || { echo "check-layering.sh: $ROOT is not a directory" >&2; exit 2; }
cd "$ROOT" || exit 2

LIBS="core nn models metrics data bus store dist"

# The layer of a repository path (prints nothing for files outside every layer).
layer_of() {
  case "$1" in
    stages/common/*) echo stages/common ;;
    stages/*/*) local r=${1#stages/}; echo "stages/${r%%/*}" ;;
    core/*|nn/*|models/*|metrics/*|data/*|bus/*|store/*|dist/*|tests/*|bench/*|fuzz/*|tools/*) echo "${1%%/*}" ;;
  esac
}

# What layer $1 may include besides itself.
allowed_for() {
  case "$1" in
    core) echo "" ;;
    nn) echo "core" ;;
    models) echo "core nn" ;;
    metrics) echo "core nn models data" ;;
    data|bus|store) echo "core" ;;
    dist) echo "core nn" ;;
    stages/common) echo "$LIBS" ;;
    stages/*|tests|bench|fuzz|tools) echo "$LIBS stages/common" ;;
  esac
}

bad=0 files=0 incs=0
while IFS= read -r -d '' f; do
  f=${f#./}
  from=$(layer_of "$f")
  files=$((files + 1))
  if [ -z "$from" ]; then
    echo "$f:1: file outside every layer: C sources belong in one of $LIBS stages tests bench fuzz tools"
    bad=$((bad + 1))
    continue
  fi
  allow="$from $(allowed_for "$from")"
  dir=$(dirname "$f")
  while IFS=: read -r line inc; do
    incs=$((incs + 1))
    # Resolve like the compiler: beside the file first, then from the root.
    if [ -e "$dir/$inc" ]; then target=$dir/$inc; else target=$inc; fi
    case "$target" in *..*|./*|*/./*) target=$(realpath -m --relative-to=. "$target") ;; esac
    to=$(layer_of "$target")
    [ -n "$to" ] || continue   # not ours (a third-party header written with quotes)
    # The backends behind the op API are nn's own: the rest of the tree calls
    # nn/*.h (dist's NCCL backend, itself CUDA code, may use nn/cuda's helpers).
    case "$target:$from" in
      nn/cpu/*:nn|nn/cpu/*:tests|nn/cpu/*:bench|nn/cuda/*:nn|nn/cuda/*:dist|nn/cuda/*:tests|nn/cuda/*:bench) ;;
      nn/cpu/*:*|nn/cuda/*:*)
        echo "$f:$line: includes \"$inc\" (a backend of the op API): only nn/ calls nn/cpu and nn/cuda directly; use the op headers nn/*.h"
        bad=$((bad + 1)); continue ;;
    esac
    ok=0
    for a in $allow; do [ "$a" = "$to" ] && ok=1 && break; done
    [ $ok -eq 1 ] && continue
    case "$from:$to" in
      stages/*:stages/*) rule="no stage includes another stage (only stages/common is shared)" ;;
      *:stages/*) rule="$from is below the stages and may not include them" ;;
      *:tests|*:bench|*:fuzz|*:tools) rule="$to is not a library: nothing outside it includes it" ;;
      *) rule="$from may include only ${allow// /, }" ;;
    esac
    echo "$f:$line: includes \"$inc\" (layer $to): $rule"
    bad=$((bad + 1))
  done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
             sed -E 's/^([0-9]+):[^"]*"([^"]*)".*/\1:\2/')
done < <(find . \( -path ./build -o -path ./.git -o -path ./bin -o -path ./.devdeps \) -prune -o \
              -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print0 | sort -z)

if [ $bad -gt 0 ]; then
  echo "check-layering: $bad violation(s) in $files files ($incs quoted includes); rules: docs/ARCHITECTURE.md"
  exit 1
fi
echo "check-layering: ok ($files files, $incs quoted includes)"
