#!/usr/bin/env bash
# tokenizer.sh [OUT] : the image-tokenizer experiment of issue 5 on
# Fashion-MNIST, end to end with the stage binaries (docs/experiments/TOKENIZER.md
# has the results and how to read them):
#   1. train --model classifier        (features for the Frechet distance;
#                                       or reuse CLASSIFIER=FILE)
#   2. train --model vae --reg kl|ve   (same budget: STEPS x BATCH images each)
#   3. eval  --model vae               (PSNR, SSIM, classifier-feature Frechet,
#                                       sigma statistics, robustness probe,
#                                       gray photo-bank PSNR)
#   4. encode a slice into a store and decode it back (PNG grid + .npz)
#   5. OUT/robustness.png (PSNR and Frechet vs probe scale s, KL vs VE) and
#      OUT/report.md: the eval tables side by side.
#   With RGB=1 also: train --model vae --dataset photos --reg kl|ve (3-channel
#   tokenizers on the photo bank's training photos, RGB_STEPS x RGB_BATCH
#   random 32x32 crops), eval on the held-out photos in colour,
#   OUT/robustness_rgb.png.
# Budgets come from the environment (defaults sized for a laptop-class CPU,
# far below a converged run): STEPS (2000), BATCH (16), CLS_STEPS (2000),
# EVAL_N (1000), CONFIG (f4c4), KL_BETA (1e-6), VE_LAMBDA (1e-3), TAU (3),
# LAMBDA_REG (1), SCALES (0.5,1,2), ENCODE_N (256), CLASSIFIER (unset: train
# one into OUT/classifier; else a classifier.safetensors to copy there, with
# its report.json next to it), RGB (0), RGB_STEPS (STEPS), RGB_BATCH (BATCH),
# PHOTO_BASE (128), LR (unset: train's default), DISC_WEIGHT (unset: no discriminator; else train's
# --disc-weight for every tokenizer), DISC_START (0), JOBS (2: the KL and
# VE trainings run at the same time, single-threaded each, logs in
# OUT/train*-ARM.log; 1: one after the other). Build first with `make`.
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
PHOTO_BASE=${PHOTO_BASE:-128}; JOBS=${JOBS:-2}
case "$JOBS" in 1) ;; 2) export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} ;;
  *) echo "tokenizer.sh: JOBS must be 1 or 2" >&2; exit 2 ;; esac
for b in train eval encode decode; do
  [ -x "bin/$b" ] || { echo "tokenizer.sh: bin/$b missing (run make)" >&2; exit 1; }
done
mkdir -p "$OUT"
extra=()   # --lr and the GAN flags, for every tokenizer
if [ -n "${LR:-}" ]; then extra=(--lr "$LR"); fi
if [ -n "${DISC_WEIGHT:-}" ]; then extra+=(--disc-weight "$DISC_WEIGHT" --disc-start "${DISC_START:-0}"); fi
# The photo bank (Debian sample photos) for the gray photo PSNR; optional.
photos=()
if scripts/photos.sh; then photos=(--photos); else echo "tokenizer.sh: no photo bank, skipping photo PSNR" >&2; fi
if [ "$RGB" = 1 ] && [ ${#photos[@]} -eq 0 ]; then echo "tokenizer.sh: RGB=1 needs the photo bank" >&2; exit 1; fi

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

# train_vae RUN REG DATASET_ARGS... : train (or resume) one tokenizer.
train_vae() {
  local run=$1 reg=$2; shift 2
  local resume=() args
  [ -f "$run/vae.safetensors" ] && resume=(--resume)
  if [ "$reg" = kl ]; then args=(--reg kl --beta "$KL_BETA")
  else args=(--reg ve --lambda-ve "$VE_LAMBDA" --tau "$TAU" --lambda-reg "$LAMBDA_REG" --mag global); fi
  bin/train --model vae --config "$CONFIG" "${args[@]}" "${extra[@]}" "$@" --out "$run" "${resume[@]}"
}

# need_eval RUN: 0 (run eval) unless RUN/eval/report.json is newer than the weights.
need_eval() {
  [ "${REEVAL:-0}" = 1 ] || ! [ "$1/eval/report.json" -nt "$1/vae.safetensors" ]
}

# train_arms DATASET_ARGS... : the kl and ve tokenizers of one dataset, both
# at once when JOBS=2 (logs in OUT/train-ARM.log), else one after the other.
train_arms() {
  local suffix=$1; shift
  local pids=() reg
  for reg in kl ve; do
    if [ "$JOBS" = 2 ]; then
      train_vae "$OUT/vae-$CONFIG$suffix-$reg" "$reg" "$@" > "$OUT/train$suffix-$reg.log" 2>&1 &
      pids+=($!)
    else
      train_vae "$OUT/vae-$CONFIG$suffix-$reg" "$reg" "$@"
    fi
  done
  for p in "${pids[@]}"; do
    wait "$p" || { echo "tokenizer.sh: a training run failed (see $OUT/train$suffix-*.log)" >&2; exit 1; }
  done
}

train_arms "" --steps "$STEPS" --batch "$BATCH"
for reg in kl ve; do
  run="$OUT/vae-$CONFIG-$reg"
  if need_eval "$run"; then
    bin/eval --model vae --ckpt "$run/vae" --out "$run/eval" --n "$EVAL_N" \
      --scales "$SCALES" --classifier "$OUT/classifier/classifier.safetensors" "${photos[@]}"
  fi
  bin/encode --model vae --ckpt "$run/vae" --store "$run/store" \
    --first 0 --end "$ENCODE_N" --stats --stats-n "$ENCODE_N"
  mkdir -p "$run/decoded"
  bin/decode --model vae --config "$CONFIG" --ckpt "$run/vae" --store "$run/store" \
    --out "$run/decoded" --n "$(( ENCODE_N < 64 ? ENCODE_N : 64 ))"
done
bin/eval --model vae --plot-robustness "$OUT/robustness.png" --labels "KL $KL_BETA,VE $VE_LAMBDA" \
  "$OUT/vae-$CONFIG-kl/eval/report.json" "$OUT/vae-$CONFIG-ve/eval/report.json"

regs_rgb=()
if [ "$RGB" = 1 ]; then
  regs_rgb=(kl ve)
  train_arms -rgb --dataset photos --photo-base "$PHOTO_BASE" --steps "$RGB_STEPS" --batch "$RGB_BATCH"
  for reg in kl ve; do
    run="$OUT/vae-$CONFIG-rgb-$reg"
    if need_eval "$run"; then
      bin/eval --model vae --ckpt "$run/vae" --out "$run/eval" --n "$EVAL_N" --scales "$SCALES" \
        --photo-base "$PHOTO_BASE"
    fi
  done
  bin/eval --model vae --plot-robustness "$OUT/robustness_rgb.png" --labels "RGB KL,RGB VE" \
    "$OUT/vae-$CONFIG-rgb-kl/eval/report.json" "$OUT/vae-$CONFIG-rgb-ve/eval/report.json"
fi

{
  echo "# Image tokenizer: KL vs VE ($CONFIG, $STEPS steps x $BATCH images${DISC_WEIGHT:+, disc weight $DISC_WEIGHT from step ${DISC_START:-0}})"
  echo
  echo "Classifier (Frechet features): $(cat "$OUT/classifier/report.json")"
  echo
  echo "Robustness curves: robustness.png${regs_rgb:+, robustness_rgb.png}"
  for arm in kl ve ${regs_rgb[@]/#/rgb-}; do
    echo
    echo "## $arm"
    grep throughput "$OUT/vae-$CONFIG-$arm/log.jsonl" | tail -n 1 || true
    echo
    sed -n '3,$p' "$OUT/vae-$CONFIG-$arm/eval/report.md"
  done
} > "$OUT/report.md"
echo "tokenizer.sh: wrote $OUT/report.md"
