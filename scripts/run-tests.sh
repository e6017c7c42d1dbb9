#!/usr/bin/env bash
# Runs every Criterion test binary (and, unless --no-asan, the sanitizer
# builds of the bus/store/checkpoint tests), then prints one summary line
# "N passed, N failed" summed over all of them. Exit status 1 on any failure.
# Run from the repository root (tests read build/ref/ and tests/fixtures/).
set -u
cd "$(dirname "$0")/.."
asan=1; filters=()
for a in "$@"; do
  case "$a" in
    --no-asan) asan=0 ;;
    *) filters+=("$a") ;;   # run the binaries whose path holds any of these
  esac
done
bins=$(find build/tests -type f -name 'test_*' -perm -u+x 2>/dev/null | sort)
[ $asan -eq 1 ] && bins="$bins $(find build/asan/tests -type f -name 'test_*' -perm -u+x 2>/dev/null | sort)"
passed=0; failed=0; bad_bins=""
# Idle OpenMP threads spin by default, which starves the other test
# processes on a 2-core machine.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for b in $bins; do
  if [ ${#filters[@]} -gt 0 ]; then
    hit=0
    for f in "${filters[@]}"; do [[ "$b" == *"$f"* ]] && hit=1; done
    [ $hit -eq 1 ] || continue
  fi
  log=$(mktemp)
  start=$(date +%s)
  "$b" --jobs 2 >"$log" 2>&1 </dev/null; rc=$?
  dt=$(( $(date +%s) - start ))
  syn=$(grep -a 'Synthesis:' "$log" | tail -n 1)
  t=$(sed -n 's/.*Tested: *\([0-9]*\).*/\1/p' <<<"$syn"); p=$(sed -n 's/.*Passing: *\([0-9]*\).*/\1/p' <<<"$syn")
  t=${t:-0}; p=${p:-0}
  f=$(( t - p ))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before the summary
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -ne 0 ]; then
    bad_bins="$bad_bins $b"
    echo "FAIL $b (${dt}s)"; grep -a -v '^\[----\] *$' "$log" | tail -n 40
  else
    printf 'ok   %-50s %3d tests %4ds\n' "$b" "$p" "$dt"
  fi
  rm -f "$log"
done
[ -n "$bad_bins" ] && echo "failing binaries:$bad_bins"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
