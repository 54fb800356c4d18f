#!/bin/sh
# Makes a self-signed certificate for local development: DIR/dev.crt and DIR/dev.key
# (default DIR: certs). Never use it in production; never commit the key. ECDSA P-256,
# as the container's entrypoint makes and as ACME clients issue by default: its
# handshakes cost the server a fraction of RSA-2048's (bench/RESULTS.md).
set -eu
dir=${1:-certs}
mkdir -p "$dir"
if [ -s "$dir/dev.crt" ] && [ -s "$dir/dev.key" ]; then
	echo "dev-cert: $dir/dev.crt and $dir/dev.key exist, keeping them"
	exit 0
fi
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
	-keyout "$dir/dev.key" -out "$dir/dev.crt" 2>/dev/null
chmod 644 "$dir/dev.crt"
echo "dev-cert: wrote $dir/dev.crt and $dir/dev.key (self-signed ECDSA P-256, CN=localhost)"
