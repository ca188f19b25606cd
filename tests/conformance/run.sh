#!/bin/sh
# Conformance suite against a freshly started resumed.
#
# Builds build/resumed (make -C <repo>), starts it on a free port with a temporary store
# (--expire-after 3600 --max-size 1G so the expiration and size-limit rows run, --sync-interval 64K
# so that appends of a few hundred KiB reach durable points and report them in 104s, --body-timeout 3
# so the timeout row TUS-038 can be observed), runs conformance.py against
# http://127.0.0.1:PORT/files/, then stops the server by its PID and removes the temp dir.
#
# Usage: tests/conformance/run.sh [conformance.py options, e.g. --only tus, -k TUS-03, -v]
# Env:   RESUMED_BIN  server binary to use instead of building build/resumed
# Exit:  that of conformance.py (1 if a MUST row failed), 2 if the server could not be started.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ -n "${RESUMED_BIN:-}" ]; then
    case $RESUMED_BIN in
        /*) bin=$RESUMED_BIN ;;
        *) if [ -e "$RESUMED_BIN" ]; then bin=$(pwd)/$RESUMED_BIN; else bin=$root/$RESUMED_BIN; fi ;;
    esac
else
    make -C "$root" >&2 || { echo "run.sh: make failed" >&2; exit 2; }
    bin=$root/build/resumed
fi
[ -x "$bin" ] || { echo "run.sh: no server binary at $bin" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/resumed-conformance.XXXXXX") || exit 2
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$tmp/data"
"$bin" --listen 127.0.0.1:0 --dir "$tmp/data" --expire-after 3600 --max-size 1G --sync-interval 64K \
    --body-timeout 3 --quiet 2>"$tmp/stderr" &
pid=$!

port=
i=0
while [ $i -lt 100 ]; do
    port=$(sed -n 's|.*resumed: listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$tmp/stderr" | head -n 1)
    [ -n "$port" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: resumed exited before listening:" >&2
        cat "$tmp/stderr" >&2
        pid=
        exit 2
    fi
    sleep 0.1
    i=$((i + 1))
done
if [ -z "$port" ]; then
    echo "run.sh: resumed did not print its listening address within 10 s" >&2
    exit 2
fi

python3 "$here/conformance.py" --wait-timeouts 10 "$@" "http://127.0.0.1:$port/files/"
status=$?

if ! kill -0 "$pid" 2>/dev/null; then
    echo "run.sh: resumed is no longer running; its stderr:" >&2
    tail -n 40 "$tmp/stderr" >&2
    pid=
    [ "$status" -ne 0 ] || status=1
fi
exit "$status"
