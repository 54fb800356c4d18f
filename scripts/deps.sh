#!/bin/sh
# Installs the Debian bookworm packages roomgate needs: to build and run (default), or
# also to test (--test). Runs apt-get only for what is missing. Needs root.
# libwebsockets is not among them: scripts/lws.sh builds it from Debian's source package
# (dpkg-dev for apt-get source; libssl-dev, libev-dev, libcap-dev, zlib1g-dev for lws).
set -eu
pkgs="build-essential cmake pkg-config dpkg-dev libev-dev libssl-dev libcap-dev zlib1g-dev libjansson-dev uthash-dev libhiredis-dev openssl"
if [ "${1:-}" = "--test" ]; then
	pkgs="$pkgs python3 python3-websockets python3-h2 python3-jwt python3-cryptography curl sslscan chromium clang clang-format iproute2 util-linux prometheus jq redis-server"
	command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
	command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
fi
# shellcheck disable=SC2086
missing=$(sh "$(dirname "$0")/missing-pkgs.sh" $pkgs)
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	if [ "$(id -u)" != 0 ]; then
		echo "deps: need root to install packages (run as root, or install them yourself)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
echo "deps: all present"
