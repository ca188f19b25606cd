#!/bin/bash
# Runs every test suite: C unit tests and the black-box suite against the
# normal build and again against the ASan+UBSan build, the tus/IETF conformance
# suite (and its self-test: every row fails against a server that breaks it),
# then tus-js-client, the command-line client, web/uploader.js's unit tests (Node) and the
# browser tests.
# Prints one line per suite and, last, the totals as "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0 broken=""
log_dir=build/test-logs
mkdir -p "$log_dir"

# Reads "N passed, N failed" (ours) or node's TAP "# pass N" / "# fail N".
tally() { # name logfile exit_code
  local line p f
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$2" | tail -1)
  if [ -z "$line" ] && grep -qE '^# pass [0-9]+' "$2"; then
    line="$(grep -E '^# pass [0-9]+' "$2" | tail -1 | awk '{print $3}') passed, $(grep -E '^# fail [0-9]+' "$2" | tail -1 | awk '{print $3}') failed"
  fi
  if [ -z "$line" ]; then
    echo "  $1: no result line (exit $3); see $2"
    failed=$((failed + 1)); broken="$broken $1"; return
  fi
  p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -gt 0 ] || [ "$3" -ne 0 ]; then
    broken="$broken $1"
    [ "$f" -gt 0 ] || failed=$((failed + 1))
    grep -E '^(FAIL|not ok)|^ *not ok' "$2" | sed 's/^/    /' | head -40
  fi
  echo "  $1: $line"
}

run_suite() { # name command...
  local name=$1 logf="$log_dir/${1//\//-}.log" rc
  shift
  echo "== $name"
  "$@" >"$logf" 2>&1
  rc=$?
  tally "$name" "$logf" "$rc"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

for t in build/unit/test_*; do run_suite "unit/$(basename "$t")" "$t"; done
for t in build/asan/unit/test_*; do run_suite "asan-unit/$(basename "$t")" "$t"; done
# libFuzzer targets (fuzz/README.md), built with clang, a few seconds each
run_suite fuzz-smoke make --no-print-directory fuzz-smoke
RESUMED_BIN=build/resumed run_suite blackbox python3 tests/blackbox/run.py
RESUMED_BIN=build/asan/resumed run_suite blackbox-asan python3 tests/blackbox/run.py
RESUMED_BIN=build/resumed run_suite conformance tests/conformance/run.sh
run_suite conformance-selftest python3 tests/conformance/selftest.py
RESUMED_BIN=build/resumed run_suite interop tests/interop/run.sh
# kill -9 / power-loss trials, short (make crash-trials N=50 is the long run); the plain build:
# the synctrack shim cannot be preloaded into the ASan one
RESUMED_BIN=build/resumed run_suite crash-trials sh -c \
  'make -s build/tools/synctrack.so && python3 tests/crash/trials.py --both --selftest --trials 3'
RESUMED_BIN=build/resumed RESUMED_UPLOAD_BIN=build/asan/resumed-upload run_suite client tests/client/run.sh
run_suite web-unit node --test tests/web/
RESUMED_BIN=build/resumed run_suite browser tests/browser/run.sh

echo
[ -z "$broken" ] || echo "failing suites:$broken"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
