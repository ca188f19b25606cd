#!/bin/sh
# Runs libFuzzer targets: fuzz/run.sh SECONDS TARGET... (make fuzz, make fuzz-smoke).
# Each target runs SECONDS on its seeds (fuzz/corpus/TARGET, read only) and what earlier
# runs found (build/fuzz/corpus/TARGET, where new inputs go); a crash is saved under
# build/fuzz/artifacts/TARGET/ and the log is build/fuzz/logs/TARGET.log.
# Prints PASS/FAIL per target and, last, "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
secs=$1
shift
passed=0 failed=0
mkdir -p build/fuzz/logs
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" # a stack in the log
for t in "$@"; do
  corpus=build/fuzz/corpus/$t
  art=build/fuzz/artifacts/$t/
  log=build/fuzz/logs/$t.log
  mkdir -p "$corpus" "$art"
  opts="-max_total_time=$secs -print_final_stats=1 -timeout=30 -rss_limit_mb=2048 -artifact_prefix=$art"
  case $t in
  fuzz_request) opts="$opts -max_len=20000" ;;
  fuzz_meta_file) opts="$opts -max_len=16384" ;;
  *) opts="$opts -max_len=4096" ;;
  esac
  [ -f "fuzz/$t.dict" ] && opts="$opts -dict=fuzz/$t.dict"
  # shellcheck disable=SC2086
  "build/fuzz/$t" $opts "$corpus" "fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(grep -a 'stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
  if [ "$rc" -eq 0 ]; then
    echo "PASS $t: ${execs:-?} inputs in ${secs} s"
    passed=$((passed + 1))
  else
    echo "FAIL $t (exit $rc, log $log)"
    grep -a -E 'ERROR:|invariant failed|fuzz_request:|SUMMARY:|Test unit written to' "$log" | head -10 | sed 's/^/    /'
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
