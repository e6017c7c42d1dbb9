#!/usr/bin/env bash
# pipelines/full.sh: the main job. The paper's Table 1 on Fashion-MNIST, KL vs
# VE tokenizer, end to end through the five stages:
#   classifier  the feature network of every FID here (the project's own
#               classifier, not Inception): the shipped weights/ file, or
#               CLASSIFIER=FILE, or CLASSIFIER=train (train --model classifier,
#               CLS_STEPS), and eval --model images --data fashion-mnist
#               (reference statistics)
#   tokenizer   train --model vae --reg kl|ve, same budget (both arms at once)
#   tokeval     eval --model vae: PSNR/SSIM, reconstruction FID, robustness
#   encode      encode --model vae: the training images -> one LMDB cache per arm
#               (--encoders K processes over index ranges)
#   dit         train --model dit: the same preset, seed and budget on each cache
#   generate    per arm, without and with CFG: job source -> --samplers N
#               sample workers -> --decoders M decoders -> eval --model images
#               (FID, sFID, IS, precision/recall, samples.npz, class grids)
#   report      OUT/report.md + OUT/report.json, loss and robustness curves
# Docs: README.md (quick start, results), docs/PAPER.md (--preset paper).
set -euo pipefail
# One compound command: bash parses all of it before running any, so editing
# this file while a run is going cannot derail that run.
{
cd "$(dirname "$0")/.."
ME=full.sh
STEPS_ALL="classifier tokenizer tokeval encode dit generate report"

usage() {
  cat <<'USAGE'
usage: pipelines/full.sh [options]
  --preset NAME     fmnist (default: Fashion-MNIST, 15 min wall on an idle 2-core machine; README has
                    the measured wall time),
                    long (hours on the CPU: 3 seeds, FID on 10k samples),
                    ci (the test's size: about a minute), paper (GPU: ImageNet folder,
                    VA-VAE f16d32, LightningDiT-B/1; see docs/PAPER.md)
  --long            the same as --preset long
  --out DIR         output folder (default runs/full-<preset>)
  --from STEP       redo STEP and every later one (earlier finished steps are kept):
                    classifier tokenizer tokeval encode dit generate report
  --seeds N         DiT seeds 0..N-1 per arm (default: the preset's)
  --samplers N      sample workers per generation (default 2)
  --decoders M      decoders per generation (default 1)
  --encoders K      encode processes per cache, over index ranges (default 1)
  --transport T     ipc (default) or tcp (127.0.0.1, ports from --port-base)
  --port-base P     first tcp port; the run uses P .. P+4*seeds*(4+M)-1 (default: derived
                    from the process id, below the kernel's ephemeral port range)
  --launcher L      how the generation graphs start (pipelines/launch/gen.sh): local
                    (default), mpirun (Open MPI MPMD, tcp) or slurm (srun --multi-prog);
                    --hosts H1,H2 / --hostfile FILE place them (docs/SCALING.md). The
                    other steps run on this host.
  --kill-sampler    (tests) sampler 0 of every generation exits abruptly holding a job
                    (sample --die-after 1); the source re-issues it to the others
  --data DIR        Fashion-MNIST folder (default the stages'), or the ImageNet-layout
                    folder for --preset paper
  --dry-run         print every step's command, run nothing
  -h, --help        this text
Budgets come from the preset; each can be overridden from the environment:
  CLS_STEPS REF_N TOK_STEPS TOK_BATCH EVAL_N SCALES ENCODE_N DIT_PRESET DIT_STEPS DIT_BATCH
  DIT_LR N_SAMPLES SAMPLE_STEPS CFG CFG_LO CFG_HI JOB_SIZE DEADLINE_MS
  KL_BETA VE_LAMBDA TAU LAMBDA_REG, and CLASSIFIER=FILE / KL_TOK=PREFIX / VE_TOK=PREFIX
  to reuse a trained classifier or tokenizers. The feature network is by default the
  shipped weights/fmnist-classifier.safetensors (0.9221 test accuracy, weights/README.md);
  CLASSIFIER=train trains one for CLS_STEPS steps instead.
Every step's program can be replaced: the variable holds the program (split on
spaces), full.sh appends the flags it would pass, starting with --model NAME:
CLASSIFIER_CMD (bin/train), REFSTATS_CMD (bin/eval), TOKENIZER_CMD (bin/train),
TOKEVAL_CMD (bin/eval), PLOT_CMD (bin/eval), ENCODE_CMD (bin/encode), TRAIN_CMD
(bin/train), LAUNCH_CMD (pipelines/launch/gen.sh, the whole generation graph), and
inside it (docs/SWAP.md) SOURCE_CMD, SAMPLE_CMD, DECODE_CMD, EVAL_CMD (bin/sample,
bin/sample, bin/decode, bin/eval); REPORT_CMD (/usr/bin/python3 pipelines/full/report.py)
gets OUT.
Re-running with the same --out skips every finished step whose command, inputs and
outputs (sha256 of checkpoints, caches, samples) are unchanged; an interrupted step
resumes (training from its last checkpoint, encoding from the missing images, a
generation from its start). Every command is printed and appended to OUT/commands.sh.
Exit 2: bad flags or missing data; 1: a step failed (its log is named).
USAGE
}

die2() { echo "$ME: $*" >&2; exit 2; }
posint() { [[ "$2" =~ ^[1-9][0-9]{0,5}$ ]] || die2 "$1 needs a positive integer, got '$2'"; }

PRESET=fmnist OUT="" FROM="" SEEDS="" SAMPLERS=2 DECODERS=1 ENCODERS=1 TRANSPORT=ipc PORT_BASE=""
KILL=0 DATA="" DRY=0 LAUNCHER=local HOSTS="" HOSTFILE=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --long) PRESET=long; shift; continue ;;
    --kill-sampler) KILL=1; shift; continue ;;
    --dry-run) DRY=1; shift; continue ;;
    --preset|--out|--from|--seeds|--samplers|--decoders|--encoders|--transport|--port-base|--data|\
    --launcher|--hosts|--hostfile)
      [ $# -ge 2 ] && [ -n "$2" ] || die2 "$1 needs a value (see --help)" ;;
    *) die2 "unknown option '$1' (see --help)" ;;
  esac
  case "$1" in
    --preset) PRESET=$2 ;; --out) OUT=$2 ;; --from) FROM=$2 ;; --data) DATA=$2 ;;
    --seeds) posint "$1" "$2"; SEEDS=$2 ;;
    --samplers) posint "$1" "$2"; SAMPLERS=$2 ;;
    --decoders) posint "$1" "$2"; DECODERS=$2 ;;
    --encoders) posint "$1" "$2"; ENCODERS=$2 ;;
    --transport) TRANSPORT=$2 ;;
    --launcher) LAUNCHER=$2 ;; --hosts) HOSTS=$2 ;; --hostfile) HOSTFILE=$2 ;;
    --port-base) [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1024 ] && [ "$2" -le 65000 ] ||
                   die2 "--port-base must be 1024..65000, got '$2'"; PORT_BASE=$2 ;;
  esac
  shift 2
done
case "$TRANSPORT" in ipc|tcp) ;; *) die2 "--transport must be ipc or tcp, got '$TRANSPORT'" ;; esac
case "$LAUNCHER" in local|mpirun|slurm) ;; *) die2 "--launcher must be local, mpirun or slurm, got '$LAUNCHER'" ;; esac
[ "$LAUNCHER" = local ] && [ -n "$HOSTS$HOSTFILE" ] && die2 "--hosts/--hostfile need --launcher mpirun or slurm"
[ "$LAUNCHER" = local ] || TRANSPORT=tcp
if [ -n "$FROM" ] && ! [[ " $STEPS_ALL " == *" $FROM "* ]]; then
  die2 "--from must be one of: $STEPS_ALL (got '$FROM')"
fi
[ "$KILL" = 1 ] && [ "$SAMPLERS" -lt 2 ] && die2 "--kill-sampler needs --samplers 2 or more"

# ---------------------------------------------------------------- presets
# Each value: the environment's, else the preset's. Sizes of the default are
# chosen from measured per-image costs (README: the measured wall time).
set_default() { local v=$1; [ -n "${!v:-}" ] || printf -v "$v" '%s' "$2"; }
case "$PRESET" in
  fmnist)
    set_default CLS_STEPS 1000; set_default REF_N 60000; set_default TOK_STEPS 1200; set_default TOK_BATCH 16
    set_default EVAL_N 1000; set_default ENCODE_N 20000; set_default DIT_STEPS 3000; set_default N_SAMPLES 2000
    set_default SAMPLE_STEPS 25; set_default SEEDS_P 1; set_default DEADLINE_MS 30000 ;;
  long)
    set_default CLS_STEPS 10000; set_default REF_N 60000; set_default TOK_STEPS 5000; set_default TOK_BATCH 16
    set_default EVAL_N 10000; set_default ENCODE_N 60000; set_default DIT_STEPS 20000; set_default N_SAMPLES 10000
    set_default SAMPLE_STEPS 50; set_default SEEDS_P 3; set_default DEADLINE_MS 60000
    set_default DIT_EMA_HALFLIFE 1000 ;;
  ci)
    set_default CLS_STEPS 40; set_default REF_N 2000; set_default TOK_STEPS 30; set_default TOK_BATCH 8
    set_default EVAL_N 128; set_default CLS_TEST_N 500; set_default ENCODE_N 512; set_default DIT_STEPS 40; set_default DIT_BATCH 32
    set_default DIT_WARMUP 10; set_default DIT_EMA_HALFLIFE 10
    set_default N_SAMPLES 256; set_default SAMPLE_STEPS 4; set_default JOB_SIZE 32; set_default SEEDS_P 1
    set_default DEADLINE_MS 3000; set_default SCALES 1 ;;
  paper) ;;
  *) die2 "--preset must be fmnist, long, ci or paper (got '$PRESET')" ;;
esac

if [ "$PRESET" = paper ]; then
  # The paper's configuration needs an ImageNet-layout folder and the GPU path.
  [ -n "$DATA" ] || die2 "--preset paper needs --data DIR, an ImageNet-layout folder (DIR/train/CLASS/*.JPEG; docs/PAPER.md)"
  [ -d "$DATA/train" ] || die2 "--preset paper: '$DATA/train' is not a folder (expected the ImageNet layout DIR/train/CLASS/*.JPEG; docs/PAPER.md)"
  cat >&2 <<EOF
$ME: --preset paper: the configuration (docs/PAPER.md) is VA-VAE f16d32 latents of 256x256
  images, LightningDiT-B/1, Euler 250 steps, CFG 1.7 on t in [0.21, 1], 10k/50k samples,
  Inception FID. Not runnable yet: this tree lacks an image-folder encoder (issue 12), the
  DiT on the GPU (issue 11) and Inception features behind eval --model images (issue 12);
  nothing was run. docs/PAPER.md lists the commands once they exist.
EOF
  exit 1
fi

set_default SEEDS "$SEEDS_P"; posint --seeds "$SEEDS"
# tcp: every generation graph (4 per seed) gets its own 4+DECODERS ports.
if [ "$TRANSPORT" = tcp ]; then
  source pipelines/launch/ports.sh
  span=$(( SEEDS * 4 * (4 + DECODERS) ))
  [ "$span" -le 50000 ] || die2 "--transport tcp: $SEEDS seeds x 4 graphs x $(( 4 + DECODERS )) ports is $span ports, more than fit"
  [ -n "$PORT_BASE" ] || PORT_BASE=$(default_port_base "$span" $$)
  [ $(( PORT_BASE + span - 1 )) -le 65535 ] ||
    die2 "--port-base $PORT_BASE: this run needs ports up to $(( PORT_BASE + span - 1 )), past 65535"
  port_range_note "$ME" "$PORT_BASE" $(( PORT_BASE + span - 1 ))
fi
set_default DIT_PRESET tiny; set_default DIT_BATCH 64; set_default DIT_LR 1e-3; set_default CFG 1.7
set_default CFG_LO 0.21; set_default CFG_HI 1; set_default JOB_SIZE 64; set_default SCALES 0.5,1,2
set_default KL_BETA 1e-6; set_default VE_LAMBDA 1e-3; set_default TAU 3; set_default LAMBDA_REG 1
[ -n "$OUT" ] || OUT="runs/full-$PRESET"
DATA_ARGS=(); [ -n "$DATA" ] && DATA_ARGS=(--data "$DATA")

set_default CLASSIFIER_CMD bin/train; set_default REFSTATS_CMD bin/eval; set_default TOKENIZER_CMD bin/train
set_default TOKEVAL_CMD bin/eval; set_default PLOT_CMD bin/eval; set_default ENCODE_CMD bin/encode
set_default TRAIN_CMD bin/train; set_default LAUNCH_CMD pipelines/launch/gen.sh
set_default SOURCE_CMD bin/sample; set_default SAMPLE_CMD bin/sample; set_default DECODE_CMD bin/decode
set_default EVAL_CMD bin/eval; set_default REPORT_CMD "/usr/bin/python3 pipelines/full/report.py"
export SOURCE_CMD SAMPLE_CMD DECODE_CMD EVAL_CMD   # read by the launcher's ranks

# ---------------------------------------------------------------- setup
if [ "$DRY" = 0 ]; then
  # Fresh machine: missing Debian packages (or the command), then the stages.
  scripts/deps.sh || { echo "$ME: missing Debian packages (command above)" >&2; exit 1; }
  make -s -j"$(nproc)" bin/train bin/encode bin/sample bin/decode bin/eval >&2 ||
    { echo "$ME: build failed" >&2; exit 1; }
  fm=${DATA:-/usr/share/datasets/fashion-mnist}
  [ -d "$fm" ] || die2 "no Fashion-MNIST folder '$fm' (install dataset-fashion-mnist or give --data DIR)"
fi
# One thread per process: steps run their two arms side by side.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
mkdir -p "$OUT/.stamps" "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
[ -f "$OUT/commands.sh" ] || printf '#!/usr/bin/env bash\n# every command full.sh ran, in order (run from the repository root)\n' > "$OUT/commands.sh"
ARMS="kl ve"

# Children to stop if the pipeline is interrupted or a step fails.
PIDS=()
kill_tree() { local c; for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do kill_tree "$c"; done; kill "$1" 2>/dev/null || true; }
cleanup() { local p; for p in "${PIDS[@]}"; do kill_tree "$p"; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

source pipelines/full/steps.sh

# The budget, for the report.
[ "$DRY" = 1 ] || cat > "$OUT/config.json" <<EOF
{"preset": "$PRESET", "seeds": $SEEDS, "samplers": $SAMPLERS, "decoders": $DECODERS, "encoders": $ENCODERS,
 "transport": "$TRANSPORT", "cls_steps": $CLS_STEPS, "ref_n": $REF_N, "tok_steps": $TOK_STEPS,
 "tok_batch": $TOK_BATCH, "eval_n": $EVAL_N, "encode_n": $ENCODE_N, "dit_preset": "$DIT_PRESET",
 "dit_steps": $DIT_STEPS, "dit_batch": $DIT_BATCH, "dit_lr": "$DIT_LR", "n_samples": $N_SAMPLES,
 "sample_steps": $SAMPLE_STEPS, "cfg": "$CFG", "cfg_lo": "$CFG_LO", "cfg_hi": "$CFG_HI",
 "kl_beta": "$KL_BETA", "ve_lambda": "$VE_LAMBDA", "tau": "$TAU", "lambda_reg": "$LAMBDA_REG"}
EOF
T_START=$(date +%s)
echo "$ME: preset $PRESET, out $OUT, seeds $SEEDS, samplers $SAMPLERS, decoders $DECODERS, encoders $ENCODERS, transport $TRANSPORT"
[ -n "$FROM" ] && forget_from "$FROM"

step_classifier
step_tokenizer
step_tokeval
step_encode
step_dit
step_generate
step_report
echo "$ME: done in $(( $(date +%s) - T_START )) s; report: $OUT/report.md"
exit 0
}
