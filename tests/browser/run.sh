#!/bin/sh
# Real-browser tests: installs what is missing, then runs them.
# Usage (from the repository root): tests/browser/run.sh
# Env: RESUMED_BIN (default build/resumed, built with make if missing),
#      CHROMIUM (default /usr/bin/chromium), NGINX (default /usr/sbin/nginx),
#      RESUMED_SEED (default ../shared/seed/...).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# Debian's packages, only those missing, in one apt-get run. (Installing nginx also enables
# Debian's own nginx service; the tests start theirs, nginxlib.mjs.)
missing=
[ -n "${CHROMIUM:-}" ] || [ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -n "${NGINX:-}" ] || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
if [ -n "$missing" ]; then
    echo "run.sh: installing$missing (apt-get)" >&2
    sudo=
    if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
    $sudo apt-get update
    # shellcheck disable=SC2086 # one word per package
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
fi

if [ ! -d "$here/node_modules/playwright-core" ] || [ ! -d "$here/node_modules/uppy" ]; then
    echo "run.sh: installing playwright-core and uppy (npm ci)" >&2
    (cd "$here" && npm ci --no-audit --no-fund)
fi

cd "$root"

if [ -z "${RESUMED_BIN:-}" ] && [ ! -x build/resumed ]; then
    echo "run.sh: building resumed (make)" >&2
    make
fi

status=0
node --test tests/browser/ || status=$?
exit "$status"
