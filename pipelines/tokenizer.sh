#!/usr/bin/env bash
# tokenizer.sh [OUT] : the image-tokenizer experiment of issue 5 on
# Fashion-MNIST, end to end with the stage binaries (docs/experiments/TOKENIZER.md
# has the results and how to read them):
#   1. train --model classifier        (features for the Frechet distance;
#                                       or reuse CLASSIFIER=FILE)
#   2. train --model vae --reg kl|ve   (same budget: STEPS x BATCH images each,
#                                       one run per seed in SEEDS)
#   3. eval  --model vae               (PSNR, SSIM, classifier-feature Frechet,
#                                       sigma statistics, robustness probe,
#                                       gray photo-bank PSNR)
#   4. encode a slice into a store and decode it back (PNG grid + .npz)
#   5. OUT/robustness.png (PSNR and Frechet vs probe scale s, KL vs VE),
#      OUT/summary.md (mean +- std over seeds, the sigma curve during training
#      and whether sigma has stopped moving; pipelines/tokenizer_summary.py)
#      and OUT/report.md: the summary and every run's eval table.
#   With RGB=1 also: train --model vae --dataset photos --reg kl|ve (3-channel
#   tokenizers on the photo bank's training photos, RGB_STEPS x RGB_BATCH
#   random 32x32 crops), eval on the held-out photos in colour,
#   OUT/robustness_rgb.png.
# Budgets come from the environment (defaults sized for a laptop-class CPU,
# far below a converged run): STEPS (2000), BATCH (16), CLS_STEPS (2000),
# EVAL_N (1000), CONFIG (f4c4), KL_BETA (1e-6), VE_LAMBDA (1e-3), TAU (3),
# LAMBDA_REG (1), SCALES (0.5,1,2), ENCODE_N (256), CLASSIFIER (unset: train
# one into OUT/classifier; else a classifier.safetensors to copy there, with
# its report.json next to it), PHOTOS (1: the gray photo-bank PSNR when the
# bank is there; 0: skip it), RGB (0), RGB_STEPS (STEPS), RGB_BATCH (BATCH),
# PHOTO_BASE (128), LR (unset: train's default), DISC_WEIGHT (unset: no discriminator; else train's
# --disc-weight for every tokenizer), DISC_START (0), SEEDS (0: the seeds, e.g.
# "0 1 2"; run folders OUT/vae-CONFIG-ARM-sSEED), LOG_EVERY (10: train's
# --log-every, the resolution of the sigma curve), JOBS (2: that many
# trainings at once, single-threaded each, logs in OUT/train*-ARM-sSEED.log;
# 1: one after the other with the default threads). Build first with `make`.
# Re-running with the same OUT resumes: finished training runs are kept, and
# an eval whose report.json is newer than the weights is kept too unless
# REEVAL=1 (after changing the eval code).
set -euo pipefail
case "${1:-}" in
  -h|--help) sed -n '2,/^set /p' "$0" | sed -e '/^set /d' -e 's/^# \{0,1\}//'; echo "usage: pipelines/tokenizer.sh [OUT]   (default runs/tokenizer; budgets from env, see header)"; exit 0 ;;
  -*) echo "tokenizer.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
OUT=${1:-runs/tokenizer}
STEPS=${STEPS:-2000}; BATCH=${BATCH:-16}; CLS_STEPS=${CLS_STEPS:-2000}
EVAL_N=${EVAL_N:-1000}; CONFIG=${CONFIG:-f4c4}; SCALES=${SCALES:-0.5,1,2}
KL_BETA=${KL_BETA:-1e-6}; VE_LAMBDA=${VE_LAMBDA:-1e-3}; TAU=${TAU:-3}; LAMBDA_REG=${LAMBDA_REG:-1}
ENCODE_N=${ENCODE_N:-256}; RGB=${RGB:-0}; RGB_STEPS=${RGB_STEPS:-$STEPS}; RGB_BATCH=${RGB_BATCH:-$BATCH}
PHOTO_BASE=${PHOTO_BASE:-128}; JOBS=${JOBS:-2}; SEEDS=${SEEDS:-0}; SEEDS=${SEEDS//,/ }; LOG_EVERY=${LOG_EVERY:-10}
case "$JOBS" in 1) ;; [2-9]|[1-9][0-9]) export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} ;;
  *) echo "tokenizer.sh: JOBS must be a number from 1 to 99" >&2; exit 2 ;; esac
for s in $SEEDS; do
  case "$s" in ''|*[!0-9]*) echo "tokenizer.sh: SEEDS must be non-negative integers (got '$s')" >&2; exit 2 ;; esac
done
[ -n "${SEEDS// /}" ] || { echo "tokenizer.sh: SEEDS is empty" >&2; exit 2; }
case "$LOG_EVERY" in ''|*[!0-9]*|0) echo "tokenizer.sh: LOG_EVERY must be a positive integer" >&2; exit 2 ;; esac
for b in train eval encode decode; do
  [ -x "bin/$b" ] || { echo "tokenizer.sh: bin/$b missing (run make)" >&2; exit 1; }
done
mkdir -p "$OUT"
extra=()   # --lr and the GAN flags, for every tokenizer
if [ -n "${LR:-}" ]; then extra=(--lr "$LR"); fi
if [ -n "${DISC_WEIGHT:-}" ]; then extra+=(--disc-weight "$DISC_WEIGHT" --disc-start "${DISC_START:-0}"); fi
# The photo bank (Debian sample photos): optional for the gray photo PSNR
# (PHOTOS), required by the RGB tokenizers (RGB=1 trains on it), whatever PHOTOS says.
photos=(); bank=0
if [ "${PHOTOS:-1}" != 0 ] || [ "$RGB" = 1 ]; then scripts/photos.sh && bank=1; fi
if [ "${PHOTOS:-1}" != 0 ]; then
  if [ $bank = 1 ]; then photos=(--photos); else echo "tokenizer.sh: no photo bank, skipping photo PSNR" >&2; fi
fi
if [ "$RGB" = 1 ] && [ $bank = 0 ]; then
  echo "tokenizer.sh: RGB=1 trains on the photo bank, and scripts/photos.sh could not build it (its message above)" >&2
  exit 1
fi

if [ ! -f "$OUT/classifier/classifier.safetensors" ]; then
  mkdir -p "$OUT/classifier"
  if [ -n "${CLASSIFIER:-}" ]; then
    cp "$CLASSIFIER" "$OUT/classifier/classifier.safetensors"
    cp "$(dirname "$CLASSIFIER")/report.json" "$OUT/classifier/report.json" 2>/dev/null ||
      echo '{"test_accuracy":null,"note":"reused classifier without report.json"}' > "$OUT/classifier/report.json"
  else
    bin/train --model classifier --out "$OUT/classifier" --steps "$CLS_STEPS" --test-n "${CLS_TEST_N:-10000}"
  fi
fi

# train_vae RUN REG SEED DATASET_ARGS... : train (or resume) one tokenizer.
train_vae() {
  local run=$1 reg=$2 seed=$3; shift 3
  local resume=() args
  [ -f "$run/vae.safetensors" ] && resume=(--resume)
  if [ "$reg" = kl ]; then args=(--reg kl --beta "$KL_BETA")
  else args=(--reg ve --lambda-ve "$VE_LAMBDA" --tau "$TAU" --lambda-reg "$LAMBDA_REG" --mag global); fi
  bin/train --model vae --config "$CONFIG" "${args[@]}" "${extra[@]}" "$@" --seed "$seed" \
    --log-every "$LOG_EVERY" --out "$run" "${resume[@]}"
}

# need_eval RUN: 0 (run eval) unless RUN/eval/report.json is newer than the weights.
need_eval() {
  [ "${REEVAL:-0}" = 1 ] || ! [ "$1/eval/report.json" -nt "$1/vae.safetensors" ]
}

# train_arms SUFFIX DATASET_ARGS... : the kl and ve tokenizers of one dataset
# for every seed, JOBS at a time (logs in OUT/trainSUFFIX-ARM-sSEED.log), or
# one after the other when JOBS=1.
train_arms() {
  local suffix=$1; shift
  local pids=() reg seed fail=0
  for seed in $SEEDS; do
    for reg in kl ve; do
      if [ "$JOBS" = 1 ]; then
        train_vae "$OUT/vae-$CONFIG$suffix-$reg-s$seed" "$reg" "$seed" "$@"
        continue
      fi
      train_vae "$OUT/vae-$CONFIG$suffix-$reg-s$seed" "$reg" "$seed" "$@" > "$OUT/train$suffix-$reg-s$seed.log" 2>&1 &
      pids+=($!)
      if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}" || fail=1; pids=("${pids[@]:1}"); fi
    done
  done
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  [ $fail = 0 ] || { echo "tokenizer.sh: a training run failed (see $OUT/train$suffix-*.log)" >&2; exit 1; }
}

# plot_runs OUT.png SUFFIX : the robustness figure of up to 3 seeds per arm.
plot_runs() {
  local png=$1 suffix=$2 reps=() labels=() reg seed n
  for reg in kl ve; do
    n=0
    for seed in $SEEDS; do
      [ $n -lt 3 ] || break
      reps+=("$OUT/vae-$CONFIG$suffix-$reg-s$seed/eval/report.json")
      labels+=("${suffix:+RGB }${reg^^} $([ "$reg" = kl ] && echo "$KL_BETA" || echo "$VE_LAMBDA") s$seed")
      n=$((n + 1))
    done
  done
  local IFS=,
  bin/eval --model vae --plot-robustness "$png" --labels "${labels[*]}" "${reps[@]}"
}

train_arms "" --steps "$STEPS" --batch "$BATCH"
for seed in $SEEDS; do for reg in kl ve; do
  run="$OUT/vae-$CONFIG-$reg-s$seed"
  if need_eval "$run"; then
    bin/eval --model vae --ckpt "$run/vae" --out "$run/eval" --n "$EVAL_N" \
      --scales "$SCALES" --classifier "$OUT/classifier/classifier.safetensors" "${photos[@]}"
  fi
  bin/encode --model vae --ckpt "$run/vae" --store "$run/store" \
    --first 0 --end "$ENCODE_N" --stats --stats-n "$ENCODE_N"
  mkdir -p "$run/decoded"
  bin/decode --model vae --config "$CONFIG" --ckpt "$run/vae" --store "$run/store" \
    --out "$run/decoded" --n "$(( ENCODE_N < 64 ? ENCODE_N : 64 ))"
done; done
plot_runs "$OUT/robustness.png" ""

regs_rgb=()
if [ "$RGB" = 1 ]; then
  regs_rgb=(kl ve)
  train_arms -rgb --dataset photos --photo-base "$PHOTO_BASE" --steps "$RGB_STEPS" --batch "$RGB_BATCH"
  for seed in $SEEDS; do for reg in kl ve; do
    run="$OUT/vae-$CONFIG-rgb-$reg-s$seed"
    if need_eval "$run"; then
      bin/eval --model vae --ckpt "$run/vae" --out "$run/eval" --n "$EVAL_N" --scales "$SCALES" \
        --photo-base "$PHOTO_BASE"
    fi
  done; done
  plot_runs "$OUT/robustness_rgb.png" -rgb
fi

{
  echo "# Image tokenizer: KL vs VE ($CONFIG, $STEPS steps x $BATCH images, seeds $SEEDS${DISC_WEIGHT:+, disc weight $DISC_WEIGHT from step ${DISC_START:-0}})"
  echo
  echo "Classifier (Frechet features): $(cat "$OUT/classifier/report.json")"
  echo
  echo "Robustness curves: robustness.png${regs_rgb:+, robustness_rgb.png}"
  echo
  /usr/bin/python3 pipelines/tokenizer_summary.py "$OUT" "vae-$CONFIG" kl ve ${regs_rgb[@]/#/rgb-}
  for seed in $SEEDS; do for arm in kl ve ${regs_rgb[@]/#/rgb-}; do
    echo
    echo "## $arm, seed $seed"
    grep throughput "$OUT/vae-$CONFIG-$arm-s$seed/log.jsonl" | tail -n 1 || true
    echo
    sed -n '3,$p' "$OUT/vae-$CONFIG-$arm-s$seed/eval/report.md"
  done; done
} > "$OUT/report.md"
echo "tokenizer.sh: wrote $OUT/report.md"
