#!/bin/sh
# bench/run.sh - build resumed and the baselines, run both benchmarks, print a summary.
#
#   bench/upload1g.py   1 GiB streaming upload: resumed vs a minimal C sink (bench/sink.c),
#                       client bench/blast.c (sends from memory); targets: >= 0.85x sink,
#                       resumed peak RSS < 16 MiB
#   bench/slowconns.py  N=2000 concurrent slow uploads; targets: <= 4 KiB RSS per
#                       connection and every upload served (/status == bytes sent)
#   bench/client_vs_curl.py  1 GiB with build/resumed-upload and with curl -T to one
#                       server; target: the client's rate >= 0.9x curl's
#
# Not part of `make test`. Takes about 3 minutes. Environment knobs are passed through
# (NO_MAKE=1 skips make; ROUNDS, WARMUP, SIZE_MIB, DESTS, CLIENT, PIN, N, DURATION, ... see the two scripts).
# Exit status: 0 when every target held and nothing failed.
set -u
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
CC=${CC:-cc}
CFLAGS="-O2 -Wall -Wextra -Werror"

echo "== build"
if [ -z "${NO_MAKE:-}" ]; then
	make -C "$ROOT" >/dev/null || { echo "run.sh: 'make -C $ROOT' failed" >&2; exit 1; }
fi
mkdir -p "$BENCH/bin"
$CC $CFLAGS -o "$BENCH/bin/sink" "$BENCH/sink.c" || exit 1
$CC $CFLAGS -o "$BENCH/bin/blast" "$BENCH/blast.c" || exit 1
"${RESUMED_BIN:-$ROOT/build/resumed}" --version 2>/dev/null || true
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo), $(uname -r)"

OUT=$(mktemp -d "${TMPDIR:-/tmp}/resumed-bench-out.XXXXXX") || exit 1
child=
trap '[ -n "$child" ] && kill "$child" 2>/dev/null; rm -rf "$OUT"' EXIT
trap 'exit 130' INT TERM HUP

# run_logged FILE CMD...: run CMD with its output both shown and kept in $OUT/FILE;
# the benchmark scripts clean up their own servers when signalled.
run_logged() {
	f="$OUT/$1"
	shift
	: >"$f"
	"$@" >"$f" 2>&1 &
	child=$!
	tail -n +1 -f --pid="$child" "$f" &
	tailpid=$!
	wait "$child"
	rc=$?
	child=
	wait "$tailpid"
	return $rc
}

echo
echo "== upload1g.py (1 GiB upload, resumed vs sink)"
run_logged upload1g.txt python3 "$BENCH/upload1g.py"
rc1=$? # 1: a run failed or a server died (a missed target alone is 0)

echo
echo "== slowconns.py (concurrent slow uploads)"
run_logged slowconns.txt python3 "$BENCH/slowconns.py"
rc2=$? # 1: a target missed or not all served

echo
echo "== client_vs_curl.py (resumed-upload vs curl -T, 1 GiB)"
run_logged client_vs_curl.txt python3 "$BENCH/client_vs_curl.py" --rounds "${CLIENT_ROUNDS:-9}"
rc3=$? # 1: a run failed or an upload read back wrong (a missed target alone is 0)

echo
echo "== summary"
grep -E '^\| (dest|shm|disk) ' "$OUT/upload1g.txt"
grep -E '^\| (\*\*RSS per connection|VmRSS|Rss by|/status|early|connect/send)' "$OUT/slowconns.txt"
grep -E '^  [a-z]+: .*(PASS|MISS)|^  RSS per connection|^  all [0-9]+ served' \
	"$OUT/upload1g.txt" "$OUT/slowconns.txt" | sed "s|^$OUT/||"
grep -E '^\| (curl|resumed-upload) |per-round rate ratios' "$OUT/client_vs_curl.txt"
sed -n '/^## WARNINGS/,/^$/p' "$OUT/upload1g.txt"
[ "$rc1" = 0 ] || echo "upload1g.py: exit $rc1, runs FAILED (see ## FAILURES / errors above)"
[ "$rc2" = 0 ] || echo "slowconns.py: exit $rc2"
[ "$rc3" = 0 ] || echo "client_vs_curl.py: exit $rc3"
if grep -q 'MISS' "$OUT/upload1g.txt" "$OUT/slowconns.txt" "$OUT/client_vs_curl.txt" ||
	[ "$rc1" != 0 ] || [ "$rc2" != 0 ] || [ "$rc3" != 0 ]; then
	echo "RESULT: some target missed or a run failed"
	exit 1
fi
echo "RESULT: all targets held"
