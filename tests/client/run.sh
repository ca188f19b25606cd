#!/bin/sh
# Black-box tests of the resumed-upload client against build/resumed, @tus/server
# (tests/tus-node) and the fault proxy (tests/tools/faultproxy.py).
# Usage (from anywhere): tests/client/run.sh [-v] [name-filter ...]
# Env: RESUMED_UPLOAD_BIN (default build/resumed-upload), RESUMED_BIN (default build/resumed);
#      both built with make if missing and not given.
# Exit status: that of tests/client/run.py (1 if a test failed).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
nodedir="$root/tests/tus-node"

if [ ! -f "$nodedir/node_modules/@tus/server/package.json" ]; then
    echo "run.sh: installing @tus/server + @tus/file-store (npm ci in tests/tus-node)" >&2
    (cd "$nodedir" && npm ci --no-audit --no-fund >&2)
fi

cd "$root"

if [ -z "${RESUMED_BIN:-}" ] && [ ! -x build/resumed ]; then
    echo "run.sh: building resumed (make)" >&2
    make build/resumed >&2
fi
if [ -z "${RESUMED_UPLOAD_BIN:-}" ] && [ ! -x build/resumed-upload ]; then
    echo "run.sh: building resumed-upload (make)" >&2
    make build/resumed-upload >&2
fi

exec python3 tests/client/run.py "$@"
