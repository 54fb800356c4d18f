#!/bin/sh
# Makes development credentials for config/roomgate.json's auth section, in DIR
# (default certs), keeping any that exist:
#   DIR/dev-jwt.key           Ed25519 private key that signs dev tokens (scripts/dev-token.sh)
#   DIR/dev-jwt.pub.pem       its public key: what the gateway verifies tokens with
#   DIR/dev-api.key           a backend API key (send it as Authorization: Bearer KEY)
#   DIR/dev-api-keys.sha256   its SHA-256: what the gateway holds (auth.api_keys_file)
# Never use them in production; never commit them. docs/OPERATIONS.md, "Security",
# makes real ones the same way.
set -eu
dir=${1:-certs}
mkdir -p "$dir"
umask 077
if [ ! -s "$dir/dev-jwt.key" ] || [ ! -s "$dir/dev-jwt.pub.pem" ]; then
	openssl genpkey -algorithm ed25519 -out "$dir/dev-jwt.key" 2>/dev/null
	openssl pkey -in "$dir/dev-jwt.key" -pubout -out "$dir/dev-jwt.pub.pem"
	chmod 644 "$dir/dev-jwt.pub.pem"
	echo "dev-auth: wrote $dir/dev-jwt.key and $dir/dev-jwt.pub.pem (Ed25519, tokens: scripts/dev-token.sh)"
fi
if [ ! -s "$dir/dev-api.key" ] || [ ! -s "$dir/dev-api-keys.sha256" ]; then
	openssl rand -hex 32 | tr -d '\n' >"$dir/dev-api.key"
	printf '%s  dev\n' "$(openssl dgst -sha256 -r "$dir/dev-api.key" | cut -d' ' -f1)" >"$dir/dev-api-keys.sha256"
	chmod 644 "$dir/dev-api-keys.sha256"
	echo "dev-auth: wrote $dir/dev-api.key (a backend API key) and its hash $dir/dev-api-keys.sha256"
fi
