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
  if [ -n "${CLASSIFIER:-}" ]; then run "$OUT/logs/classifier.log" cp "$CLASSIFIER" "$CLS"; return; fi
  words CLASSIFIER_CMD
  OMP_NUM_THREADS=2 run "$OUT/logs/classifier.log" "${W[@]}" --out "$OUT/classifier" --steps "$CLS_STEPS" \
    --test-n "${CLS_TEST_N:-2000}" "${DATA_ARGS[@]}"
}
do_refstats() {
  words REFSTATS_CMD
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
  words TOKENIZER_CMD
  # shellcheck disable=SC2046
  run "$OUT/logs/tokenizer-$arm.log" "${W[@]}" $(tok_flags "$arm") --steps "$TOK_STEPS" --batch "$TOK_BATCH" \
    --ckpt-every 200 --out "$dir" "${DATA_ARGS[@]}" "${resume[@]}"
}
tokenizer_arm() { unit "tokenizer-$1" "" "tok-$1/vae.safetensors" do_tokenizer "$1"; }
step_tokenizer() { both tokenizer_arm; }

# ---------------------------------------------------------------- tokeval
do_tokeval() {
  words TOKEVAL_CMD
  run "$OUT/logs/tokeval-$1.log" "${W[@]}" --ckpt "$OUT/tok-$1/vae" --out "$OUT/tok-$1/eval" --n "$EVAL_N" \
    --scales "$SCALES" --classifier "$CLS" "${DATA_ARGS[@]}"
}
tokeval_arm() { unit "tokeval-$1" "tokenizer-$1 classifier" "tok-$1/eval/report.json" do_tokeval "$1"; }
do_robustness() {
  words PLOT_CMD
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
  words ENCODE_CMD
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
  words TRAIN_CMD
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
# endpoints NAME: prints the endpoint of socket NAME for this graph.
endpoint() {
  if [ "${KEYMODE:-0}" = 1 ]; then echo "EP:$1"; return; fi   # keys do not depend on ports
  if [ "$TRANSPORT" = ipc ]; then echo "ipc://$SOCK/$1"; return; fi
  local i
  case "$1" in jobs) i=0 ;; acks) i=1 ;; ctl) i=2 ;; img) i=3 ;; lat*) i=$(( 4 + ${1#lat} )) ;; esac
  echo "tcp://127.0.0.1:$(( PORT_BASE + GRAPH_NO * (4 + DECODERS) + i ))"
}

# gen_graph DIR TOK STORE CKPT SEED TITLE SAMPLER_FLAGS...: one generation run
# (job source -> SAMPLERS sample workers -> DECODERS decoders -> eval sink) as
# local processes, logs in DIR/logs. The whole graph lives in this function,
# so placing it elsewhere (pipelines/launch/) is a change here only.
gen_graph() {
  local dir=$1 tok=$2 store=$3 ckpt=$4 seed=$5 title=$6; shift 6
  local sflags=("$@") i lats=() pids=() names=() p rc=0 failed=""
  SOCK=""
  if [ "$TRANSPORT" = ipc ] && [ "$DRY" = 0 ]; then SOCK=$(mktemp -d /tmp/vel-full.XXXXXX); fi
  [ "$TRANSPORT" = ipc ] && [ "$DRY" = 1 ] && SOCK=SOCKDIR
  [ -n "$PORT_BASE" ] || PORT_BASE=$(( 20000 + ($$ * 7919) % 30000 ))
  for ((i = 0; i < DECODERS; i++)); do lats+=("$(endpoint "lat$i")"); done
  local jobs acks ctl img lat_list
  jobs=$(endpoint jobs); acks=$(endpoint acks); ctl=$(endpoint ctl); img=$(endpoint img)
  lat_list=$(IFS=,; echo "${lats[*]}")
  [ "$DRY" = 1 ] || { rm -rf "$dir"; mkdir -p "$dir/logs"; }
  # start NAME CMD...: one process of the graph in the background.
  start() {
    local name=$1; shift
    echo "+ $(show "$@") &"
    [ "$DRY" = 1 ] && return 0
    echo "$(show "$@") &" >> "$OUT/commands.sh"
    "$@" > "$dir/logs/$name.log" 2>&1 &
    pids+=($!); names+=("$name"); PIDS+=($!)
  }
  words EVAL_CMD
  start eval "${W[@]}" --in "$img" --ctl "$ctl" --acks "$acks" --out "$dir" --classifier "$CLS" \
    --ref-stats "$REF" --title "$title" --timeout-s 900
  words DECODE_CMD
  for ((i = 0; i < DECODERS; i++)); do
    start "decode$i" "${W[@]}" --ckpt "$tok" --store "$store" --in "${lats[$i]}" --ctl "$ctl" --reply "$img"
  done
  words SOURCE_CMD
  start source "${W[@]}" --n "$N_SAMPLES" --job-size "$JOB_SIZE" --seed "$seed" --ckpt "$ckpt" \
    --jobs-bind "$jobs" --acks-bind "$acks" --ctl-bind "$ctl" --deadline-ms "$DEADLINE_MS"
  words SAMPLE_CMD
  local first=0
  if [ "$KILL" = 1 ]; then
    # Sampler 0 alone first, so it surely takes a job, and dies holding it.
    start sample0 "${W[@]}" --ckpt "$ckpt" "${sflags[@]}" --jobs "$jobs" --ctl "$ctl" --out "$lat_list" \
      --die-after 1
    if [ "$DRY" = 0 ]; then
      wait "${pids[-1]}" && { echo "$ME: --kill-sampler: sampler 0 did not die" >&2; rc=1; }
      unset 'pids[-1]' 'names[-1]'
    fi
    first=1
  fi
  for ((i = first; i < SAMPLERS; i++)); do
    start "sample$i" "${W[@]}" --ckpt "$ckpt" "${sflags[@]}" --jobs "$jobs" --ctl "$ctl" --out "$lat_list"
  done
  GRAPH_NO=$(( GRAPH_NO + 1 ))
  [ "$DRY" = 1 ] && return 0
  # Wait for every process; on the first failure stop the rest.
  local left=${#pids[@]}
  while [ "$left" -gt 0 ] && [ $rc = 0 ]; do
    left=0
    for i in "${!pids[@]}"; do
      p=${pids[$i]}
      if kill -0 "$p" 2>/dev/null; then left=$((left + 1)); continue; fi
      wait "$p" || { rc=$?; failed="${names[$i]}"; }
      unset "pids[$i]"
    done
    [ "$left" -gt 0 ] && sleep 0.2
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$SOCK" ] && [ "$TRANSPORT" = ipc ] && rm -rf "$SOCK"
  if [ $rc != 0 ]; then
    echo "$ME: generation $title failed${failed:+ ($failed rc $rc, log $dir/logs/$failed.log)}" >&2
    [ -n "$failed" ] && tail -n 5 "$dir/logs/$failed.log" >&2
    return 1
  fi
}

do_generate() {
  local arm=$1 seed=$2 mode=$3 g=()
  g=(--steps "$SAMPLE_STEPS" --batch 32)
  [ "$mode" = cfg ] && g+=(--cfg "$CFG" --cfg-lo "$CFG_LO" --cfg-hi "$CFG_HI")
  gen_graph "$OUT/gen-$arm-s$seed-$mode" "$OUT/tok-$arm/vae" "$OUT/cache-$arm" \
    "$OUT/dit-$arm-s$seed/dit.safetensors" "$seed" "$arm seed $seed $mode" "${g[@]}"
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
