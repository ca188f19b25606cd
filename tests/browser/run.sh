#!/bin/sh
# Real-browser tests: installs what is missing, then runs them.
# Usage (from the repository root): tests/browser/run.sh
# Env: RESUMED_BIN (default build/resumed, built with make if missing),
#      CHROMIUM (default /usr/bin/chromium), NGINX (default /usr/sbin/nginx),
#      RESUMED_SEED (default ../shared/seed/...).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
    echo "run.sh: installing chromium (apt-get)" >&2
    sudo=
    if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

if [ -z "${NGINX:-}" ] && [ ! -x /usr/sbin/nginx ]; then
    # Debian enables its own nginx service on install; the tests start theirs (nginxlib.mjs).
    echo "run.sh: installing nginx (apt-get)" >&2
    sudo=
    if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y nginx
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
