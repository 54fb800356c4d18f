#!/bin/sh
# Configures and builds into DIR (default build); extra arguments go to cmake.
# libwebsockets is the patched one scripts/lws.sh builds (once; then it is cached).
set -eu
dir=${1:-build}
[ $# -gt 0 ] && shift
lws=$(sh "$(dirname "$0")/lws.sh")
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRG_LWS_PREFIX="$lws" "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
