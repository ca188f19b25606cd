#!/bin/sh
# Installs the Debian packages resumed needs to build and test, only those missing.
# Usage: scripts/install-deps.sh [build|test]
set -eu
want="build-essential pkg-config libuv1-dev node-llhttp libssl-dev libcurl4-openssl-dev"
if [ "${1:-build}" = test ]; then
  want="$want curl python3 clang libclang-rt-14-dev valgrind groff-base" # clang + libclang-rt: libFuzzer
fi
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
