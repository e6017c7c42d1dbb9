# pipelines/full/steps.sh: the steps of pipelines/full.sh (sourced by it; uses
# its variables: OUT, the budgets, the *_CMD programs, ARMS, SEEDS, ...).
#
# Skipping finished work. Every unit of work (a step for one arm and seed)
# has a stamp OUT/.stamps/UNIT holding "key K" and the sha256 of its outputs.
# K is the sha256 of the unit's command and of the stamps of the units it
# reads, so a redone tokenizer changes the key of its cache, whose new hash
# changes the key of its DiT, and so on. A unit is skipped when its stamp's
# key is K and every recorded output still has its hash. While a unit runs,
# OUT/.stamps/UNIT.pending holds K: finding it with the same K means the unit
# was interrupted, and it resumes (training from its checkpoint, encoding
# from the missing images); any other state starts the unit from scratch.

STAMPS="$OUT/.stamps"
RESUME=0 KEYMODE=0

# unit_key TEXT DEP_UNITS... -> prints the key.
unit_key() {
  local text=$1 d; shift
  { printf '%s\n' "$text"; for d in "$@"; do cat "$STAMPS/$d" 2>/dev/null || echo "missing $d"; done; } |
    sha256sum | cut -d' ' -f1
}

# unit_fresh UNIT KEY: 0 when the stamp says UNIT is done with KEY and its
# outputs still hash as recorded.
unit_fresh() {
  local s="$STAMPS/$1"
  [ -f "$s" ] && [ "$(head -n 1 "$s")" = "key $2" ] &&
    (cd "$OUT" && tail -n +2 "$s" | sha256sum --check --status) 2>/dev/null
}

# unit_start UNIT KEY: 0 = resume (interrupted with the same key), 1 = start
# from scratch. Records KEY as pending either way.
unit_start() {
  local p="$STAMPS/$1.pending" r=1
  [ -f "$p" ] && [ "$(cat "$p")" = "$2" ] && r=0
  rm -f "$STAMPS/$1"
  echo "$2" > "$p"
  return $r
}

# unit_done UNIT KEY FILES... (relative to OUT): writes the stamp.
unit_done() {
  local u=$1 k=$2; shift 2
  { echo "key $k"; (cd "$OUT" && sha256sum "$@"); } > "$STAMPS/$u.tmp"
  mv "$STAMPS/$u.tmp" "$STAMPS/$u"
  rm -f "$STAMPS/$u.pending"
}

# forget_from STEP: drop the stamps of STEP and every later step, so they run
# again from scratch.
forget_from() {
  local s on=0
  for s in $STEPS_ALL; do
    [ "$s" = "$1" ] && on=1
    [ $on = 1 ] && rm -f "$STAMPS/$s" "$STAMPS/$s".* "$STAMPS/$s"-*
  done
  echo "$ME: --from $1: redoing $1 and every later step"
}

# show CMD...: the command as it can be pasted into a shell.
show() { local q; printf -v q '%q ' "$@"; echo "${q% }"; }

# run LOG CMD...: prints the command, appends it to OUT/commands.sh, runs it
# with stdout+stderr into LOG. Nonzero: says which log to read.
run() {
  local log=$1; shift
  local line; line=$(show "$@")
  echo "+ $line"
  [ "$DRY" = 1 ] && return 0
  echo "$line" >> "$OUT/commands.sh"
  "$@" > "$log" 2>&1 || { local rc=$?; echo "$ME: failed (rc $rc): $line; log: $log" >&2; tail -n 5 "$log" >&2; return $rc; }
}

# words VAR: the program words of a *_CMD variable, into the array W.
words() { read -r -a W <<< "${!1}"; }

# timing UNIT SECONDS: one line per unit run, with the load average.
timing() { printf '%s\t%s\t%s\n' "$1" "$2" "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/timings.tsv"; }

# unit UNIT "DEPS" "OUTPUTS" FUNCTION ARGS...: runs FUNCTION ARGS (which runs
# the commands; RESUME is 1 when resuming) unless the unit is fresh. The key
# text is FUNCTION's commands printed in dry mode.
unit() {
  local u=$1 deps=$2 outs=$3; shift 3
  local text key t0
  text=$(DRY=1 RESUME=0 KEYMODE=1 "$@" | grep '^+ ' || true)
  # shellcheck disable=SC2086
  key=$(unit_key "$text" $deps)
  if [ "$DRY" = 1 ]; then "$@"; return 0; fi
  if unit_fresh "$u" "$key"; then echo "$ME: $u: done before (hashes match), skipped"; return 0; fi
  if unit_start "$u" "$key"; then RESUME=1; echo "$ME: $u: resuming an interrupted run"; else RESUME=0; fi
  t0=$(date +%s)
  "$@" || return 1
  timing "$u" $(( $(date +%s) - t0 ))
  # shellcheck disable=SC2086
  unit_done "$u" "$key" $outs
}

# both FUNC ARGS...: FUNC kl ARGS and FUNC ve ARGS side by side; fails if either does.
both() {
  local f=$1; shift
  if [ "$DRY" = 1 ]; then "$f" kl "$@"; "$f" ve "$@"; return 0; fi
  local pk pv rk=0 rv=0
  "$f" kl "$@" & pk=$!; PIDS+=("$pk")
  "$f" ve "$@" & pv=$!; PIDS+=("$pv")
  wait "$pk" || rk=$?
  wait "$pv" || rv=$?
  [ $rk = 0 ] && [ $rv = 0 ] || { echo "$ME: a step failed (kl rc $rk, ve rc $rv)" >&2; exit 1; }
}

CLS="$OUT/classifier/classifier.safetensors"
REF="$OUT/classifier/ref-stats.safetensors"

# ---------------------------------------------------------------- classifier
do_classifier() {
  [ "$DRY" = 1 ] || { rm -rf "$OUT/classifier"; mkdir -p "$OUT/classifier"; }
  # The shipped feature network (weights/README.md) unless CLASSIFIER names
  # another file, or is "train": then this run trains its own (CLS_STEPS).
  local src=${CLASSIFIER:-weights/fmnist-classifier.safetensors}
  if [ "$src" != train ]; then run "$OUT/logs/classifier.log" cp "$src" "$CLS"; return; fi
  words CLASSIFIER_CMD; W+=(--model classifier)
  OMP_NUM_THREADS=2 run "$OUT/logs/classifier.log" "${W[@]}" --out "$OUT/classifier" --steps "$CLS_STEPS" \
    --test-n "${CLS_TEST_N:-2000}" "${DATA_ARGS[@]}"
}
do_refstats() {
  words REFSTATS_CMD; W+=(--model images)
  OMP_NUM_THREADS=2 run "$OUT/logs/refstats.log" "${W[@]}" --classifier "$CLS" --ref-stats "$REF" \
    --data fashion-mnist --n-ref "$REF_N" ${DATA:+--data-dir "$DATA"}
}
step_classifier() {
  unit classifier "" "classifier/classifier.safetensors" do_classifier
  unit classifier-ref "classifier" "classifier/ref-stats.safetensors" do_refstats
}

# ---------------------------------------------------------------- tokenizer
tok_flags() {
  if [ "$1" = kl ]; then echo "--reg kl --beta $KL_BETA"
  else echo "--reg ve --lambda-ve $VE_LAMBDA --tau $TAU --lambda-reg $LAMBDA_REG --mag global"; fi
}
do_tokenizer() {
  local arm=$1 dir="$OUT/tok-$1" reuse_var; reuse_var="${1^^}_TOK"
  if [ -n "${!reuse_var:-}" ]; then
    [ "$DRY" = 1 ] || { rm -rf "$dir"; mkdir -p "$dir"; }
    run "$OUT/logs/tokenizer-$arm.log" cp "${!reuse_var}.safetensors" "$dir/vae.safetensors"; return
  fi
  local resume=()
  if [ "$RESUME" = 1 ] && [ -f "$dir/vae.safetensors" ]; then resume=(--resume)
  elif [ "$DRY" = 0 ]; then rm -rf "$dir"; fi
  words TOKENIZER_CMD; W+=(--model vae)
  # shellcheck disable=SC2046
  run "$OUT/logs/tokenizer-$arm.log" "${W[@]}" $(tok_flags "$arm") --steps "$TOK_STEPS" --batch "$TOK_BATCH" \
    --ckpt-every 200 --out "$dir" "${DATA_ARGS[@]}" "${resume[@]}"
}
tokenizer_arm() { unit "tokenizer-$1" "" "tok-$1/vae.safetensors" do_tokenizer "$1"; }
step_tokenizer() { both tokenizer_arm; }

# ---------------------------------------------------------------- tokeval
do_tokeval() {
  words TOKEVAL_CMD; W+=(--model vae)
  run "$OUT/logs/tokeval-$1.log" "${W[@]}" --ckpt "$OUT/tok-$1/vae" --out "$OUT/tok-$1/eval" --n "$EVAL_N" \
    --scales "$SCALES" --classifier "$CLS" "${DATA_ARGS[@]}"
}
tokeval_arm() { unit "tokeval-$1" "tokenizer-$1 classifier" "tok-$1/eval/report.json" do_tokeval "$1"; }
do_robustness() {
  words PLOT_CMD; W+=(--model vae)
  run "$OUT/logs/robustness.log" "${W[@]}" --plot-robustness "$OUT/robustness.png" \
    --labels "KL $KL_BETA,VE $VE_LAMBDA" "$OUT/tok-kl/eval/report.json" "$OUT/tok-ve/eval/report.json"
}
step_tokeval() {
  both tokeval_arm
  unit tokeval-robustness "tokeval-kl tokeval-ve" "robustness.png" do_robustness
}

# ---------------------------------------------------------------- encode
do_encode() {
  local arm=$1 store="$OUT/cache-$1" k a b pids=() rc=0
  [ "$RESUME" = 1 ] || [ "$DRY" = 1 ] || rm -rf "$store"
  words ENCODE_CMD; W+=(--model vae)
  local common=(--ckpt "$OUT/tok-$arm/vae" --store "$store" --batch 64 "${DATA_ARGS[@]}")
  if [ "$ENCODERS" -gt 1 ]; then
    for ((k = 0; k < ENCODERS; k++)); do
      a=$(( ENCODE_N * k / ENCODERS )); b=$(( ENCODE_N * (k + 1) / ENCODERS ))
      if [ "$DRY" = 1 ]; then run - "${W[@]}" "${common[@]}" --first "$a" --end "$b"; continue; fi
      run "$OUT/logs/encode-$arm-$k.log" "${W[@]}" "${common[@]}" --first "$a" --end "$b" &
      pids+=($!)
    done
    for k in "${pids[@]}"; do wait "$k" || rc=1; done
    [ $rc = 0 ] || return 1
  fi
  # One process over the whole range: encodes what is missing (everything
  # when ENCODERS is 1), then the latent statistics.
  run "$OUT/logs/encode-$arm.log" "${W[@]}" "${common[@]}" --first 0 --end "$ENCODE_N" \
    --stats --stats-n $(( ENCODE_N < 10000 ? ENCODE_N : 10000 ))
}
encode_arm() { unit "encode-$1" "tokenizer-$1" "cache-$1/data.mdb" do_encode "$1"; }
step_encode() { both encode_arm; }

# ---------------------------------------------------------------- dit
do_dit() {
  local arm=$1 seed=$2 dir="$OUT/dit-$1-s$2" resume=()
  if [ "$RESUME" = 1 ] && [ -f "$dir/dit.safetensors" ]; then resume=(--resume)
  elif [ "$DRY" = 0 ]; then rm -rf "$dir"; fi
  words TRAIN_CMD; W+=(--model dit)
  run "$OUT/logs/dit-$arm-s$seed.log" "${W[@]}" --preset "$DIT_PRESET" --store "$OUT/cache-$arm" --out "$dir" \
    --tokenizer "$OUT/tok-$arm/vae" --batch "$DIT_BATCH" --steps "$DIT_STEPS" --lr "$DIT_LR" --warmup "${DIT_WARMUP:-100}" \
    --ema-halflife "${DIT_EMA_HALFLIFE:-200}" --seed "$seed" --ckpt-every 500 --sample-every "$DIT_STEPS" \
    "${resume[@]}"
}
dit_arm() {
  unit "dit-$1-s$2" "encode-$1 tokenizer-$1" "dit-$1-s$2/dit.safetensors dit-$1-s$2/dit-ema.safetensors" \
    do_dit "$1" "$2"
}
step_dit() { local s; for ((s = 0; s < SEEDS; s++)); do both dit_arm "$s"; done; }

# ---------------------------------------------------------------- generate
GRAPH_NO=0
# gen_graph DIR TOK STORE CKPT SEED TITLE SAMPLER_FLAGS...: one generation run
# (job source -> SAMPLERS sample workers -> DECODERS decoders -> eval sink),
# started by the launcher pipelines/launch/gen.sh (LAUNCH_CMD; local
# processes, or mpirun/slurm with --launcher), logs in DIR/logs.
gen_graph() {
  local dir=$1 tok=$2 store=$3 ckpt=$4 seed=$5 title=$6; shift 6
  local a env=(env) i
  a=(--dit "$ckpt" --tokenizer "$tok" --store "$store" --out "$dir" --n "$N_SAMPLES" --job-size "$JOB_SIZE"
     --seed "$seed" --samplers "$SAMPLERS" --decoders "$DECODERS" --launcher "$LAUNCHER"
     --source-args "--deadline-ms $DEADLINE_MS" --sample-args "$*"
     --eval-args "--classifier $CLS --ref-stats $REF --title $title --timeout-s 900")
  [ "$LAUNCHER" = local ] && a+=(--transport "$TRANSPORT")
  [ -n "$HOSTS" ] && a+=(--hosts "$HOSTS")
  [ -n "$HOSTFILE" ] && a+=(--hostfile "$HOSTFILE")
  if [ "$TRANSPORT" = tcp ] || [ "$LAUNCHER" != local ]; then
    # a fresh port range per graph (PORT_BASE: full.sh's setup), so a late socket of one never meets the next
    local pb=$(( PORT_BASE + GRAPH_NO * (4 + DECODERS) ))
    [ "$KEYMODE" = 1 ] && pb=PORT   # keys do not depend on ports
    a+=(--port-base "$pb")
  fi
  if [ "$KILL" = 1 ]; then
    # Sampler 0 runs alone until it has died holding its first job
    # (--die-after 1); only then do the others start (pipelines/full/kill_first.sh).
    env+=("SAMPLE_CMD_0=pipelines/full/kill_first.sh victim $dir/victim.done $SAMPLE_CMD")
    for ((i = 1; i < SAMPLERS; i++)); do
      env+=("SAMPLE_CMD_$i=pipelines/full/kill_first.sh wait $dir/victim.done $SAMPLE_CMD")
    done
  fi
  [ "$DRY" = 1 ] || rm -rf "$dir"
  words LAUNCH_CMD
  GRAPH_NO=$(( GRAPH_NO + 1 ))
  run "$OUT/logs/$(basename "$dir").log" "${env[@]}" "${W[@]}" "${a[@]}"
}

do_generate() {
  local arm=$1 seed=$2 mode=$3 g=()
  g=(--steps "$SAMPLE_STEPS" --batch 32)
  [ "$mode" = cfg ] && g+=(--cfg "$CFG" --cfg-lo "$CFG_LO" --cfg-hi "$CFG_HI")
  gen_graph "$OUT/gen-$arm-s$seed-$mode" "$OUT/tok-$arm/vae" "$OUT/cache-$arm" \
    "$OUT/dit-$arm-s$seed/dit.safetensors" "$seed" "$arm-s$seed-$mode" "${g[@]}"
}
step_generate() {
  local s arm mode d
  for ((s = 0; s < SEEDS; s++)); do
    for arm in $ARMS; do
      for mode in nocfg cfg; do
        d="gen-$arm-s$s-$mode"
        unit "generate-$arm-s$s-$mode" "dit-$arm-s$s encode-$arm tokenizer-$arm classifier-ref" \
          "$d/samples.npz $d/report.json" do_generate "$arm" "$s" "$mode" || exit 1
      done
    done
  done
}

# ---------------------------------------------------------------- report
do_report() {
  words REPORT_CMD
  run "$OUT/logs/report.log" "${W[@]}" "$OUT" --preset "$PRESET" --seeds "$SEEDS"
}
step_report() {
  local deps="tokeval-kl tokeval-ve" s arm mode
  for ((s = 0; s < SEEDS; s++)); do for arm in $ARMS; do for mode in nocfg cfg; do
    deps="$deps generate-$arm-s$s-$mode"; done; done; done
  unit report "$deps" "report.json report.md" do_report || exit 1
  [ "$DRY" = 1 ] || cat "$OUT/report.md"
}
