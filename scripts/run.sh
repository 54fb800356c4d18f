#!/bin/sh
# The README's run command: installs what is missing, builds, makes a dev certificate
# if there is none, and runs the gateway on config/roomgate.json (or the config given).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
scripts/dev-cert.sh certs
exec build/roomgate --config "${1:-config/roomgate.json}"
