#!/bin/sh
# roomgate container entrypoint. Prepares the working directory, makes a self-signed
# certificate when none is mounted (and says so loudly), then execs roomgate, which
# becomes PID 1 and gets the SIGTERM of `docker stop` itself. Logs go to stderr.
#
#   ROOMGATE_CONFIG   the config file (default /etc/roomgate/roomgate.json)
#   ROOMGATE_RUN_DIR  the working directory (default /var/lib/roomgate)
#
# Relative paths in the config (tls cert/key, http.web_root) resolve against the working
# directory, which holds two links: certs -> /etc/roomgate/certs (or the generated
# self-signed pair) and web -> /usr/share/roomgate/web. So the default config's
# "certs/dev.crt" and "web" work, and absolute paths work as they are.
set -eu

config=${ROOMGATE_CONFIG:-/etc/roomgate/roomgate.json}
certs=/etc/roomgate/certs
web=/usr/share/roomgate/web
run=${ROOMGATE_RUN_DIR:-/var/lib/roomgate}

log() { echo "roomgate-entrypoint: $*" >&2; }

# A first argument that is not an option is a command to run instead (docker run IMAGE sh).
case "${1:-}" in
'' | -*) ;;
*) exec "$@" ;;
esac
for a in "$@"; do
	case $a in
	-V | --version | -h | --help) exec /usr/local/bin/roomgate "$@" ;;
	esac
done

if [ ! -r "$config" ]; then
	log "ERROR: cannot read the config $config: mount a file there (or a directory on"
	log "ERROR: $(dirname "$config")), or set ROOMGATE_CONFIG to a readable file"
	exit 1
fi

if ! { mkdir -p "$run" 2>/dev/null && [ -w "$run" ]; }; then
	alt=${TMPDIR:-/tmp}/roomgate
	log "$run is not writable (read-only root file system): working in $alt instead"
	run=$alt
	if ! { mkdir -p "$run" 2>/dev/null && [ -w "$run" ]; }; then
		log "ERROR: no writable working directory: with a read-only root file system,"
		log "ERROR: mount a tmpfs on /tmp (docker run --read-only --tmpfs /tmp ...)"
		exit 1
	fi
fi
cd "$run"
ln -sfn "$web" web

has_files() {
	for f in "$1"/*; do
		[ -e "$f" ] && return 0
	done
	return 1
}

if [ -d "$certs" ] && has_files "$certs"; then
	ln -sfn "$certs" certs
	log "certificates: $certs (mounted)"
	for f in "$certs"/*; do
		if [ -f "$f" ] && [ ! -r "$f" ]; then
			log "WARNING: $f is not readable by uid $(id -u) (the container user):"
			log "WARNING: chgrp $(id -g) + chmod g+r it on the host, or chown it to $(id -u)"
		fi
	done
elif grep -q '"certs/dev\.crt"' "$config"; then
	# No certificate mounted and the config wants the default pair: make one for this
	# container, never one baked into the image.
	dir=$run/selfsigned
	if [ -s "$dir/dev.crt" ] && [ -s "$dir/dev.key" ]; then
		what="reusing the SELF-SIGNED certificate made at this container's first start"
	else
		what="generated a SELF-SIGNED certificate for this container"
		name=$(cat /proc/sys/kernel/hostname 2>/dev/null || echo localhost)
		case $name in
		'' | *[!A-Za-z0-9.-]*) san="DNS:localhost" ;;
		*) san="DNS:localhost,DNS:$name" ;;
		esac
		mkdir -m 0700 "$dir"
		if ! (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-nodes -days 825 -subj /CN=localhost \
			-addext "subjectAltName=$san,IP:127.0.0.1,IP:::1" \
			-keyout "$dir/dev.key" -out "$dir/dev.crt" 2>"$dir/openssl.err"); then
			cat "$dir/openssl.err" >&2
			log "ERROR: could not make a self-signed certificate"
			exit 1
		fi
		rm -f "$dir/openssl.err"
		chmod 644 "$dir/dev.crt"
	fi
	# the default config's auth section: a token signing key and an API key, made here
	# for this container too, never baked into the image
	if grep -q '"certs/dev-jwt\.pub\.pem"\|"certs/dev-api-keys\.sha256"' "$config"; then
		if ! (cd "$dir" && umask 077 && /usr/local/bin/roomgate-dev-auth . >/dev/null); then
			log "ERROR: could not make development credentials"
			exit 1
		fi
		log "development credentials: an API key in $dir/dev-api.key (Authorization: Bearer);"
		log "tokens: docker exec CONTAINER roomgate-dev-token USER --key $dir/dev-jwt.key"
	fi
	ln -sfn selfsigned certs
	fp=$(openssl x509 -in "$dir/dev.crt" -noout -fingerprint -sha256 | sed 's/.*=//')
	log "********************************************************************************"
	log "WARNING: NO TLS CERTIFICATE MOUNTED at $certs"
	log "WARNING: $what"
	log "WARNING: (CN=localhost, $dir/dev.crt, SHA-256 $fp)."
	log "WARNING: Browsers and clients will not trust it. For production mount your"
	log "WARNING: certificate and key on $certs (see docs/OPERATIONS.md)."
	log "********************************************************************************"
else
	ln -sfn "$certs" certs
fi

# shellcheck disable=SC3045 # dash, the image's sh, has ulimit -n
nofile=$(ulimit -n)
case $nofile in
unlimited) ;;
*) if [ "$nofile" -lt 4096 ]; then
	log "WARNING: open files limit (ulimit -n) is $nofile: each connection needs one;"
	log "WARNING: raise it with --ulimit nofile=65536:65536 (docs/OPERATIONS.md)"
fi ;;
esac

log "config $config, working directory $run, uid $(id -u), open files limit $nofile"
exec /usr/local/bin/roomgate --config "$config" "$@"
