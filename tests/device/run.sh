#!/usr/bin/env bash
# run.sh: the ONE script for the GPU machine (issue 4). Builds the CUDA side,
# runs the CUDA parity harness and the dist tests, then times our CUDA ops
# and the PyTorch references (bench/torch/*.py) on the same GPU and writes a
# ratio table. Everything goes to $OUT (at most 8 files come back from the
# device tool, so all logs are folded into these):
#   summary.md    what ran, what was skipped, parity counts, the speed table
#   run.log       timeline and every part's exit status
#   build.log     make output (and the dependency set-up)
#   parity.log    the CUDA / dist test binaries' verbose output (errors per op)
#   ours.jsonl    tests/device/bench_cuda (our CUDA ops)
#   torch.jsonl   bench/torch/*.py (PyTorch eager / torch.compile)
#   env.txt       nvidia-smi, nvcc, torch versions
# Each part runs under `timeout`, so one failure or hang loses only itself;
# the whole script is sized to finish in about 8 minutes on an H100/H200.
#
# Without a GPU (e.g. a dry run on the build machine) it still builds, runs
# the tests (the CUDA ones skip with a message) and reports what it skipped.
# If the image lacks the Debian libraries (Criterion, OpenBLAS, ZeroMQ, ...),
# carry .devdeps made by tests/device/fetch-debs.sh: they are unpacked into a
# private root under /tmp (never into /) and put on the search paths.
#
# Usage: OUT=/some/dir tests/device/run.sh [--quick]   (--quick: no torch.compile)
# From a session with a device: first tests/device/fetch-debs.sh here, then
#   run(command="tests/device/run.sh", carry=[".devdeps"], timeout_s=560)
# ($OUT is set there); the 8 files above come back.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-/tmp/vel-device-out}
mkdir -p "$OUT"
QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done
T0=$(date +%s)
: >"$OUT/run.log"; : >"$OUT/build.log"; : >"$OUT/parity.log"; : >"$OUT/ours.jsonl"; : >"$OUT/torch.jsonl"
log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/run.log"; }
PARTS=""
# part NAME LIMIT LOGFILE CMD...: runs CMD under timeout, appends its output to LOGFILE.
part() {
  local name=$1 limit=$2 logf=$3; shift 3
  log "== $name (limit ${limit}s)"
  local s=$(date +%s)
  timeout -k 10 "$limit" "$@" >>"$logf" 2>&1
  local rc=$?
  local dt=$(( $(date +%s) - s ))
  [ $rc -eq 124 ] && log "   $name TIMED OUT after ${limit}s"
  log "   $name rc=$rc (${dt}s)"
  PARTS="$PARTS| $name | $rc | ${dt}s |\n"
  return $rc
}

# ---- environment ---------------------------------------------------------------
export PATH=/usr/local/cuda/bin:$PATH
GPU=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then GPU=1; fi
PY=python3
TORCH=0
if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then TORCH=1; fi
{
  echo "date: $(date -u)"; echo "host: $(uname -a)"; echo "gpu: $GPU  torch+cuda: $TORCH"
  [ $GPU -eq 1 ] && nvidia-smi
  command -v nvcc >/dev/null && nvcc --version | tail -2
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1
  echo "cc: $(cc --version 2>&1 | head -1)"; echo "make: $(make --version 2>&1 | head -1)"
} >"$OUT/env.txt" 2>&1
log "gpu=$GPU torch=$TORCH nproc=$(nproc)"

# ---- dependencies -----------------------------------------------------------------
have_headers() {
  printf '#include <criterion/criterion.h>\n#include <zmq.h>\n#include <lmdb.h>\n#include <msgpack.h>\n#include <cjson/cJSON.h>\n#include <lapacke.h>\n#include <cblas.h>\n#include <png.h>\n#include <jpeglib.h>\n' |
    cc -E -x c - >/dev/null 2>&1
}
DEVROOT=/tmp/vel-devroot
if { ! have_headers || ! command -v make >/dev/null 2>&1; } && ls .devdeps/*.deb >/dev/null 2>&1; then
  log "unpacking $(ls .devdeps/*.deb | wc -l) carried .deb files into $DEVROOT"
  mkdir -p "$DEVROOT"
  for f in .devdeps/*.deb; do dpkg-deb -x "$f" "$DEVROOT" >>"$OUT/build.log" 2>&1; done
  L=$DEVROOT/usr/lib/x86_64-linux-gnu
  export CPATH="$DEVROOT/usr/include:$DEVROOT/usr/include/x86_64-linux-gnu:$DEVROOT/usr/include/x86_64-linux-gnu/openblas-pthread${CPATH:+:$CPATH}"
  LIBS="$L:$L/openblas-pthread:$L/lapack:$L/blas:$DEVROOT/lib/x86_64-linux-gnu"
  export LIBRARY_PATH="$LIBS${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  command -v make >/dev/null 2>&1 || export PATH="$PATH:$DEVROOT/usr/bin"
fi
have_headers && log "C dependencies: found" || log "C dependencies: MISSING (build will fail; carry .devdeps, see tests/device/fetch-debs.sh)"
# cuDNN / cuBLAS / NCCL: the toolkit's, else the ones PyTorch's wheels bring
# (those lack the unversioned .so names the linker wants: make links in /tmp).
LINKDIR=/tmp/vel-cudalinks
mkdir -p "$LINKDIR"
SITE=$($PY -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" 2>/dev/null || true)
for spec in "libcudnn.so.9:cudnn.h" "libcublas.so.13:cublas_v2.h" "libcublasLt.so.13:" "libnccl.so.2:"; do
  IFS=: read -r lib hdr <<<"$spec"
  if [ -e "/usr/local/cuda/lib64/${lib%.*}" ] || ldconfig -p 2>/dev/null | grep -q " ${lib%.*} "; then continue; fi
  # The wheels' layout differs between CUDA 12 and 13 packages: search.
  f=$( [ -n "$SITE" ] && find "$SITE/nvidia" -name "$lib" 2>/dev/null | head -1 )
  [ -n "$f" ] || { log "no $lib found (toolkit, ldconfig or $SITE/nvidia)"; continue; }
  ln -sf "$f" "$LINKDIR/${lib%.*}"
  ln -sf "$f" "$LINKDIR/$lib"
  if [ -n "$hdr" ] && [ ! -e "/usr/local/cuda/include/$hdr" ]; then
    h=$(find "$SITE/nvidia" -name "$hdr" 2>/dev/null | head -1)
    [ -n "$h" ] && export CPATH="$(dirname "$h")${CPATH:+:$CPATH}"
  fi
  log "using $f"
done
export LIBRARY_PATH="$LINKDIR${LIBRARY_PATH:+:$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$LINKDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ---- build --------------------------------------------------------------------------
TARGETS="$(ls tests/cuda/test_*.c tests/dist/test_*.c | sed 's|^|build/|; s|\.c$||') build/tests/dist/dp_worker build/tests/device/bench_cuda"
part build 240 "$OUT/build.log" make -j"$(nproc)" $TARGETS
BUILD_RC=$?

# ---- tests -----------------------------------------------------------------------------
TESTS_OK=0; TESTS_FAIL=0; TESTS_SKIP=0
for t in $(ls build/tests/cuda/test_* build/tests/dist/test_* 2>/dev/null | grep -v '\.[od]$'); do
  echo "===== $t" >>"$OUT/parity.log"
  part "$(basename "$t")" 90 "$OUT/parity.log" "$t" --verbose --jobs 1
done
syn=$(grep -a 'Synthesis:' "$OUT/parity.log")
sum_of() { sed -n "s/.*$1: *\\([0-9]*\\).*/\\1/p" <<<"$syn" | awk '{s += $1} END {print s + 0}'; }
TESTS_OK=$(sum_of Passing); TESTS_FAIL=$(sum_of Failing); TESTS_CRASH=$(sum_of Crashing)
TESTS_SKIP=$(grep -ac '^\[SKIP\]' "$OUT/parity.log")

# ---- benchmarks ------------------------------------------------------------------------
if [ $GPU -eq 1 ] && [ -x build/tests/device/bench_cuda ]; then
  part bench_cuda 120 "$OUT/ours.jsonl" build/tests/device/bench_cuda
else
  log "bench_cuda skipped (gpu=$GPU, built=$([ -x build/tests/device/bench_cuda ] && echo yes || echo no))"
  [ -x build/tests/device/bench_cuda ] && build/tests/device/bench_cuda >>"$OUT/ours.jsonl" 2>&1
fi
if [ $TORCH -eq 1 ]; then
  export PYTHONUNBUFFERED=1
  # The scripts import common.py from their own folder (python puts it on sys.path).
  part torch_ops 100 "$OUT/torch.jsonl" $PY bench/torch/bench_ops.py
  part torch_mlp 100 "$OUT/torch.jsonl" $PY bench/torch/bench_mlp.py
  DITARGS=""; [ $QUICK -eq 1 ] && DITARGS="--no-compile"
  part torch_dit 210 "$OUT/torch.jsonl" $PY bench/torch/bench_dit.py $DITARGS
else
  log "PyTorch benchmarks skipped: no python3 with torch and a CUDA device"
  echo '{"name": "torch", "skipped": "no torch with CUDA"}' >>"$OUT/torch.jsonl"
fi

# ---- summary -------------------------------------------------------------------------
{
  echo "# device run $(date -u +%FT%TZ)"
  echo
  echo "gpu: $GPU, torch with CUDA: $TORCH, build rc: $BUILD_RC, total $(( $(date +%s) - T0 )) s"
  echo
  echo "## tests (tests/cuda, tests/dist)"
  echo "passed $TESTS_OK, failed $TESTS_FAIL, crashed $TESTS_CRASH, skipped $TESTS_SKIP"
  echo
  echo "## parity (max errors per op, from the tests' log lines)"
  grep -a 'max_abs=' "$OUT/parity.log" | sed 's/^\[----\] *//; s/^[^:]*: *//' | sed 's/^/    /' | head -80
  echo
  echo "## parts"
  echo "| part | rc | time |"; echo "| --- | --- | --- |"
  printf "%b" "$PARTS"
  echo
  echo "## speed"
  $PY tests/device/summarize.py "$OUT/ours.jsonl" "$OUT/torch.jsonl" 2>&1
} >"$OUT/summary.md"
log "done; summary in $OUT/summary.md"
cat "$OUT/summary.md"
