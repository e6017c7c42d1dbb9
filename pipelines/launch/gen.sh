#!/usr/bin/env bash
# pipelines/launch/gen.sh: launches the generation graph
#   job source (sample --role source) -> N sample workers (sample --model dit)
#   -> M decoders (decode --model vae) -> the sink (eval --model images)
# as separate processes, on one host (--launcher local) or as the ranks of an
# Open MPI MPMD job (--launcher mpirun) or of a Slurm job step
# (--launcher slurm, srun --multi-prog). Every launcher runs the same rank
# wrapper, pipelines/launch/stage.sh, over the same plan (OUT/launch/:
# ranks.tsv, plan.env, and the launcher's own file: appfile or
# multi-prog.conf), so the three give the same graph. docs/SCALING.md.
# Interface (kept stable for pipelines/full.sh): see usage below; exit status
# 0 when the sink wrote its report, 2 for usage errors, 1 for a failed run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ME="gen.sh"

usage() {
  cat <<'USAGE'
usage: pipelines/launch/gen.sh --dit CKPT --tokenizer PREFIX --store DIR --out DIR [options]
Runs source -> N samplers -> M decoders -> eval sink; the sink writes OUT/samples.npz,
OUT/report.json, OUT/report.md, OUT/grid_class_K.png (eval --model images --help).
  --dit CKPT           DiT checkpoint (train --model dit); its -ema sibling is used when present
  --tokenizer PREFIX   tokenizer weights PREFIX.safetensors (decode --model vae --ckpt)
  --store DIR          latent cache with statistics (the decoders' normalisation)
  --out DIR            the sink's output folder; the plan goes to OUT/launch, logs to OUT/logs
  --n N                images (default 1000)   --job-size K (default 64)   --seed S (default 0)
  --samplers N         sample workers (default 1)   --decoders M (default 1)
  --threads T          OMP_NUM_THREADS of every stage (default: inherited)
  --launcher L         local (default), mpirun or slurm
  --hosts H1,H2,...    hosts for mpirun/slurm (default: localhost; slurm: the allocation's nodes)
  --hostfile FILE      Open MPI hostfile ("host [slots=N]" lines): the hosts, in order
  --transport T        ipc (default for local) or tcp (default for mpirun and slurm)
  --port-base P        tcp ports P .. P+4+M-1 on the hosts that bind them (default 27600;
                       keep them below the ephemeral range, pipelines/launch/ports.sh)
  --bind-addr A        address a non-loopback stage binds (default *: every interface)
  --source-args "..."  more options for the source (e.g. "--labels random --stall-s 120")
  --sample-args "..."  more options for the sample workers (e.g. "--steps 50 --cfg 1.5")
  --decode-args "..."  more options for the decoders (e.g. "--batch 32")
  --eval-args "..."    more options for the sink (e.g. "--classifier C --ref-stats R")
  --mpirun-args "..."  more options for mpirun (e.g. "--allow-run-as-root")
  --srun-args "..."    more options for srun
  --dry-run            write the plan, print every rank's command, run nothing
Each "..." is split into arguments at spaces; quote an argument that holds spaces as
in a shell, with '...', "..." or a backslash (e.g. --eval-args "--title 'run 3'"; the
quoting rules are xargs's: nothing is expanded or run). Stage commands can be swapped
(docs/SWAP.md): SOURCE_CMD, SAMPLE_CMD, DECODE_CMD, EVAL_CMD (default bin/sample,
bin/sample, bin/decode, bin/eval), and SAMPLE_CMD_<i> / DECODE_CMD_<m> for one worker.
Placement: the sink and the source on the first host; samplers then decoders
round-robin over the hosts. Ranks: 0 sink, 1 source, 2.. samplers, then decoders.
USAGE
}

die2() { echo "$ME: $*" >&2; exit 2; }
# split_args OPT TEXT NAME: NAME=(the arguments of TEXT), quotes as xargs reads
# them ('...', "...", backslash), with no expansion and nothing run; unbalanced
# quotes are a usage error.
split_args() {
  printf '%s\n' "$2" | xargs -r true 2>/dev/null || die2 "$1: unbalanced quotes in '$2'"
  mapfile -t -d '' "$3" < <(printf '%s\n' "$2" | xargs -r printf '%s\0')
}
DIT=""; TOK=""; STORE=""; OUT=""; N=1000; JOB_SIZE=64; SEED=0; NSAMP=1; NDEC=1; THREADS=""
LAUNCHER=local; HOSTS=""; HOSTFILE=""; TRANSPORT=""; PORT_BASE=27600; BIND_ADDR='*'; DRY=0
SOURCE_ARGS=(); SAMPLE_ARGS=(); DECODE_ARGS=(); EVAL_ARGS=(); MPIRUN_ARGS=(); SRUN_ARGS=()
ORIG_ARGS=("$@")
need() { [ $# -ge 2 ] || die2 "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dit) need "$@"; DIT=$2; shift ;;
    --tokenizer) need "$@"; TOK=$2; shift ;;
    --store) need "$@"; STORE=$2; shift ;;
    --out) need "$@"; OUT=$2; shift ;;
    --n) need "$@"; N=$2; shift ;;
    --job-size) need "$@"; JOB_SIZE=$2; shift ;;
    --seed) need "$@"; SEED=$2; shift ;;
    --samplers) need "$@"; NSAMP=$2; shift ;;
    --decoders) need "$@"; NDEC=$2; shift ;;
    --threads) need "$@"; THREADS=$2; shift ;;
    --launcher) need "$@"; LAUNCHER=$2; shift ;;
    --hosts) need "$@"; HOSTS=$2; shift ;;
    --hostfile) need "$@"; HOSTFILE=$2; shift ;;
    --transport) need "$@"; TRANSPORT=$2; shift ;;
    --port-base) need "$@"; PORT_BASE=$2; shift ;;
    --bind-addr) need "$@"; BIND_ADDR=$2; shift ;;
    --source-args) need "$@"; split_args "$1" "$2" SOURCE_ARGS; shift ;;
    --sample-args) need "$@"; split_args "$1" "$2" SAMPLE_ARGS; shift ;;
    --decode-args) need "$@"; split_args "$1" "$2" DECODE_ARGS; shift ;;
    --eval-args) need "$@"; split_args "$1" "$2" EVAL_ARGS; shift ;;
    --mpirun-args) need "$@"; split_args "$1" "$2" MPIRUN_ARGS; shift ;;
    --srun-args) need "$@"; split_args "$1" "$2" SRUN_ARGS; shift ;;
    --dry-run) DRY=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die2 "unknown option '$1' (see --help)" ;;
  esac
  shift
done

# ---- checks (exit 2 before anything starts) ----
for v in DIT TOK STORE OUT; do [ -n "${!v}" ] || die2 "--$(tr A-Z a-z <<<"$v" | sed 's/tok/tokenizer/') is required"; done
isint() { [[ "$2" =~ ^[0-9]+$ ]] && [ "${#2}" -le 9 ] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] || die2 "$1 must be an integer in $3..$4 (got '$2')"; }
isint --n "$N" 1 100000000; isint --job-size "$JOB_SIZE" 1 16777216; isint --samplers "$NSAMP" 1 256
isint --decoders "$NDEC" 1 256; isint --port-base "$PORT_BASE" 1024 $(( 65535 - 3 - NDEC ))
[[ "$SEED" =~ ^[0-9]+$ ]] || die2 "--seed must be a non-negative integer (got '$SEED')"
[ -z "$THREADS" ] || isint --threads "$THREADS" 1 1024
case "$LAUNCHER" in local|mpirun|slurm) ;; *) die2 "--launcher must be local, mpirun or slurm (got '$LAUNCHER')" ;; esac
[ -n "$TRANSPORT" ] || { [ "$LAUNCHER" = local ] && TRANSPORT=ipc || TRANSPORT=tcp; }
case "$TRANSPORT" in ipc|tcp) ;; *) die2 "--transport must be ipc or tcp (got '$TRANSPORT')" ;; esac
if [ "$TRANSPORT" = tcp ]; then
  source "$ROOT/pipelines/launch/ports.sh"
  port_range_note "$ME" "$PORT_BASE" $(( PORT_BASE + 3 + NDEC ))
fi
[ -f "$DIT" ] || die2 "--dit $DIT: no such file"
[ -f "$TOK.safetensors" ] || die2 "--tokenizer $TOK: no file $TOK.safetensors"
[ -f "$STORE/data.mdb" ] || die2 "--store $STORE: not a latent cache (no data.mdb)"
for p in "$DIT" "$TOK" "$STORE" "$OUT"; do [[ "$p" =~ [[:space:]] ]] && die2 "paths may not hold spaces (mpirun appfiles cannot quote): '$p'"; done
[ "$LAUNCHER" = local ] && [ -n "$HOSTS$HOSTFILE" ] && die2 "--hosts/--hostfile are for --launcher mpirun or slurm"
[ -n "$HOSTS" ] && [ -n "$HOSTFILE" ] && die2 "give --hosts or --hostfile, not both"

# ---- hosts ----
host_list=()
if [ -n "$HOSTFILE" ]; then
  [ -r "$HOSTFILE" ] || die2 "--hostfile $HOSTFILE: cannot read it"
  while read -r h _; do [ -n "$h" ] && [ "${h#\#}" = "$h" ] && host_list+=("$h"); done <"$HOSTFILE"
  [ ${#host_list[@]} -gt 0 ] || die2 "--hostfile $HOSTFILE names no host"
elif [ -n "$HOSTS" ]; then
  IFS=, read -r -a host_list <<<"$HOSTS"
elif [ "$LAUNCHER" = slurm ] && [ -n "${SLURM_JOB_NODELIST:-}" ]; then
  mapfile -t host_list < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
else
  host_list=(localhost)
fi
if [ "$TRANSPORT" = ipc ]; then
  for h in "${host_list[@]}"; do
    case "$h" in localhost|127.*) ;; *) die2 "--transport ipc works on one host only (host '$h'); use tcp" ;; esac
  done
fi
# Slurm outside an allocation: submit this very command as a batch job
# (sbatch --wait), which plans again inside the allocation with its nodes.
if [ "$LAUNCHER" = slurm ] && [ -z "${SLURM_JOB_ID:-}" ] && [ $DRY = 0 ]; then
  command -v sbatch >/dev/null || { echo "$ME: --launcher slurm needs sbatch/srun (not found)" >&2; exit 1; }
  ntasks=$((NSAMP + NDEC + 2))
  mkdir -p "$OUT/launch"
  { echo "#!/usr/bin/env bash"
    echo "#SBATCH --ntasks=$ntasks --job-name=vel-gen --output=$OUT/launch/slurm-%j.out"
    printf 'exec %q' "$ROOT/pipelines/launch/gen.sh"; printf ' %q' "${ORIG_ARGS[@]}"; echo
  } >"$OUT/launch/job.sbatch"
  echo "$ME: submitting $OUT/launch/job.sbatch (sbatch --wait; add sbatch options with SBATCH_* variables)" >&2
  exec sbatch --wait "$OUT/launch/job.sbatch"
fi

# ---- the plan: rank table + options ----
PLAN="$OUT/launch"; LOG_DIR="$OUT/logs"
mkdir -p "$PLAN" "$OUT" || { echo "$ME: cannot create $PLAN" >&2; exit 1; }
OUT=$(cd "$OUT" && pwd); PLAN="$OUT/launch"; LOG_DIR="$OUT/logs"
abspath() { local d; d=$(cd "$(dirname "$1")" && pwd); echo "$d/$(basename "$1")"; }
DIT=$(abspath "$DIT"); TOK=$(abspath "$TOK"); STORE=$(abspath "$STORE")
IPC_DIR=""
if [ "$TRANSPORT" = ipc ]; then
  IPC_DIR=$(mktemp -d /tmp/vel-gen.XXXXXX)   # short: ipc paths are limited to ~100 bytes
fi
SOURCE_CMD=${SOURCE_CMD:-$ROOT/bin/sample}; SAMPLE_CMD=${SAMPLE_CMD:-$ROOT/bin/sample}
DECODE_CMD=${DECODE_CMD:-$ROOT/bin/decode}; EVAL_CMD=${EVAL_CMD:-$ROOT/bin/eval}
nh=${#host_list[@]}
{
  echo "# rank role index host"
  echo "0 eval 0 ${host_list[0]}"
  echo "1 source 0 ${host_list[0]}"
  r=2; k=0
  for ((i = 0; i < NSAMP; i++)); do echo "$r sample $i ${host_list[$((k % nh))]}"; r=$((r + 1)); k=$((k + 1)); done
  for ((i = 0; i < NDEC; i++)); do echo "$r decode $i ${host_list[$((k % nh))]}"; r=$((r + 1)); k=$((k + 1)); done
} >"$PLAN/ranks.tsv"
NRANKS=$((NSAMP + NDEC + 2))
{
  echo "# written by pipelines/launch/gen.sh; read by pipelines/launch/stage.sh"
  declare -p TRANSPORT PORT_BASE BIND_ADDR IPC_DIR NDEC THREADS LOG_DIR OUT DIT TOK STORE N JOB_SIZE SEED
  declare -p SOURCE_CMD SAMPLE_CMD DECODE_CMD EVAL_CMD SOURCE_ARGS SAMPLE_ARGS DECODE_ARGS EVAL_ARGS
  for v in $(compgen -v | grep -E '^(SAMPLE|DECODE)_CMD_[0-9]+$' || true); do declare -p "$v"; done
} >"$PLAN/plan.env"
STAGE="$ROOT/pipelines/launch/stage.sh"

# Open MPI appfile: one line per rank, in rank order, each pinned to its host
# (HOST:SLOTS, SLOTS = ranks placed there, so no hostfile slot count matters).
declare -A per_host=()
while read -r _ _ _ h; do per_host[$h]=$(( ${per_host[$h]:-0} + 1 )); done < <(grep -v '^#' "$PLAN/ranks.tsv")
while read -r _ _ _ h; do echo "-np 1 --host $h:${per_host[$h]} $STAGE $PLAN"; done \
  < <(grep -v '^#' "$PLAN/ranks.tsv") >"$PLAN/appfile"
# Slurm: every task runs the wrapper (it reads SLURM_PROCID); task r on the
# host of rank r (srun --distribution=arbitrary with SLURM_HOSTFILE).
echo "* $STAGE $PLAN" >"$PLAN/multi-prog.conf"
grep -v '^#' "$PLAN/ranks.tsv" | awk '{ print $4 }' >"$PLAN/slurm-hosts"

case "$LAUNCHER" in
  local) launch_cmd="(local: $NRANKS background processes, VEL_RANK=0..$((NRANKS - 1)) $STAGE $PLAN)" ;;
  mpirun) launch_cmd="mpirun ${MPIRUN_ARGS[*]} --app $PLAN/appfile" ;;
  slurm) launch_cmd="SLURM_HOSTFILE=$PLAN/slurm-hosts srun --ntasks=$NRANKS --distribution=arbitrary ${SRUN_ARGS[*]} --multi-prog $PLAN/multi-prog.conf" ;;
esac
echo "$ME: $NSAMP samplers, $NDEC decoders over $TRANSPORT; plan in $PLAN; logs in $LOG_DIR" >&2
echo "$ME: $launch_cmd" >&2
if [ $DRY = 1 ]; then
  for ((r = 0; r < NRANKS; r++)); do VEL_RANK=$r "$STAGE" "$PLAN" --print; done
  [ -n "$IPC_DIR" ] && rmdir "$IPC_DIR"
  exit 0
fi
mkdir -p "$LOG_DIR"

t0=$(date +%s%N)
rc=0
case "$LAUNCHER" in
  local)
    # Every rank a child of this script; on any exit (error, Ctrl-C, TERM)
    # the ones still running are terminated and reaped: no orphans.
    pids=()
    cleanup() {
      trap - EXIT INT TERM
      for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
      for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
      [ -z "$IPC_DIR" ] || rm -rf "$IPC_DIR"   # not a failing last command: it would be the exit status
    }
    trap cleanup EXIT
    trap 'echo "$ME: interrupted" >&2; exit 130' INT TERM
    declare -A role_of=()
    for ((r = 0; r < NRANKS; r++)); do
      VEL_RANK=$r "$STAGE" "$PLAN" &
      pids+=($!); role_of[$!]=$r
    done
    # Wait for each rank (its wrapper decides whether a death is fatal);
    # the first failure stops the rest.
    while [ ${#role_of[@]} -gt 0 ]; do
      done_pid=""
      set +e; wait -n -p done_pid "${!role_of[@]}" 2>/dev/null; st=$?; set -e
      [ -n "$done_pid" ] || { echo "$ME: lost track of the ranks" >&2; rc=1; break; }
      r=${role_of[$done_pid]}; unset "role_of[$done_pid]"
      if [ $st -ne 0 ]; then
        echo "$ME: rank $r exited $st (log: $LOG_DIR/rank$r-*.log); stopping the others; it ends:" >&2
        tail -n 2 "$LOG_DIR/rank$r-"*.log 2>/dev/null | sed 's/^/  /' >&2 || true
        rc=1; break
      fi
    done
    ;;
  mpirun)
    command -v mpirun >/dev/null || { echo "$ME: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
    set +e; mpirun "${MPIRUN_ARGS[@]}" --app "$PLAN/appfile"; rc=$?; set -e
    [ -n "$IPC_DIR" ] && rm -rf "$IPC_DIR"
    ;;
  slurm)
    set +e
    SLURM_HOSTFILE="$PLAN/slurm-hosts" srun --ntasks="$NRANKS" --distribution=arbitrary "${SRUN_ARGS[@]}" \
      --multi-prog "$PLAN/multi-prog.conf"
    rc=$?; set -e
    [ -n "$IPC_DIR" ] && rm -rf "$IPC_DIR"
    ;;
esac
dt=$(( ($(date +%s%N) - t0) / 1000000 ))   # ms
if [ $rc -ne 0 ]; then
  echo "$ME: the run failed ($LAUNCHER, exit $rc); logs in $LOG_DIR" >&2
  exit 1
fi
[ -f "$OUT/report.json" ] || { echo "$ME: the sink wrote no $OUT/report.json; logs in $LOG_DIR" >&2; exit 1; }
printf '%s: done in %d.%03d s: %s\n' "$ME" $((dt / 1000)) $((dt % 1000)) "$OUT/report.json" >&2
