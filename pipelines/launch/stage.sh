#!/usr/bin/env bash
# pipelines/launch/stage.sh PLAN [--print]: runs one rank of a generation
# graph planned by pipelines/launch/gen.sh. The same command on every rank;
# the rank decides the role:
#   rank = $VEL_RANK (local mode), else $OMPI_COMM_WORLD_RANK (Open MPI),
#          else $PMIX_RANK, else $SLURM_PROCID (srun --multi-prog).
# PLAN/ranks.tsv is the rank table (rank role index host); PLAN/plan.env holds
# the commands and options (bash `declare -p` lines). Every endpoint is
# derived from the table: the owner of an endpoint binds it, everyone else
# connects to the owner's host (docs/SCALING.md, "Endpoints").
# --print: print the command instead of running it (gen.sh --dry-run).
#
# Exit status: the stage's own for the sink and the source (their failure is
# the run's). A sample or decode worker that dies (exit 1, a signal) is
# survivable: the source re-issues its jobs, so this wrapper logs it and
# exits 0; a usage or input error (exit 2) would hit every worker alike and
# is passed on, so a bad flag fails the run at once instead of stalling it.
set -u
set -f   # command strings are split on spaces, never globbed
plan=${1:?usage: stage.sh PLAN [--print]}
print=0; [ "${2:-}" = --print ] && print=1
rank=${VEL_RANK:-${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-${SLURM_PROCID:-}}}}
[ -n "$rank" ] || { echo "stage.sh: no rank (VEL_RANK, OMPI_COMM_WORLD_RANK, PMIX_RANK or SLURM_PROCID)" >&2; exit 2; }
[ -r "$plan/plan.env" ] && [ -r "$plan/ranks.tsv" ] || { echo "stage.sh: $plan is not a launch plan (plan.env, ranks.tsv)" >&2; exit 2; }
# shellcheck disable=SC1091
source "$plan/plan.env"

# role index host of a rank; host of (role, index)
read -r role index host < <(awk -v r="$rank" '$1 == r { print $2, $3, $4 }' "$plan/ranks.tsv")
[ -n "${role:-}" ] || { echo "stage.sh: rank $rank is not in $plan/ranks.tsv" >&2; exit 2; }
host_of() { awk -v ro="$1" -v i="$2" '$2 == ro && $3 == i { print $4 }' "$plan/ranks.tsv"; }

is_loopback() { case "$1" in localhost|127.*) return 0 ;; *) return 1 ;; esac; }

# Endpoint names and ports: jobs acks ctl (the source), img (the sink),
# lat M (decoder M). Port = PORT_BASE + offset.
port_of() {
  case "$1" in jobs) echo $((PORT_BASE)) ;; acks) echo $((PORT_BASE + 1)) ;; ctl) echo $((PORT_BASE + 2)) ;;
    img) echo $((PORT_BASE + 3)) ;; lat) echo $((PORT_BASE + 4 + $2)) ;; esac
}
owner_of() { case "$1" in jobs|acks|ctl) echo "source 0" ;; img) echo "eval 0" ;; lat) echo "decode $2" ;; esac; }
# connect endpoint of (name, index)
ep() {
  if [ "$TRANSPORT" = ipc ]; then echo "ipc://$IPC_DIR/$1${2:-}"; return; fi
  local h; h=$(host_of $(owner_of "$1" "${2:-0}"))
  is_loopback "$h" && h=127.0.0.1
  echo "tcp://$h:$(port_of "$1" "${2:-0}")"
}
# bind endpoint of (name, index), owned by this rank; BIND_FLAG gets --bind-any
# when it is not loopback.
BIND_FLAG=()
bind_ep() {
  if [ "$TRANSPORT" = ipc ]; then echo "ipc://$IPC_DIR/$1${2:-}"; return; fi
  if is_loopback "$host"; then echo "tcp://127.0.0.1:$(port_of "$1" "${2:-0}")"
  else echo "tcp://$BIND_ADDR:$(port_of "$1" "${2:-0}")"; fi
}
is_loopback "$host" || [ "$TRANSPORT" = ipc ] || BIND_FLAG=(--bind-any)

lats=""
for ((m = 0; m < NDEC; m++)); do lats+="${lats:+,}$(ep lat $m)"; done

case "$role" in
  eval)
    cmd=($EVAL_CMD --model images --in "$(bind_ep img)" --ctl "$(ep ctl)" --acks "$(ep acks)" --out "$OUT"
         "${BIND_FLAG[@]}" "${EVAL_ARGS[@]}") ;;
  source)
    cmd=($SOURCE_CMD --model dit --role source --n "$N" --job-size "$JOB_SIZE" --seed "$SEED" --ckpt "$DIT"
         --jobs-bind "$(bind_ep jobs)" --acks-bind "$(bind_ep acks)" --ctl-bind "$(bind_ep ctl)"
         "${BIND_FLAG[@]}" "${SOURCE_ARGS[@]}") ;;
  sample)
    v="SAMPLE_CMD_$index"; c=${!v:-$SAMPLE_CMD}
    cmd=($c --model dit --ckpt "$DIT" --jobs "$(ep jobs)" --ctl "$(ep ctl)" --out "$lats" "${SAMPLE_ARGS[@]}") ;;
  decode)
    v="DECODE_CMD_$index"; c=${!v:-$DECODE_CMD}
    cmd=($c --model vae --ckpt "$TOK" --store "$STORE" --in "$(bind_ep lat "$index")" --ctl "$(ep ctl)"
         --reply "$(ep img)" "${BIND_FLAG[@]}" "${DECODE_ARGS[@]}") ;;
  *) echo "stage.sh: rank $rank has unknown role '$role'" >&2; exit 2 ;;
esac

if [ $print = 1 ]; then
  printf 'rank %s (%s %s on %s):' "$rank" "$role" "$index" "$host"
  [ -n "$THREADS" ] && printf ' OMP_NUM_THREADS=%s' "$THREADS"
  for a in "${cmd[@]}"; do   # quoted only where the shell needs it
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then printf ' %s' "$a"; else printf ' %q' "$a"; fi
  done; echo
  exit 0
fi
[ -n "$THREADS" ] && export OMP_NUM_THREADS=$THREADS
# Each rank's stderr and stdout go to LOG_DIR when this host can write there.
if [ -n "$LOG_DIR" ] && mkdir -p "$LOG_DIR" 2>/dev/null; then
  exec >>"$LOG_DIR/rank$rank-$role$index.log" 2>&1
fi
echo "stage.sh: rank $rank ($role $index on $host):${cmd[*]}" >&2
case "$role" in eval|source) exec "${cmd[@]}" ;; esac

# A worker runs as a child so that its death can be judged (header); a TERM
# from the launcher (mpirun, srun, gen.sh) is passed on to it.
"${cmd[@]}" &
child=$!
trap 'kill -TERM $child 2>/dev/null' TERM INT HUP
while :; do
  wait $child; rc=$?
  kill -0 $child 2>/dev/null || break   # wait returned for a trapped signal: wait again
done
trap - TERM INT HUP
case $rc in
  0) exit 0 ;;
  2) echo "stage.sh: rank $rank ($role $index) refused its options (exit 2)" >&2; exit 2 ;;
  *) echo "stage.sh: rank $rank ($role $index) died (exit $rc); the source re-issues its jobs" >&2; exit 0 ;;
esac
