#!/bin/bash
# roomgate container health check (the image's HEALTHCHECK): GET /healthz must answer
# 200 {"status":"ok"}. Needs only bash and the openssl CLI, no curl.
#
# Which endpoint: ROOMGATE_HEALTHCHECK_URL if set (https://HOST:PORT or http://HOST:PORT),
# else the listeners of the config in use ($ROOMGATE_CONFIG) in file order, on loopback
# (or on the listener's "host" when it binds one address); the first healthy one wins.
set -u
config=${ROOMGATE_CONFIG:-/etc/roomgate/roomgate.json}
req=$'GET /healthz HTTP/1.1\r\nHost: localhost\r\nUser-Agent: roomgate-healthcheck\r\nConnection: close\r\n\r\n'

healthy() { # the answer on stdin
	local out
	out=$(tr -d '\r')
	[[ $out == "HTTP/1."?" 200"* && $out == *'"status":"ok"'* ]]
}

probe() { # scheme host port
	local scheme=$1 host=$2 port=$3 addr=$2
	[[ $host == *:* ]] && addr="[$host]"
	if [ "$scheme" = https ]; then
		printf '%s' "$req" |
			timeout 3 openssl s_client -connect "$addr:$port" -quiet -verify_quiet 2>/dev/null |
			healthy
	else
		(
			exec 3<>"/dev/tcp/$host/$port" || exit 1
			printf '%s' "$req" >&3
			timeout 3 cat <&3 | healthy
		) 2>/dev/null
	fi
}

targets=()
if [ -n "${ROOMGATE_HEALTHCHECK_URL:-}" ]; then
	u=${ROOMGATE_HEALTHCHECK_URL%%/healthz*}
	u=${u%/}
	scheme=${u%%://*}
	hp=${u#*://}
	port=${hp##*:}
	host=${hp%:*}
	host=${host#[}
	host=${host%]}
	targets+=("$scheme $host $port")
else
	# The listen array has objects only (no nested arrays), so it ends at the first ']';
	# its entries are separated by '},{' once the whitespace is gone.
	flat=$(tr -d ' \t\r\n' <"$config") || exit 1
	[[ $flat == *'"listen":['* ]] || {
		echo "healthcheck: no listen array in $config" >&2
		exit 1
	}
	listen=${flat#*\"listen\":[}
	listen=${listen%%]*}
	while IFS= read -r entry; do
		[[ $entry =~ \"port\":([0-9]+) ]] || continue
		port=${BASH_REMATCH[1]}
		host=127.0.0.1
		if [[ $entry =~ \"host\":\"([^\"]*)\" ]]; then
			host=${BASH_REMATCH[1]}
			case $host in
			0.0.0.0) host=127.0.0.1 ;;
			:: | ::0) host=::1 ;;
			esac
		fi
		scheme=http
		[[ $entry == *'"tls":{'* ]] && scheme=https
		targets+=("$scheme $host $port")
	done < <(printf '%s\n' "${listen//\},\{/$'\n'}")
fi

for t in "${targets[@]}"; do
	read -r scheme host port <<<"$t"
	if probe "$scheme" "$host" "$port"; then
		echo "healthy: $scheme://$host:$port/healthz"
		exit 0
	fi
done
echo "unhealthy: no 200 {\"status\":\"ok\"} from ${targets[*]:-no listener}" >&2
exit 1
