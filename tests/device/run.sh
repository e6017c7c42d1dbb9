#!/usr/bin/env bash
# run.sh: the ONE script for a GPU machine (issues 4 and 17). It builds the
# CUDA side and runs every pending GPU check, in order of value, each part
# under its own timeout, about 8 minutes in all:
#   build            make of the CUDA tests and benches (warnings logged, never fatal)
#   dit_gpu          the issue-11 GPU work of session 3 first, on its own: tiled
#                    (flash-style) attention (test_flash_emul, test_parity_attention,
#                    the exact fallback in test_parity_transformer), the device loss
#                    (test_parity_flow_loss), the DiT step on the GPU with it
#                    (test_parity_dit), Muon on the GPU (test_parity_muon), into
#                    parity.log; then attention timings,
#                    tiled fp32 / tiled bf16 autocast / exact, ours
#                    (bench_cuda --only-attention) and PyTorch SDPA's
#                    (bench_ops.py --only-attention); limit 150 s
#   toy_gpu          issue 14: test_toy_cuda, then toy_gpu.sh (toy training cpu vs
#                    cuda, and the --paper step timed; its header says how); limit 90 s
#   parity           tests/cuda + tests/dist: CUDA vs CPU, fp32 and bf16, forward
#                    and backward, attention at T = 16, 64, 256, 1024 (coverage
#                    of those T is checked in the log and reported); limit 150 s
#                    (test_parity_dit_train starts bin/train five times)
#   dit_step_ours    LightningDiT-B/1 training step, tokens 256, channels 32,
#                    batch 64, bf16: build/bench/bench_dit_train
#   dit_step_torch   the same step in PyTorch, eager + SDPA and torch.compile
#   dit_fp32         the B/1 step in fp32 (TF32 off), ours (bench_dit_train --device cuda
#                    --dtype f32) and PyTorch's (bench_dit.py --dtype fp32) at batch 64,
#                    paired as dit_b1_step_fp32 in the speed table; and
#                    tests/cuda/test_parity_dit_train: `train --model dit --device cuda`
#                    3 steps vs --device cpu, then `sample --model dit --device cuda`
#   sampler_cfg      Euler + CFG, ours (build/bench/bench_sample_dit, which also
#                    saves its random weights as safetensors) vs a PyTorch loop on
#                    the same weights (bench/torch/bench_sample_dit.py)
#   vae_decode       VAE decode throughput (build/bench/bench_vae_decode)
#   inception        Inception-v3 feature parity on random weights + speed
#                    (build/bench/bench_inception)
#   nccl_dp          NCCL all-reduce bus bandwidth on one GPU (loopback) and
#                    the DP step at world size 1 vs the plain step (build/bench/bench_dp)
#   full_pipeline    a 2-minute pipelines/full.sh run on the GPU, with its report
#   op_speed_ours    our CUDA op timings (tests/device/bench_cuda)
#   op_speed_torch   PyTorch op and toy-MLP timings (bench/torch/bench_ops.py, bench_mlp.py)
# A part whose program does not exist yet is reported as "not built" (naming
# the missing file), never skipped silently; a part that would start after
# the time budget is reported "no time left"; a program that exits 2 (it
# refuses the command line, e.g. "--device cuda: not supported yet") is
# reported "not supported (exit 2): LAST STDERR LINE", not counted as failed.
#
# Programs a part starts print JSON lines {"name", "ms", ...} as
# bench/torch/common.py does (ours and PyTorch's pair by name), and take:
#   bench_dit_train   --device cuda --batch 64 --dtype bf16|f32 --json
#   bench_sample_dit  --device cuda --batch 64 --steps 50 --cfg 1.7 --save-weights FILE --json
#   bench_sample_dit.py --weights FILE --batch 64 --steps 50 --cfg 1.7
#   bench_vae_decode  --device cuda --json
#   bench_inception   --device cuda --random-weights --json
#   bench_dp          --device cuda --json
#   full.sh           --device cuda --minutes 2 --out DIR   (writes DIR/report.md)
#
# Usage: OUT=DIR tests/device/run.sh [--dry-run] [--quick] [--only P1,P2] [--budget S]
#   --dry-run   check this script's own logic on any machine (options, part
#               table, timeouts, exit-2 refusals, the summary, the library-path isolation, the
#               glibc check of carried packages); builds and runs nothing on a GPU
#   --quick     no torch.compile
#   --only      run only these parts (build always runs unless --dry-run)
#               Issue 11's GPU checks and timings in one run:
#                 --only dit_gpu,dit_step_ours,dit_fp32,dit_step_torch
#               (limits 150 build + 150 + 45 + 150 + 120 s; the 540 s budget stops
#               a part that would end after it; not yet timed on a GPU)
#   --budget S  stop starting parts after S seconds in all (default 540)
# Without --dry-run it exits 1 at once, with a plain message, when it finds no
# nvcc or no GPU. Exit: 0 when every part that ran passed, 1 when a part
# failed or timed out (or the machine is unfit), 2 for usage errors.
#
# Output (at most 8 files come back from the device tool, so logs are folded):
#   summary.md  parts table (status, time, limit), parity worst errors per op,
#               the speed table, the full.sh report
#   run.log     timeline          build.log   build and dependency set-up
#   parity.log  test output       parts.log   every other part's stderr
#   ours.jsonl  our timings       torch.jsonl PyTorch's timings    env.txt
# Debian libraries the image lacks: carry .devdeps (tests/device/fetch-debs.sh,
# run on the build machine). They are unpacked into a private root under
# /tmp after checking that the image's glibc is at least what the packages
# need, and put on the search paths of OUR programs only: PyTorch parts run
# with LD_LIBRARY_PATH, LIBRARY_PATH and CPATH cleared.
# From a session with a device:
#   run(command="tests/device/run.sh", carry=[".devdeps"], timeout_s=600)
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
usage() { sed -n '2,60p' "$0"; }

DRY=0 QUICK=0 ONLY="" BUDGET=540
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --quick) QUICK=1 ;;
    --only) [ $# -ge 2 ] || { echo "run.sh: --only needs a comma-separated list of parts" >&2; exit 2; }
            ONLY=$2; shift ;;
    --budget) [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] ||
                { echo "run.sh: --budget needs a whole number of seconds >= 1" >&2; exit 2; }
              BUDGET=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
ALL_PARTS="build dit_gpu toy_gpu parity dit_step_ours dit_step_torch dit_fp32 sampler_cfg vae_decode inception nccl_dp full_pipeline op_speed_ours op_speed_torch"
for p in ${ONLY//,/ }; do
  [[ " $ALL_PARTS " == *" $p "* ]] || { echo "run.sh: unknown part '$p' in --only (parts: $ALL_PARTS)" >&2; exit 2; }
done

OUT=${OUT:-/tmp/vel-device-out}
mkdir -p "$OUT" || { echo "run.sh: cannot create $OUT" >&2; exit 1; }
WORK=$(mktemp -d /tmp/vel-device-work.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
T0=$(date +%s)
for f in run.log build.log parity.log parts.log ours.jsonl torch.jsonl env.txt summary.md; do : >"$OUT/$f"; done
log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/run.log" >&2; }
PY=python3
command -v $PY >/dev/null 2>&1 || PY=/usr/bin/python3

# ---- the fitness of this machine ----------------------------------------------
export PATH=/usr/local/cuda/bin:$PATH
NVCC=$(command -v nvcc || true)
GPU_NAME=""
if command -v nvidia-smi >/dev/null 2>&1; then GPU_NAME=$(nvidia-smi -L 2>/dev/null | head -1); fi
GLIBC=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
{
  echo "date: $(date -u)"; echo "host: $(uname -a)"; echo "glibc: ${GLIBC:-unknown}"
  echo "nvcc: ${NVCC:-none}"; [ -n "$NVCC" ] && nvcc --version | tail -2
  echo "gpu: ${GPU_NAME:-none}"; [ -n "$GPU_NAME" ] && nvidia-smi
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" 2>&1 | tail -1
  echo "cc: $(cc --version 2>&1 | head -1)"; echo "make: $(make --version 2>&1 | head -1)"; echo "nproc: $(nproc)"
} >"$OUT/env.txt" 2>&1

unfit() {   # a plain message, in the summary too, and exit 1
  echo "run.sh: $*" >&2
  { echo "# device run $(date -u +%FT%TZ): NOT RUN"; echo; echo "$*"; } >"$OUT/summary.md"
  exit 1
}
if [ $DRY -eq 0 ]; then
  [ -n "$NVCC" ] || unfit "no nvcc on PATH (nor in /usr/local/cuda/bin): this script builds CUDA code and needs the CUDA toolkit; use --dry-run to check the script itself."
  [ -n "$GPU_NAME" ] || unfit "no GPU found (nvidia-smi -L lists none): this script runs GPU checks and needs a GPU machine; use --dry-run to check the script itself."
fi
log "mode=$([ $DRY -eq 1 ] && echo dry-run || echo gpu) gpu='${GPU_NAME:-none}' nvcc=${NVCC:-none} glibc=${GLIBC:-?} budget=${BUDGET}s"

# ---- dependencies: private root, our programs only ------------------------------
# ver_ge A B: version A >= B (sort -V order).
ver_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$2" ]; }
# The highest glibc the carried packages ask for (libc6 (>= X) in Depends).
debs_glibc_need() {
  local need=0 f v
  for f in "$@"; do
    v=$(dpkg-deb -f "$f" Depends 2>/dev/null | tr ',' '\n' | sed -n 's/^ *libc6 *(>= *\([0-9.]*\)).*/\1/p' | head -1)
    [ -n "$v" ] && ! ver_ge "$need" "$v" && need=$v
  done
  echo "$need"
}
OURS_CPATH="" OURS_LIBRARY_PATH="" OURS_LD="" OURS_PATH_ADD=""
DEVROOT=/tmp/vel-devroot
have_headers() {
  printf '#include <criterion/criterion.h>\n#include <zmq.h>\n#include <lmdb.h>\n#include <msgpack.h>\n#include <cjson/cJSON.h>\n#include <lapacke.h>\n#include <cblas.h>\n#include <png.h>\n#include <jpeglib.h>\n' |
    CPATH="$OURS_CPATH" cc -E -x c - >/dev/null 2>&1
}
DEBS=$(ls .devdeps/*.deb 2>/dev/null || true)
if [ -n "$DEBS" ]; then
  if ! command -v dpkg-deb >/dev/null 2>&1; then
    log "carried .devdeps cannot be unpacked: no dpkg-deb on this image"
  else
    NEED=$(debs_glibc_need $DEBS)
    if [ -z "$GLIBC" ] || ! ver_ge "$GLIBC" "$NEED"; then
      log "carried .devdeps need glibc >= $NEED but the image has ${GLIBC:-unknown}: NOT unpacking them (they would fail to load)"
      DEBS=""
    else
      log "carried .devdeps need glibc >= $NEED; the image has $GLIBC: ok"
    fi
  fi
fi
if [ $DRY -eq 0 ] && [ -n "$DEBS" ] && { ! have_headers || ! command -v make >/dev/null 2>&1; }; then
  log "unpacking $(echo $DEBS | wc -w) carried .deb files into $DEVROOT (private; never /)"
  mkdir -p "$DEVROOT"
  for f in $DEBS; do dpkg-deb -x "$f" "$DEVROOT" >>"$OUT/build.log" 2>&1; done
  L=$DEVROOT/usr/lib/x86_64-linux-gnu
  OURS_CPATH="$DEVROOT/usr/include:$DEVROOT/usr/include/x86_64-linux-gnu:$DEVROOT/usr/include/x86_64-linux-gnu/openblas-pthread"
  OURS_LIBRARY_PATH="$L:$L/openblas-pthread:$L/lapack:$L/blas:$DEVROOT/lib/x86_64-linux-gnu"
  OURS_LD=$OURS_LIBRARY_PATH
  command -v make >/dev/null 2>&1 || OURS_PATH_ADD="$DEVROOT/usr/bin"
fi
# cuDNN / cuBLAS / NCCL: the toolkit's, else those PyTorch's wheels bring
# (without the unversioned .so names the linker wants: links in $LINKDIR).
LINKDIR=$WORK/cudalinks
mkdir -p "$LINKDIR"
SITE=$(env -u PYTHONPATH $PY -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" 2>/dev/null || true)
for spec in "libcudnn.so.9:cudnn.h" "libcublas.so.13:cublas_v2.h" "libcublasLt.so.13:" "libnccl.so.2:"; do
  [ $DRY -eq 1 ] && break
  IFS=: read -r lib hdr <<<"$spec"
  if [ -e "/usr/local/cuda/lib64/${lib%.*}" ] || ldconfig -p 2>/dev/null | grep -q " ${lib%.*} "; then continue; fi
  f=$( [ -n "$SITE" ] && find "$SITE/nvidia" -name "$lib" 2>/dev/null | head -1 )
  [ -n "$f" ] || { log "no $lib found (toolkit, ldconfig or $SITE/nvidia)"; continue; }
  ln -sf "$f" "$LINKDIR/${lib%.*}"; ln -sf "$f" "$LINKDIR/$lib"
  if [ -n "$hdr" ] && [ ! -e "/usr/local/cuda/include/$hdr" ]; then
    h=$(find "$SITE/nvidia" -name "$hdr" 2>/dev/null | head -1)
    [ -n "$h" ] && OURS_CPATH="$(dirname "$h")${OURS_CPATH:+:$OURS_CPATH}"
  fi
  log "using $f"
done
OURS_LIBRARY_PATH="$LINKDIR${OURS_LIBRARY_PATH:+:$OURS_LIBRARY_PATH}"
OURS_LD="$LINKDIR${OURS_LD:+:$OURS_LD}"

# ours CMD...: runs one of our programs with the private search paths
# (set only for the command, never exported to the script's environment).
join() { local a=$1 b=${2:-}; echo "$a${a:+${b:+:}}$b"; }
ours() {
  local e=()
  [ -n "$(join "$OURS_CPATH" "${CPATH:-}")" ] && e+=(CPATH="$(join "$OURS_CPATH" "${CPATH:-}")")
  [ -n "$(join "$OURS_LIBRARY_PATH" "${LIBRARY_PATH:-}")" ] && e+=(LIBRARY_PATH="$(join "$OURS_LIBRARY_PATH" "${LIBRARY_PATH:-}")")
  [ -n "$(join "$OURS_LD" "${LD_LIBRARY_PATH:-}")" ] && e+=(LD_LIBRARY_PATH="$(join "$OURS_LD" "${LD_LIBRARY_PATH:-}")")
  env "${e[@]}" PATH="$(join "$PATH" "$OURS_PATH_ADD")" "$@"
}
# torchenv CMD...: PyTorch with none of our paths (its own CUDA libraries only).
torchenv() {
  env -u LD_LIBRARY_PATH -u LIBRARY_PATH -u CPATH -u OURS_LD -u OURS_CPATH -u OURS_LIBRARY_PATH \
      PYTHONUNBUFFERED=1 PYTHONNOUSERSITE=1 "$@"
}
# The compiler wrappers drop -Werror (warnings are logged in build.log, not fatal).
NOWERR=$ROOT/tests/device/nowerror.sh

# ---- parts ----------------------------------------------------------------------
# part NAME LIMIT LOGFILE "NEEDED FILES" CMD...: runs CMD under its own
# timeout (CMD may be one of the functions above: it runs in a bash child that
# inherits them); stdout is appended to LOGFILE, stderr too unless LOGFILE is a
# .jsonl (then stderr goes to parts.log); records the status for the summary.
# A missing needed file makes the part "not built"; the budget makes it "no
# time left"; --dry-run records what would run.
export -f join ours torchenv
export OURS_CPATH OURS_LIBRARY_PATH OURS_LD OURS_PATH_ADD PY WORK OUT QUICK
ROWS="" FAILED=0 NOT_BUILT=0 UNSUPPORTED=0
row() { ROWS="$ROWS| $1 | $2 | $3 | ${4}s | $5 |"$'\n'; }
selected() { [ -z "$ONLY" ] || [ "$1" = build ] || [[ "$1" == selftest_* ]] || [[ ",$ONLY," == *",$1,"* ]]; }
part() {
  local name=$1 limit=$2 logf=$3 needs=$4; shift 4
  selected "$name" || return 0
  local f
  for f in $needs; do
    if [ ! -e "$f" ]; then
      log "== $name: not built ($f missing)"
      row "$name" "not built ($f missing)" "-" "$limit" "-"
      NOT_BUILT=$((NOT_BUILT + 1))
      return 0
    fi
  done
  local used=$(( $(date +%s) - T0 ))
  if [ $((used + limit)) -gt "$BUDGET" ]; then
    log "== $name: no time left (${used}s used, limit ${limit}s, budget ${BUDGET}s)"
    row "$name" "no time left" "-" "$limit" "-"
    FAILED=$((FAILED + 1))
    return 0
  fi
  if [ $DRY -eq 1 ] && [ "${SELFTEST:-0}" -eq 0 ]; then
    log "== $name: dry run, would run: $*"
    row "$name" "dry run" "-" "$limit" "$(basename "$logf")"
    return 0
  fi
  log "== $name (limit ${limit}s): $*"
  local errf=$logf s=$(date +%s) rc
  [[ "$logf" == *.jsonl ]] && errf=$OUT/parts.log
  echo "===== $name: $*" >>"$errf"
  # timeout signals its whole process group, so a part's children stop too.
  timeout -k 5 "$limit" bash -c '"$@"' part "$@" >>"$logf" 2>>"$errf"
  rc=$?
  local dt=$(( $(date +%s) - s )) st
  case $rc in
    0) st=ok ;;
    124|137) st="TIMEOUT after ${limit}s"; FAILED=$((FAILED + 1)) ;;
    # Exit 2 is a program refusing its command line: "not supported yet"
    # (e.g. --device cuda where the program has no GPU path) or a flag it does
    # not know. Not a failure of the run, but shown with the program's reason.
    2) st="not supported (exit 2): $(tail -n 1 "$errf" | tr '|' '/' | cut -c1-200)"; UNSUPPORTED=$((UNSUPPORTED + 1)) ;;
    *) st="FAIL (rc $rc)"; FAILED=$((FAILED + 1)) ;;
  esac
  log "   $name: $st (${dt}s)"
  row "$name" "$st" "${dt}s" "$limit" "$(basename "$logf")"
  return 0
}

# --dry-run checks the part machinery itself: a passing, a failing, a
# timed-out and a not-built part must be reported as such, and PyTorch's
# environment must not see our private paths.
if [ $DRY -eq 1 ]; then
  SELFTEST=1
  part selftest_ok 5 "$OUT/parts.log" "" true
  part selftest_fail 5 "$OUT/parts.log" "" false
  part selftest_timeout 1 "$OUT/parts.log" "" sleep 5
  part selftest_missing 5 "$OUT/parts.log" "build/no-such-program" true
  part selftest_refused 5 "$OUT/parts.log" "" sh -c 'echo "prog: --device cuda: not supported yet" >&2; exit 2'
  SELFTEST=0
  bad=""
  grep -q '^| selftest_ok | ok |' <<<"$ROWS" || bad="$bad ok"
  grep -q '^| selftest_fail | FAIL (rc 1) |' <<<"$ROWS" || bad="$bad fail"
  grep -q '^| selftest_timeout | TIMEOUT after 1s |' <<<"$ROWS" || bad="$bad timeout"
  grep -q '^| selftest_missing | not built (build/no-such-program missing) |' <<<"$ROWS" || bad="$bad not-built"
  grep -q '^| selftest_refused | not supported (exit 2): prog: --device cuda: not supported yet |' <<<"$ROWS" || bad="$bad refused"
  OURS_LD_SAVE=$OURS_LD; OURS_LD="$DEVROOT/usr/lib/x86_64-linux-gnu"
  ours env | grep -q "^LD_LIBRARY_PATH=.*vel-devroot" || bad="$bad ours-paths"
  LD_LIBRARY_PATH=/x/vel-devroot CPATH=/x LIBRARY_PATH=/x torchenv env | grep -q "^\(LD_LIBRARY_PATH\|CPATH\|LIBRARY_PATH\)=\|vel-devroot" && bad="$bad torch-isolation"
  OURS_LD=$OURS_LD_SAVE
  ver_ge 2.39 2.36 && ver_ge 2.36 2.36 && ! ver_ge 2.35 2.36 && ver_ge 2.40 2.9 || bad="$bad ver_ge"
  # The glibc a package asks for, read from a package built here.
  if command -v dpkg-deb >/dev/null 2>&1; then
    mkdir -p "$WORK/fakedeb/DEBIAN"
    printf 'Package: vel-fake\nVersion: 1\nArchitecture: all\nMaintainer: vel\nDescription: test\nDepends: libfoo1 (>= 3), libc6 (>= 2.99)\n' >"$WORK/fakedeb/DEBIAN/control"
    dpkg-deb --build "$WORK/fakedeb" "$WORK/fake.deb" >/dev/null 2>&1 &&
      [ "$(debs_glibc_need "$WORK/fake.deb")" = 2.99 ] || bad="$bad glibc-need"
  else
    log "self-test: no dpkg-deb here, the glibc reading of packages is not checked"
  fi
  if [ -n "$bad" ]; then
    log "SELF-TEST FAILED:$bad"
    echo "run.sh --dry-run: the script's own checks failed:$bad" >&2
    exit 1
  fi
  log "self-test: part statuses, timeouts, not-built, path isolation and version compare ok"
  ROWS="" FAILED=0 NOT_BUILT=0 UNSUPPORTED=0
fi

# ---- build ------------------------------------------------------------------------
WANT="build/tests/dist/dp_worker build/tests/device/bench_cuda"
for t in tests/cuda/test_*.c tests/dist/test_*.c; do [ -e "$t" ] && WANT="$WANT build/${t%.c}"; done
for b in bench_dit_train bench_sample_dit bench_vae_decode bench_inception bench_dp; do
  [ -e "bench/$b.c" ] && WANT="$WANT build/bench/$b"
done
[ -e pipelines/full.sh ] && WANT="$WANT all"
WANT="$WANT bin/train bin/sample"   # tests/cuda/test_parity_dit_train runs them
WANT="$WANT bin/encode"   # tests/device/toy_gpu.sh (part toy_gpu)
# CUDA_HOME too: the Makefile derives it from NVCC, which is the wrapper here.
part build 150 "$OUT/build.log" "$NVCC" \
  ours make -k -j"$(nproc)" CC="$NOWERR cc" NVCC="$NOWERR $NVCC" CUDA_HOME="${NVCC%/bin/nvcc}" $WANT
[ $DRY -eq 0 ] && log "build: $(grep -a -c 'warning:' "$OUT/build.log") warning lines (logged in build.log, not fatal)"

# ---- issue 11's new GPU parts (session 3) -------------------------------------------------
DIT_GPU_TESTS="build/tests/cuda/test_flash_emul build/tests/cuda/test_parity_attention build/tests/cuda/test_parity_flow_loss build/tests/cuda/test_parity_transformer build/tests/cuda/test_parity_dit build/tests/cuda/test_parity_muon"
dit_gpu_checks() {
  local rc=0
  run_tests $DIT_GPU_TESTS >>"$OUT/parity.log" 2>&1 || rc=1
  ours build/tests/device/bench_cuda --only-attention >>"$OUT/ours.jsonl" || rc=1
  torchenv $PY bench/torch/bench_ops.py --only-attention >>"$OUT/torch.jsonl" || rc=1
  return $rc
}
export -f dit_gpu_checks
export DIT_GPU_TESTS
# ---- parity -------------------------------------------------------------------------
TESTS=$(ls build/tests/cuda/test_* build/tests/dist/test_* 2>/dev/null | grep -v '\.[od]$' | tr '\n' ' ')
run_tests() { local t rc=0; for t in "$@"; do echo "===== $t"; ours "$t" --verbose --jobs 1 || rc=1; done; return $rc; }
export -f run_tests
part dit_gpu 150 "$OUT/parts.log" "$DIT_GPU_TESTS build/tests/device/bench_cuda bench/torch/bench_ops.py" dit_gpu_checks
# ---- issue 14: the toy's training on the GPU (session 4) ---------------------------
toy_gpu_checks() {
  local rc=0
  run_tests build/tests/cuda/test_toy_loss_emul build/tests/cuda/test_toy_cuda >>"$OUT/parity.log" 2>&1 || rc=1
  ours tests/device/toy_gpu.sh "$WORK/toy" || rc=1
  [ -f "$WORK/toy/ours.jsonl" ] && cat "$WORK/toy/ours.jsonl" >>"$OUT/ours.jsonl"
  return $rc
}
export -f toy_gpu_checks
part toy_gpu 90 "$OUT/parts.log" "build/tests/cuda/test_toy_loss_emul build/tests/cuda/test_toy_cuda bin/train bin/encode tests/device/toy_gpu.sh" toy_gpu_checks
part parity 150 "$OUT/parity.log" "${TESTS:-build/tests/cuda/test_parity_transformer}" run_tests $TESTS

# ---- the DiT step ------------------------------------------------------------------------
part dit_step_ours 45 "$OUT/ours.jsonl" "build/bench/bench_dit_train" \
  ours build/bench/bench_dit_train --device cuda --batch 64 --dtype bf16 --json
DITARGS=""; [ $QUICK -eq 1 ] && DITARGS="--no-compile"
part dit_step_torch 120 "$OUT/torch.jsonl" "bench/torch/bench_dit.py" \
  torchenv $PY bench/torch/bench_dit.py --batch 64 $DITARGS

# fp32 pair (TF32 off on both sides): the like-for-like ratio beside the bf16 one.
dit_fp32_pair() {
  ours build/bench/bench_dit_train --device cuda --batch 64 --dtype f32 --json >>"$OUT/ours.jsonl" || return $?
  torchenv $PY bench/torch/bench_dit.py --batch 64 --dtype fp32 $DITARGS >>"$OUT/torch.jsonl"
}
export -f dit_fp32_pair
export DITARGS
part dit_fp32 150 "$OUT/parts.log" "build/bench/bench_dit_train bench/torch/bench_dit.py" dit_fp32_pair

# ---- sampler with CFG on the same weights ------------------------------------------------
sampler_pair() {
  ours build/bench/bench_sample_dit --device cuda --batch 64 --steps 50 --cfg 1.7 \
    --save-weights "$WORK/dit_random.safetensors" --json >>"$OUT/ours.jsonl" || return 1
  torchenv $PY bench/torch/bench_sample_dit.py --weights "$WORK/dit_random.safetensors" \
    --batch 64 --steps 50 --cfg 1.7 >>"$OUT/torch.jsonl"
}
export -f sampler_pair
part sampler_cfg 60 "$OUT/parts.log" "build/bench/bench_sample_dit bench/torch/bench_sample_dit.py" sampler_pair

# ---- VAE decode, Inception, NCCL / DP ------------------------------------------------------
part vae_decode 25 "$OUT/ours.jsonl" "build/bench/bench_vae_decode" \
  ours build/bench/bench_vae_decode --device cuda --json
part inception 30 "$OUT/ours.jsonl" "build/bench/bench_inception" \
  ours build/bench/bench_inception --device cuda --random-weights --json
part nccl_dp 30 "$OUT/ours.jsonl" "build/bench/bench_dp" \
  ours build/bench/bench_dp --device cuda --json

# ---- the whole pipeline ------------------------------------------------------------------------
part full_pipeline 150 "$OUT/parts.log" "pipelines/full.sh" \
  ours pipelines/full.sh --device cuda --minutes 2 --out "$WORK/full"

# ---- op timings (ratio table) --------------------------------------------------------------
part op_speed_ours 60 "$OUT/ours.jsonl" "build/tests/device/bench_cuda" ours build/tests/device/bench_cuda
torch_ops() {
  torchenv $PY bench/torch/bench_ops.py $([ $QUICK -eq 1 ] && echo --quick) &&
    torchenv $PY bench/torch/bench_mlp.py
}
export -f torch_ops
part op_speed_torch 90 "$OUT/torch.jsonl" "bench/torch/bench_ops.py bench/torch/bench_mlp.py" torch_ops

# ---- summary ----------------------------------------------------------------------------------
{
  echo "# device run $(date -u +%FT%TZ)$([ $DRY -eq 1 ] && echo ' (DRY RUN: nothing ran on a GPU)')"
  echo
  echo "gpu: ${GPU_NAME:-none}; nvcc: ${NVCC:-none}; glibc: ${GLIBC:-?}; total $(( $(date +%s) - T0 )) s of a ${BUDGET} s budget"
  echo "failed or timed out: $FAILED; not built: $NOT_BUILT; not supported yet (exit 2): $UNSUPPORTED"
  echo
  echo "## parts"
  echo "| part | status | time | limit | log |"; echo "| --- | --- | --- | --- | --- |"
  printf "%s" "$ROWS"
  echo
  echo "## parity (worst errors per op)"
  $PY tests/device/summarize.py parity "$OUT/parity.log" 2>&1
  echo
  echo "## speed"
  $PY tests/device/summarize.py speed "$OUT/ours.jsonl" "$OUT/torch.jsonl" 2>&1
  echo
  echo "## full.sh report"
  if [ -s "$WORK/full/report.md" ]; then cat "$WORK/full/report.md"; else echo "(none: see the full_pipeline row)"; fi
} >"$OUT/summary.md"
[ -s "$WORK/full/report.md" ] && cat "$WORK/full/report.md" >>"$OUT/parts.log"
log "done; summary in $OUT/summary.md"
cat "$OUT/summary.md"
[ "$FAILED" -eq 0 ]
