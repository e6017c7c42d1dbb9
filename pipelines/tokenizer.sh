#!/usr/bin/env bash
# tokenizer.sh [OUT] : the image-tokenizer experiment of issue 5 on
# Fashion-MNIST, end to end with the stage binaries:
#   1. train --model classifier        (features for the Frechet distance)
#   2. train --model vae --reg kl|ve   (same budget: STEPS x BATCH images each)
#   3. eval  --model vae               (PSNR, SSIM, classifier-feature Frechet,
#                                       sigma statistics, robustness probe)
#   4. encode a slice into a store and decode it back (PNG grid + .npz)
#   5. OUT/report.md: the two eval tables side by side.
# Budgets come from the environment (defaults sized for a laptop-class CPU,
# far below a converged run): STEPS (2000), BATCH (16), CLS_STEPS (2000),
# EVAL_N (1000), CONFIG (f4c4), KL_BETA (1e-6), VE_LAMBDA (1e-3), TAU (3),
# LAMBDA_REG (1), SCALES (0.5,1,2), ENCODE_N (256). Build first with `make`.
set -euo pipefail
case "${1:-}" in
  -h|--help) sed -n '2,/^set /p' "$0" | sed -e '/^set /d' -e 's/^# \{0,1\}//'; echo "usage: pipelines/tokenizer.sh [OUT]   (default runs/tokenizer; budgets from env, see header)"; exit 0 ;;
esac
cd "$(dirname "$0")/.."
OUT=${1:-runs/tokenizer}
STEPS=${STEPS:-2000}; BATCH=${BATCH:-16}; CLS_STEPS=${CLS_STEPS:-2000}
EVAL_N=${EVAL_N:-1000}; CONFIG=${CONFIG:-f4c4}; SCALES=${SCALES:-0.5,1,2}
KL_BETA=${KL_BETA:-1e-6}; VE_LAMBDA=${VE_LAMBDA:-1e-3}; TAU=${TAU:-3}; LAMBDA_REG=${LAMBDA_REG:-1}
ENCODE_N=${ENCODE_N:-256}
for b in train eval encode decode; do
  [ -x "bin/$b" ] || { echo "tokenizer.sh: bin/$b missing (run make)" >&2; exit 1; }
done
mkdir -p "$OUT"
# The photo bank (Debian sample photos) for the gray photo PSNR; optional.
photos=()
if scripts/photos.sh; then photos=(--photos); else echo "tokenizer.sh: no photo bank, skipping photo PSNR" >&2; fi

if [ ! -f "$OUT/classifier/classifier.safetensors" ]; then
  bin/train --model classifier --out "$OUT/classifier" --steps "$CLS_STEPS" --test-n "${CLS_TEST_N:-10000}"
fi
for reg in kl ve; do
  run="$OUT/vae-$CONFIG-$reg"
  resume=()
  [ -f "$run/vae.safetensors" ] && resume=(--resume)
  if [ "$reg" = kl ]; then args=(--reg kl --beta "$KL_BETA")
  else args=(--reg ve --lambda-ve "$VE_LAMBDA" --tau "$TAU" --lambda-reg "$LAMBDA_REG" --mag global); fi
  bin/train --model vae --config "$CONFIG" "${args[@]}" --steps "$STEPS" --batch "$BATCH" \
    --out "$run" "${resume[@]}"
  bin/eval --model vae --config "$CONFIG" --ckpt "$run/vae" --out "$run/eval" --n "$EVAL_N" \
    --scales "$SCALES" --classifier "$OUT/classifier/classifier.safetensors" "${photos[@]}"
  bin/encode --model vae --config "$CONFIG" --ckpt "$run/vae" --store "$run/store" \
    --first 0 --end "$ENCODE_N" --stats --stats-n "$ENCODE_N"
  mkdir -p "$run/decoded"
  bin/decode --model vae --config "$CONFIG" --ckpt "$run/vae" --store "$run/store" \
    --out "$run/decoded" --n "$(( ENCODE_N < 64 ? ENCODE_N : 64 ))"
done

{
  echo "# Image tokenizer on Fashion-MNIST: KL vs VE ($CONFIG, $STEPS steps x $BATCH images)"
  echo
  echo "Classifier (Frechet features): $(cat "$OUT/classifier/report.json")"
  for reg in kl ve; do
    echo
    echo "## $reg"
    tail -n 1 "$OUT/vae-$CONFIG-$reg/log.jsonl"
    echo
    sed -n '3,$p' "$OUT/vae-$CONFIG-$reg/eval/report.md"
  done
} > "$OUT/report.md"
echo "tokenizer.sh: wrote $OUT/report.md"
