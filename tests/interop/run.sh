#!/bin/sh
# Interop tests: the official tus-js-client (Node.js) against build/resumed's tus endpoint.
# Usage (from anywhere): tests/interop/run.sh
# Env: RESUMED_BIN (default build/resumed, built with make if missing).
# Exit status: that of `node --test`.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ ! -d "$here/node_modules/tus-js-client" ]; then
    echo "run.sh: installing tus-js-client (npm ci)" >&2
    (cd "$here" && npm ci --no-audit --no-fund)
fi

cd "$root"

if [ -z "${RESUMED_BIN:-}" ] && [ ! -x build/resumed ]; then
    echo "run.sh: building resumed (make)" >&2
    make
fi

status=0
node --test tests/interop/ || status=$?
exit "$status"
