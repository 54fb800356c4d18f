#!/bin/sh
# The README's run command: installs what is missing, builds, makes a dev certificate
# and dev credentials (a token signing key, an API key) if there are none, and runs the
# gateway on config/roomgate.json (or the config given).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
scripts/dev-cert.sh certs
scripts/dev-auth.sh certs
exec build/roomgate --config "${1:-config/roomgate.json}"
