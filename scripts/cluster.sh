#!/bin/bash
# Several gateway processes on this host, one per core, sharing their ports and their
# rooms (docs/OPERATIONS.md, "Several gateways"). CONFIG sets listen[].reuse_port on
# every listener and cluster.redis (config/cluster.json: Redis on 127.0.0.1:6379).
# With --redis, this script also runs a redis-server on that loopback port for them (its
# data in a temp dir, append-only), stopped after them.
#
#   scripts/cluster.sh [--redis] [N] [CONFIG]       N: default the number of cores
#
# SIGTERM / SIGINT: every process drains and stops; SIGHUP: every process reloads. The
# script ends when they all have, with 0 when each exited 0. One that dies stops the
# others, so that whatever supervises the script restarts them together.
# Env: ROOMGATE_BIN (default build/roomgate; scripts/build.sh build makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "cluster.sh: $*" >&2; }

redis=0
if [ "${1:-}" = --redis ]; then
	redis=1
	shift
fi
n=${1:-$(nproc)}
config=${2:-config/cluster.json}
bin=${ROOMGATE_BIN:-build/roomgate}
case $n in '' | *[!0-9]* | 0)
	say "N: expected a number of processes, got '$n'"
	exit 2
	;;
esac
[ -x "$bin" ] || { say "no gateway binary at $bin (scripts/build.sh build)"; exit 2; }
"$bin" --check-config --config "$config" >/dev/null || exit 2
grep -q '"reuse_port" *: *true' "$config" ||
	say "warning: $config sets no listen[].reuse_port: the processes after the first cannot listen"

pids=()
rpid=
stopping=0
stop_all() { # SIG
	stopping=1
	[ ${#pids[@]} -gt 0 ] && kill "-$1" "${pids[@]}" 2>/dev/null || true
}
trap 'stop_all TERM' TERM INT
trap '[ ${#pids[@]} -gt 0 ] && kill -HUP "${pids[@]}" 2>/dev/null || true' HUP

if [ $redis = 1 ]; then
	addr=$(sed -n 's/.*"address" *: *"\(127\.0\.0\.1:[0-9]*\)".*/\1/p' "$config" | head -1)
	[ -n "$addr" ] || { say "--redis: $config's cluster.redis.address is not 127.0.0.1:PORT"; exit 2; }
	command -v redis-server >/dev/null || { say "--redis: no redis-server (apt-get install redis-server)"; exit 2; }
	rdir=$(mktemp -d)
	redis-server --bind 127.0.0.1 --port "${addr#*:}" --save "" --appendonly yes \
		--dir "$rdir" --logfile "$rdir/redis.log" &
	rpid=$!
	for _ in $(seq 50); do
		redis-cli -p "${addr#*:}" ping >/dev/null 2>&1 && break
		sleep 0.1
	done
	say "redis-server on $addr (pid $rpid, data in $rdir)"
fi

for i in $(seq "$n"); do
	"$bin" --config "$config" &
	pids+=($!)
done
say "$n gateway processes (pids ${pids[*]}) on $config"

status=0
while [ ${#pids[@]} -gt 0 ]; do
	set +e
	wait -n -p done "${pids[@]}"
	rc=$?
	set -e
	[ -n "${done:-}" ] || continue # a signal woke wait: the trap ran
	rest=()
	for p in "${pids[@]}"; do [ "$p" = "$done" ] || rest+=("$p"); done
	pids=("${rest[@]+"${rest[@]}"}")
	[ $rc = 0 ] || [ $status != 0 ] || status=$rc # the first failure
	if [ $stopping = 0 ]; then
		say "gateway pid $done exited with $rc: stopping the others"
		stop_all TERM
	fi
	done=
done
if [ -n "$rpid" ]; then
	kill -TERM "$rpid" 2>/dev/null || true
	wait "$rpid" 2>/dev/null || true
fi
exit $status
