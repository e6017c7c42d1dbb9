#!/usr/bin/env bash
# pipelines/toy.sh: the paper's 2D toy experiment (section 4.1) end to end
# through the five stages, for both arms (small-KL tokenizer vs VE tokenizer),
# then a comparison table. Each arm: train tokenizer -> encode (store +
# diagnostics) -> train flow (from the store) -> job source + N samplers ->
# decode -> eval (report.json, report.md, figures). Stages talk over ZeroMQ
# (ipc:// sockets under a temp dir) and share the LMDB store.
# Outputs: OUT/seedS/ARM/{tok,store,flow,eval}/..., OUT/summary.md, OUT/summary.json,
# OUT/seedS/side_by_side.png. See docs/experiments/TOY.md.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'USAGE'
usage: pipelines/toy.sh [options]
  --out DIR          output folder (default runs/toy-<config>)
  --paper            paper config: 8 x 512 MLPs, batch 4096, 200k iterations; trains on the
                     GPU (--device cuda unless --device is given: ~24 CPU hours per model)
  --device DEV       cpu (default; cuda with --paper) | cuda[:N]: where the tokenizer and flow
                     training runs compute (train --device); checked first with a 1-iteration
                     training, and toy.sh stops with its message if DEV is not usable. encode,
                     sample, decode and eval run on the CPU (no GPU placement there)
  --long             longer CPU config (about an hour on 2 cores)
  --quick            tiny config for tests (seconds)
  --seeds N          seeds 0..N-1 (default 1)
  --samplers N       sample workers per arm (default 2)
  --sweep-kl         KL weights 1e-6 .. 1e-1 beside VE (toy analogue of Table 2)
  --raw              also the no-tokenizer diagnostic (flow on raw data)
  --diagnostics      --raw, a KL 1e-4 control, and Euler with the exact velocity at 20 and
                     100 steps: arms exact20, exact100 in the raw-data store's normalised
                     coordinates (the flows' own: the floor they are compared with) and
                     exactraw20, exactraw100 in data coordinates (sample --exact-coords raw)
  --arms LIST        comma-separated subset of arms to run (e.g. kl,ve)
  --ve "ARGS"        VE tokenizer flags (default: the recorded sweep's choice)
  --jobs N           arms run in parallel (default 2; each arm is single-threaded)
  --depth N --width N --batch N --tok-iters N --flow-iters N --lr X --flow-lr X
  --flow-depth N --flow-width N   flow model size (default: --depth, --width)
  --time-embed raw|fourier        flow model's time input (default raw; fourier: 16
                     sin/cos pairs of t, see train --model toy-flow --help)
  --time-freqs K     Fourier frequencies (default 16)
  --ema B            flow: sample with an EMA of the weights (decay B; default 0.999, --quick 0;
                     0: the raw weights)
  --time-sampling M  flow: late (default: t = 1-(1-u)^2) | uniform (the paper) | logit-normal
                     (train --model toy-flow --time)
  --flow-lr-schedule S  flow: inv-sqrt (default) | cosine (decays to 0 at --flow-iters) | constant
                     (train --model toy-flow --lr-schedule)
  --tok-lr-schedule S   the same for the tokenizers (decays to 0 at --tok-iters)
  --n-train N --n-samples N --steps N
USAGE
}

DEPTH=4; WIDTH=128; BATCH=1024; TOK_ITERS=3000; FLOW_ITERS=20000; LR=4e-3; FLOW_LR=4e-3
N_TRAIN=20000; N_SAMPLES=10000; STEPS=20; SEEDS=1; DEVICE=""; SAMPLERS=2; SWEEP=0; RAW=0; PAR=2
DIAG=0; REUSE=0; FLOW_DEPTH=""; FLOW_WIDTH=""; TIME_EMBED=raw; TIME_FREQS=16; EMA=""; TSAMP=late; FLOW_SCHED=inv-sqrt; TOK_SCHED=inv-sqrt; CONFIG=default; OUT=""; ARMS_ONLY=""; JOB_SIZE=500; N_TRUE=10000; N_HOLD=10000
# VE defaults chosen by the sweep recorded in docs/experiments/TOY.md (runs/toy-sweep-ve)
VE_ARGS="--reg ve --lambda-ve 1e-6 --lambda-reg 1 --tau 1 --delta 1e-6 --reg-form elem"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift ;;
    --paper) CONFIG=paper; DEPTH=8; WIDTH=512; BATCH=4096; TOK_ITERS=200000; FLOW_ITERS=200000; LR=1e-3; FLOW_LR=1e-3; N_TRAIN=100000; N_SAMPLES=50000 ;;
    --long) CONFIG=long; DEPTH=5; WIDTH=256; BATCH=2048; TOK_ITERS=10000; FLOW_ITERS=40000; N_SAMPLES=20000 ;;
    --quick) CONFIG=quick; DEPTH=2; WIDTH=32; BATCH=256; TOK_ITERS=150; FLOW_ITERS=150; N_TRAIN=2000; N_SAMPLES=1200; JOB_SIZE=100; N_TRUE=2000; N_HOLD=1000 ;;
    --seeds) SEEDS=$2; shift ;;
    --device) DEVICE=$2; shift ;;
    --samplers) SAMPLERS=$2; shift ;;
    --sweep-kl) SWEEP=1 ;;
    --raw) RAW=1 ;;
    --diagnostics) RAW=1; DIAG=1 ;;
    --arms) ARMS_ONLY=$2; shift ;;
    --ve) VE_ARGS=$2; shift ;;
    --jobs) PAR=$2; shift ;;
    --depth) DEPTH=$2; shift ;;
    --width) WIDTH=$2; shift ;;
    --batch) BATCH=$2; shift ;;
    --tok-iters) TOK_ITERS=$2; shift ;;
    --flow-iters) FLOW_ITERS=$2; shift ;;
    --lr) LR=$2; shift ;;
    --flow-lr) FLOW_LR=$2; shift ;;
    --flow-depth) FLOW_DEPTH=$2; shift ;;
    --flow-width) FLOW_WIDTH=$2; shift ;;
    --time-embed) TIME_EMBED=$2; shift ;;
    --time-freqs) TIME_FREQS=$2; shift ;;
    --ema) EMA=$2; shift ;;
    --time-sampling) TSAMP=$2; shift ;;
    --flow-lr-schedule) FLOW_SCHED=$2; shift ;;
    --tok-lr-schedule) TOK_SCHED=$2; shift ;;
    --n-train) N_TRAIN=$2; shift ;;
    --n-samples) N_SAMPLES=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    --reuse) REUSE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "toy.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$OUT" ] || OUT="runs/toy-$CONFIG"
[ -n "$DEVICE" ] || { DEVICE=cpu; [ "$CONFIG" = paper ] && DEVICE=cuda; }
[ -n "$EMA" ] || { EMA=0.999; [ "$CONFIG" = quick ] && EMA=0; }
[ -n "$FLOW_DEPTH" ] || FLOW_DEPTH=$DEPTH
[ -n "$FLOW_WIDTH" ] || FLOW_WIDTH=$WIDTH
case "$TIME_EMBED" in raw|fourier) ;; *) echo "toy.sh: --time-embed must be raw or fourier" >&2; exit 2 ;; esac
for s in "$FLOW_SCHED" "$TOK_SCHED"; do
  case "$s" in inv-sqrt|cosine|constant) ;; *) echo "toy.sh: --flow-lr-schedule / --tok-lr-schedule must be inv-sqrt, cosine or constant" >&2; exit 2 ;; esac
done
EVAL=eval; [ "$STEPS" = 20 ] || EVAL=eval-s$STEPS
# Fresh machine: install missing Debian packages (or print the command), then
# build the five stages (a no-op when they are up to date).
scripts/deps.sh || { echo "toy.sh: missing Debian packages (command above)" >&2; exit 1; }
make -s -j"$(nproc)" bin/train bin/encode bin/sample bin/decode bin/eval >&2 ||
  { echo "toy.sh: build failed" >&2; exit 1; }
# one thread per process: the arms run side by side and OpenBLAS + OpenMP
# threads oversubscribe 2 cores badly (measured 10x slower)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mkdir -p "$OUT"
DEV=(--device "$DEVICE")   # the two train runs only
if [ "$DEVICE" != cpu ]; then   # fail before any arm starts, with the stage's own message
  probe=$(mktemp -d /tmp/toy-dev.XXXXXX)
  if ! bin/train --model toy-tokenizer "${DEV[@]}" --out "$probe" --depth 2 --width 8 --batch 8 --iters 1 \
       >/dev/null 2>"$probe/err"; then
    echo "toy.sh: --device $DEVICE: the toy training cannot run there:" >&2; cat "$probe/err" >&2
    [ "$CONFIG" = paper ] && echo "toy.sh: --paper trains on a GPU by default; --device cpu runs it on the CPU anyway" >&2
    rm -rf "$probe"; exit 2
  fi
  rm -rf "$probe"
fi

# arm name -> tokenizer flags ("raw" = no tokenizer)
declare -A ARM
ARM[kl]="--reg kl --kl-weight 1e-6"
ARM[ve]="$VE_ARGS"
ARM[kl1e-4]="--reg kl --kl-weight 1e-4"
ARMS="kl ve"
if [ "$SWEEP" = 1 ]; then
  for w in 1e-5 1e-4 1e-3 1e-2 1e-1; do ARM[kl$w]="--reg kl --kl-weight $w"; ARMS="$ARMS kl$w"; done
fi
[ "$RAW" = 1 ] && ARMS="$ARMS raw"
[ "$DIAG" = 1 ] && ARMS="$ARMS kl1e-4 exact20 exact100 exactraw20 exactraw100"
[ -n "$ARMS_ONLY" ] && ARMS=${ARMS_ONLY//,/ }

PIDS_FILE=$(mktemp)
cleanup() { while read -r p; do kill "$p" 2>/dev/null || true; done <"$PIDS_FILE"; rm -f "$PIDS_FILE"; }
trap cleanup EXIT

# sampling over the bus: eval <- decode <- N samplers <- job source
run_sampling() {  # dir tokflag(--ckpt F | --identity) seed [steps] [model flag]
  local dir=$1 tokflag=$2 seed=$3 steps=${4:-$STEPS} model=${5:---ckpt $1/flow/flow.safetensors} sock
  sock=$(mktemp -d /tmp/toy.XXXXXX)
  local J=ipc://$sock/jobs A=ipc://$sock/acks C=ipc://$sock/ctl L=ipc://$sock/lat P=ipc://$sock/pts
  local extra=() store=()
  [ -f "$dir/diagnostics.json" ] && extra=(--extra "$dir/diagnostics.json")
  [ -d "$dir/store" ] && store=(--store "$dir/store")
  bin/eval --model toy --in "$P" --ctl "$C" --acks "$A" --out "$dir/$EVAL" --n-true $N_TRUE \
    "${store[@]}" --title "$(basename "$dir") seed $seed" "${extra[@]}" 2>"$dir/$EVAL.log" &
  local ev=$!; echo $ev >>"$PIDS_FILE"
  bin/decode --model toy $tokflag "${store[@]}" --in "$L" --ctl "$C" --out "$P" 2>"$dir/decode.log" &
  local de=$!; echo $de >>"$PIDS_FILE"
  local ws=()
  for i in $(seq 1 "$SAMPLERS"); do
    bin/sample --model toy-flow $model --jobs "$J" --ctl "$C" --out "$L" \
      --steps $steps 2>"$dir/sample$i.log" &
    ws+=($!); echo $! >>"$PIDS_FILE"
  done
  bin/sample --model toy-flow --role source --n $N_SAMPLES --job-size $JOB_SIZE --seed $((seed + 100)) \
    --deadline-ms 30000 --jobs-bind "$J" --acks-bind "$A" --ctl-bind "$C" 2>"$dir/source.log"
  local rc=0
  wait $ev || rc=$?
  wait $de || true
  for w in "${ws[@]}"; do wait "$w" || true; done
  rm -rf "$sock"
  return $rc
}

run_arm() {  # name seed
  local name=$1 seed=$2 dir="$OUT/seed$2/$1"
  mkdir -p "$dir"
  local t0=$SECONDS tokflag
  if [[ "$name" == exact* ]]; then   # Euler with the exact velocity v*: the sampler's own floor
    if [[ "$name" == exactraw* ]]; then   # in data coordinates, no store
      run_sampling "$dir" --identity "$seed" "${name#exactraw}" "--exact --exact-coords raw"
    else   # in the normalised coordinates of the raw arm's store (same data seed, same stats)
      [ "$REUSE" = 1 ] && [ -d "$dir/store" ] ||
      bin/encode --model toy --identity --store "$dir/store" --n $N_TRAIN --data-seed $((seed + 1)) 2>"$dir/encode.log"
      run_sampling "$dir" --identity "$seed" "${name#exact}" "--exact --store $dir/store"
    fi
    echo "[toy.sh] $name seed $seed done in $((SECONDS - t0)) s: $(tail -n 1 "$dir/$EVAL.log")"
    return
  fi
  if [ "$name" = raw ]; then
    tokflag=--identity
    [ "$REUSE" = 1 ] && [ -d "$dir/store" ] ||
    bin/encode --model toy --identity --store "$dir/store" --n $N_TRAIN --data-seed $((seed + 1)) 2>"$dir/encode.log"
  else
    tokflag="--ckpt $dir/tok/tokenizer.safetensors"
    if [ "$REUSE" = 0 ] || [ ! -f "$dir/tok/tokenizer.safetensors" ]; then
      bin/train --model toy-tokenizer "${DEV[@]}" --out "$dir/tok" ${ARM[$name]} --depth $DEPTH --width $WIDTH \
        --batch $BATCH --iters $TOK_ITERS --lr $LR --lr-schedule $TOK_SCHED --seed $seed 2>"$dir/train_tok.log"
      rm -rf "$dir/store"
    fi
    [ -d "$dir/store" ] || bin/encode --model toy $tokflag --store "$dir/store" --n $N_TRAIN --data-seed $((seed + 1)) \
      --n-holdout $N_HOLD --diagnostics "$dir/diagnostics.json" 2>"$dir/encode.log"
  fi
  [ "$REUSE" = 1 ] && [ -f "$dir/flow/flow.safetensors" ] ||
  bin/train --model toy-flow "${DEV[@]}" --store "$dir/store" --out "$dir/flow" --depth $FLOW_DEPTH --width $FLOW_WIDTH \
    --batch $BATCH --iters $FLOW_ITERS --lr $FLOW_LR --time-embed $TIME_EMBED --time-freqs $TIME_FREQS \
    --ema $EMA --time $TSAMP --lr-schedule $FLOW_SCHED --seed $seed 2>"$dir/train_flow.log"
  run_sampling "$dir" "$tokflag" "$seed"
  echo "[toy.sh] $name seed $seed done in $((SECONDS - t0)) s: $(tail -n 1 "$dir/$EVAL.log")"
}

echo "[toy.sh] config $CONFIG: tok ${DEPTH}x${WIDTH} flow ${FLOW_DEPTH}x${FLOW_WIDTH} ($TIME_EMBED time, $TSAMP t, ema $EMA, $FLOW_SCHED lr; tokenizer $TOK_SCHED lr) batch $BATCH tok $TOK_ITERS flow $FLOW_ITERS it, arms: $ARMS, seeds $SEEDS, samplers $SAMPLERS -> $OUT"
START=$SECONDS
fail=0
running=0
for s in $(seq 0 $((SEEDS - 1))); do
  for a in $ARMS; do
    run_arm "$a" "$s" &
    running=$((running + 1))
    if [ $running -ge "$PAR" ]; then wait -n || fail=1; running=$((running - 1)); fi
  done
done
while [ $running -gt 0 ]; do wait -n || fail=1; running=$((running - 1)); done
[ $fail = 0 ] || { echo "toy.sh: an arm failed; see the *.log files under $OUT" >&2; exit 1; }

for s in $(seq 0 $((SEEDS - 1))); do
  pngs=()
  for a in $ARMS; do [ -f "$OUT/seed$s/$a/$EVAL/density.png" ] && pngs+=("$OUT/seed$s/$a/$EVAL/density.png"); done
  for a in $ARMS; do [ -f "$OUT/seed$s/$a/$EVAL/latent.png" ] && pngs+=("$OUT/seed$s/$a/$EVAL/latent.png"); done
  [ ${#pngs[@]} -gt 0 ] && bin/eval --model toy --side-by-side "$OUT/seed$s/side_by_side_$EVAL.png" "${pngs[@]}"
done

/usr/bin/python3 - "$OUT" "$SEEDS" "$EVAL" $ARMS <<'PY'
import json, sys, os, statistics as st
out, seeds, evd, arms = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
cols = [("off_manifold", "off-manifold"), ("mean_logp", "mean log p"), ("median_logp", "median log p"),
        ("precision_k3", "precision"), ("recall_k3", "recall")]
xcols = [("rec_mse_mu", "rec MSE(mu)"), ("rec_mse_z", "rec MSE(z)"), ("mean_sigma", "mean sigma"),
         ("mu_spread", "mu spread"), ("sigma_over_spread", "sigma/spread"), ("floor_off_manifold", "floor off")]
rows, summary = [], {}
for a in arms:
    reps = []
    for s in range(seeds):
        p = os.path.join(out, f"seed{s}", a, evd, "report.json")
        if os.path.exists(p):
            reps.append(json.load(open(p)))
    if not reps:
        continue
    def agg(get):
        v = [get(r) for r in reps]
        v = [x for x in v if x is not None]
        if not v: return None, None
        return st.mean(v), (st.stdev(v) if len(v) > 1 else 0.0)
    ent = {}
    for k, _ in cols: ent[k] = agg(lambda r: r.get(k))
    for k, _ in xcols: ent[k] = agg(lambda r: r.get("extra", {}).get(k))
    flow_loss = []
    for s in range(seeds):
        p = os.path.join(out, f"seed{s}", a, "flow", "log.jsonl")
        if os.path.exists(p):
            lines = open(p).read().split("\n")
            lines = [json.loads(l) for l in lines if l.strip()]
            if lines: flow_loss.append(st.mean(l["loss"] for l in lines[-5:]))
    ent["flow_loss"] = (st.mean(flow_loss), st.stdev(flow_loss) if len(flow_loss) > 1 else 0.0) if flow_loss else (None, None)
    ent["true_mean_logp"] = agg(lambda r: r.get("true_mean_logp"))
    summary[a] = {k: {"mean": v[0], "std": v[1]} for k, v in ent.items()}
    summary[a]["n_seeds"] = len(reps)
    rows.append((a, ent, len(reps)))
def f(v):
    m, s = v
    if m is None: return "-"
    return f"{m:.4g}" + (f" ± {s:.2g}" if s else "")
hdr = ["arm", "seeds"] + [c[1] for c in cols] + ["flow loss"] + [c[1] for c in xcols]
lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
for a, ent, n in rows:
    lines.append("| " + " | ".join([a, str(n)] + [f(ent[k]) for k, _ in cols] + [f(ent["flow_loss"])] + [f(ent[k]) for k, _ in xcols]) + " |")
if rows:
    lines.append("")
    lines.append(f"true samples: mean log p {f(rows[0][1]['true_mean_logp'])}")
txt = "\n".join(lines)
print(txt)
tag = "" if evd == "eval" else "_" + evd
open(os.path.join(out, f"summary{tag}.md"), "w").write(txt + "\n")
json.dump(summary, open(os.path.join(out, f"summary{tag}.json"), "w"), indent=1)
PY
echo "[toy.sh] total $((SECONDS - START)) s; summary in $OUT/summary$( [ "$EVAL" = eval ] || echo _$EVAL).md"
