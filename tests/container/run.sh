#!/bin/bash
# Container smoke test: builds the Dockerfile unchanged with podman (no Docker daemon
# needed) and runs the image the way an operator would.
#
#   1. installs what it needs (apt-get: podman buildah runc debootstrap uidmap
#      slirp4netns fuse-overlayfs, and curl, openssl, python3-websockets, python3-yaml);
#   2. makes the Debian base images the Dockerfile starts FROM, from Debian's archive
#      (tests/container/base-image.sh; kept in podman's store, so done once per machine);
#   3. podman build --format docker (HEALTHCHECK kept) and checks the image: size under
#      100 MB, non-root USER, EXPOSE 8443, HEALTHCHECK, no private key inside;
#   4. runs it with a mounted config (two TLS listeners on free loopback ports and an
#      extra room) and mounted certificates: https /healthz on both ports, a WebSocket
#      client (wss) and an SSE stream (https) both get a message published over HTTPS,
#      the health status turns healthy, the process is non-root and PID 1, SIGHUP
#      reloads the rewritten config (a room more) with both clients connected, and SIGTERM
#      ends it with exit 0 within the drain time (WS closed 1001, SSE stream ended);
#   5. runs it with no mounts at all: a self-signed certificate is made at start and
#      announced loudly, it turns healthy, and `podman stop` ends it with exit 0.
#
# Exit: 0 all passed, 1 something failed, 77 skipped (prints "SKIP: <reason>"; podman
# cannot run here, packages cannot be installed, or ROOMGATE_SKIP_CONTAINER=1).
# Last line: "container: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
repo=$PWD
t_start=$(date +%s)

image=${ROOMGATE_IMAGE:-localhost/roomgate:test}
max_bytes=100000000 # "under 100 MB"
drain_limit=3       # seconds from SIGTERM to exited: the default shutdown.drain_ms is 1 s
tag=roomgate-smoke-$$
c_main=$tag-mounted
c_default=$tag-default
c_redis=$tag-redis
c_node1=$tag-node1
c_node2=$tag-node2
redis_image=localhost/roomgate-redis:test

passed=0 failed=0
ok() {
	passed=$((passed + 1))
	echo "ok   - $*"
}
bad() {
	failed=$((failed + 1))
	echo "FAIL - $*"
}
check() { # name, command...: ok if the command succeeds
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}
skip() {
	echo
	echo "************************************************************************"
	echo "SKIP: container smoke test skipped: $*"
	echo "************************************************************************"
	echo "container: 0 passed, 0 failed, 1 skipped"
	exit 77
}
elapsed() { echo $(($(date +%s) - $1)); }

[ "${ROOMGATE_SKIP_CONTAINER:-0}" = 1 ] && skip "ROOMGATE_SKIP_CONTAINER=1"
[ "$(uname -s)" = Linux ] || skip "podman needs Linux"

# ---- 1. tools ------------------------------------------------------------------------
t0=$(date +%s)
pkgs="podman buildah runc debootstrap uidmap slirp4netns fuse-overlayfs curl openssl python3 python3-websockets python3-yaml"
# shellcheck disable=SC2086
missing=$(sh scripts/missing-pkgs.sh $pkgs)
if [ -n "$missing" ]; then
	command -v apt-get >/dev/null || skip "missing$missing and no apt-get to install them"
	[ "$(id -u)" = 0 ] || skip "missing$missing; run as root to install them"
	echo "container: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	if ! { timeout 600 apt-get update -qq &&
		timeout 900 apt-get install -y -qq --no-install-recommends $missing >/tmp/$tag.apt.log 2>&1; }; then
		tail -5 /tmp/$tag.apt.log 2>/dev/null
		rm -f /tmp/$tag.apt.log
		skip "apt-get could not install$missing"
	fi
	rm -f /tmp/$tag.apt.log
fi
[ "$(id -u)" = 0 ] || skip "the podman recipe here runs as root (debootstrap, runc)"
echo "container: tools ready ($(elapsed "$t0") s): $(podman --version), $(runc --version | head -1)"

# ---- scratch space, podman config, cleanup -------------------------------------------
tmp=$(mktemp -d /tmp/roomgate-ctest.XXXXXX)
export CONTAINERS_CONF=$tmp/containers.conf
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = []
netns = "host"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF
pids=()
cleanup() {
	local p c
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for c in "$c_main" "$c_default" "$c_node1" "$c_node2" "$c_redis"; do # one at a time, checked: an error on one
		for _ in 1 2 3; do                 # must not leave the other behind
			podman container exists "$c" || break
			timeout 30 podman rm -f -t 0 "$c" >/dev/null 2>&1 || sleep 1
		done
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
pm() { timeout 120 podman "$@"; } # every podman call bounded

# ---- 2. base images ------------------------------------------------------------------
t0=$(date +%s)
if ! timeout 900 bash tests/container/base-image.sh; then
	skip "cannot make the Debian base image here (debootstrap or podman import failed)"
fi
t_base=$(elapsed "$t0")
if ! probe=$(pm run --rm --network none docker.io/library/debian:bookworm-slim true 2>&1); then
	echo "$probe" | tail -5
	skip "podman cannot run a container on this machine"
fi
echo "container: base images ready, podman runs containers ($t_base s)"

# ---- 3. build and inspect ------------------------------------------------------------
t0=$(date +%s)
if timeout 1800 podman build --isolation chroot --network host --pull=never --format docker \
	-t "$image" -f Dockerfile . >"$tmp/build.log" 2>&1; then
	ok "podman build of the Dockerfile ($(elapsed "$t0") s)"
else
	tail -30 "$tmp/build.log"
	bad "podman build of the Dockerfile"
	echo "container: $passed passed, $failed failed"
	exit 1
fi
t_build=$(elapsed "$t0")

size=$(pm image inspect --format '{{.Size}}' "$image")
size_mb=$(awk -v b="$size" 'BEGIN{printf "%.1f", b/1e6}')
echo "container: image $image is $size bytes ($size_mb MB)"
check "image size $size_mb MB is under 100 MB" test "$size" -lt "$max_bytes"

# podman keeps HEALTHCHECK at the top of its image inspect, Docker under Config.
inspect=$(pm image inspect "$image")
cfgq() { python3 -c "import json,sys; i=json.loads(sys.argv[1])[0]; c=i['Config']; print($1)" "$inspect"; }
user=$(cfgq "c.get('User','')")
non_root() { [ -n "$1" ] && [ "${1%%:*}" != 0 ] && [ "${1%%:*}" != root ]; }
check "image USER is non-root ($user)" non_root "$user"
check "image EXPOSEs 8443/tcp" test "$(cfgq "'8443/tcp' in (c.get('ExposedPorts') or {})")" = True
check "image has a HEALTHCHECK" \
	test "$(cfgq "(c.get('Healthcheck') or i.get('Healthcheck') or {}).get('Test',[''])[0]")" = CMD
check "image STOPSIGNAL is SIGTERM" test "$(cfgq "c.get('StopSignal','SIGTERM')")" = SIGTERM

keys=$(pm run --rm --network none --user 0 --entrypoint /bin/sh "$image" -c \
	'grep -rlIs -e "-----BEGIN [A-Z ]*PRIVATE KEY-----" /etc /usr /var /opt /root /home /srv; ls -A /etc/roomgate/certs' 2>/dev/null)
check "no private key and no certificate in the image${keys:+: $keys}" test -z "$keys"
out=$(pm run --rm --network none "$image" --version 2>/dev/null)
check "roomgate --version in the image ($out)" grep -q '^roomgate ' <<<"$out"
out=$(pm run --rm --network none "$image" --check-config 2>&1)
check "the baked-in default config passes --check-config" grep -q '/etc/roomgate/roomgate.json: ok' <<<"$out"

compose_ok() {
	python3 - "$repo/compose.yaml" <<'EOF'
import sys, yaml
text = open(sys.argv[1]).read()
doc = yaml.safe_load(text)
svc = doc["services"]["roomgate"]
targets = set()
for v in svc.get("volumes", []):
    targets.add(v["target"] if isinstance(v, dict) else v.split(":")[1])
assert "/etc/roomgate/roomgate.json" in targets or "/etc/roomgate" in targets, targets
assert "/etc/roomgate/certs" in targets, targets
assert any("8443" in str(p) for p in svc.get("ports", [])), svc.get("ports")
assert "build" in svc or "image" in svc
assert "redis" not in doc["services"] and "compose.cluster.yaml" in text
EOF
}
check "compose.yaml: config and certs mounted, 8443 published, points to compose.cluster.yaml" compose_ok
compose_cluster_ok() {
	python3 - "$repo/compose.cluster.yaml" <<'EOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
svc = doc["services"]
ports = set()
for g in (svc["roomgate-1"], svc["roomgate-2"]):
    assert "redis" in g["depends_on"], g
    mounts = {v.split(":")[0]: v.split(":")[1] for v in g["volumes"]}
    assert mounts["./config/compose-cluster.json"] == "/etc/roomgate/roomgate.json", mounts
    assert g["read_only"] and g["cap_drop"] == ["ALL"], g
    ports |= {p.split(":")[0] for p in g["ports"]}
assert ports == {"8443", "8444"}, ports
r = svc["redis"]
assert "ports" not in r and r["expose"] == ["6379"], r
assert r["build"]["dockerfile"] == "redis.Dockerfile" and "/var/lib/redis" in r["volumes"][0]
EOF
}
check "compose.cluster.yaml: two gateways on compose-cluster.json, redis on the compose network only" compose_cluster_ok

mkcert() { # dir cert key: a throwaway self-signed pair, the key readable by root only
	mkdir -p "$1"
	chmod 755 "$1"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$1/$3" -out "$1/$2" 2>/dev/null
	chmod 600 "$1/$3"
	chmod 644 "$1/$2"
}

# Ways to mount a config, checked with --check-config (no ports needed): a directory on
# /etc/roomgate (config + certs/, relative paths), ROOMGATE_CONFIG elsewhere, and a key
# the container user cannot read (warned about, refused).
mkcert "$tmp/conf/certs" fullchain.pem privkey.pem
cat >"$tmp/conf/roomgate.json" <<'EOF'
{ "listen": [ { "port": 9443, "tls": { "cert": "certs/fullchain.pem", "key": "certs/privkey.pem" } } ],
  "rooms": [ { "name": "a" } ] }
EOF
sed 's|certs/|/etc/roomgate/certs/|g' "$tmp/conf/roomgate.json" >"$tmp/other.json"
chmod 755 "$tmp/conf"
chmod 644 "$tmp/conf/roomgate.json" "$tmp/other.json"
out=$(pm run --rm --network none -v "$tmp/conf:/etc/roomgate:ro" "$image" --check-config 2>&1)
rc=$?
unreadable_refused() {
	[ "$rc" = 1 ] && grep -q "WARNING: /etc/roomgate/certs/privkey.pem is not readable by uid 10001" <<<"$out" &&
		grep -q "Permission denied" <<<"$out"
}
check "a key uid 10001 cannot read: warned about by the entrypoint, refused (exit $rc)" unreadable_refused
chgrp 10001 "$tmp/conf/certs/privkey.pem"
chmod 640 "$tmp/conf/certs/privkey.pem"
out=$(pm run --rm --network none -v "$tmp/conf:/etc/roomgate:ro" "$image" --check-config 2>&1)
check "a directory mounted on /etc/roomgate (config + certs/, key group 10001 0640)" \
	grep -q '^/etc/roomgate/roomgate.json: ok' <<<"$out"
out=$(pm run --rm --network none -e ROOMGATE_CONFIG=/config/other.json -v "$tmp/other.json:/config/other.json:ro" \
	-v "$tmp/conf/certs:/etc/roomgate/certs:ro" "$image" --check-config 2>&1)
check "ROOMGATE_CONFIG selects another config file" grep -q '^/config/other.json: ok' <<<"$out"

# ---- 4. mounted config and certificates ----------------------------------------------
free_ports() { # N: N free loopback ports, on one line
	python3 - "$1" <<'EOF'
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))
EOF
}
read -r p1 p2 < <(free_ports 2)
mkcert "$tmp/certs" tls.crt tls.key
chown 10001:10001 "$tmp/certs/tls.key" # the key readable by the container user only
cat >"$tmp/roomgate.json" <<EOF
{
  "listen": [
    { "port": $p1, "host": "127.0.0.1", "tls": { "cert": "certs/tls.crt", "key": "certs/tls.key" } },
    { "port": $p2, "host": "127.0.0.1",
      "tls": { "cert": "/etc/roomgate/certs/tls.crt", "key": "/etc/roomgate/certs/tls.key" } }
  ],
  "sse": { "keepalive_seconds": 15, "retry_ms": 3000 },
  "rooms": [
    { "name": "lobby", "history": 1000, "publish": "anyone" },
    { "name": "smoke", "history": 100, "publish": "anyone" }
  ]
}
EOF
chmod 644 "$tmp/roomgate.json"
echo "container: mounted config: TLS listeners on 127.0.0.1:$p1 and 127.0.0.1:$p2, rooms lobby + smoke"

wait_for() { # seconds, command...: polls every 0.2 s
	local until=$(($(date +%s) + $1))
	shift
	while ! "$@"; do
		[ "$(date +%s)" -ge "$until" ] && return 1
		sleep 0.2
	done
}
https_ok() { curl -sfk --max-time 3 "https://127.0.0.1:$1/healthz" 2>/dev/null | grep -q '"status":"ok"'; }

if ! pm run -d --name "$c_main" --network host \
	-v "$tmp/roomgate.json:/etc/roomgate/roomgate.json:ro" \
	-v "$tmp/certs:/etc/roomgate/certs:ro" \
	"$image" >"$tmp/run.log" 2>&1; then
	cat "$tmp/run.log"
	bad "podman run with the mounted config"
fi
if wait_for 20 https_ok "$p1"; then
	ok "https://127.0.0.1:$p1/healthz answers 200 {\"status\":\"ok\"}"
else
	bad "https://127.0.0.1:$p1/healthz did not answer within 20 s"
	pm logs "$c_main" 2>&1 | tail -20
fi
check "https://127.0.0.1:$p2/healthz (the second listener) answers" https_ok "$p2"
logs() { pm logs "$1" 2>&1; }
mounted_certs_used() {
	local l
	l=$(logs "$c_main")
	grep -q "certificates: /etc/roomgate/certs (mounted)" <<<"$l" && ! grep -q SELF-SIGNED <<<"$l"
}
check "log: the mounted certificates are used, no self-signed one made" mounted_certs_used
fp_mounted=$(openssl x509 -in "$tmp/certs/tls.crt" -noout -fingerprint -sha256)
fp_served=$(openssl s_client -connect "127.0.0.1:$p2" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>/dev/null)
check "the certificate served is the mounted one" test "$fp_mounted" = "$fp_served"
rooms=$(curl -sk --max-time 5 "https://127.0.0.1:$p1/rooms")
check "GET /rooms lists the room the mounted config adds" grep -q '"name":"smoke"' <<<"$rooms"
web_root_served() { curl -sfk --max-time 5 "https://127.0.0.1:$p1/" | grep -qi "<html"; }
check "GET / serves the web root (index.html)" web_root_served

# A WebSocket client on the first port and an SSE stream on the second, same room.
timeout 60 /usr/bin/python3 tests/container/ws_client.py "wss://127.0.0.1:$p1/ws" smoke 40 \
	>"$tmp/ws.out" 2>&1 &
pids+=($!)
timeout 60 curl -sNk --max-time 40 -H 'Accept: text/event-stream' \
	"https://127.0.0.1:$p2/events?room=smoke" >"$tmp/sse.out" 2>&1 &
sse_pid=$!
pids+=("$sse_pid")
subscribers() {
	curl -sk --max-time 3 "https://127.0.0.1:$p1/rooms" |
		python3 -c 'import json,sys; print(next(r["subscribers"] for r in json.load(sys.stdin)["rooms"] if r["name"]=="smoke"))' 2>/dev/null
}
two_subscribers() { [ "$(subscribers)" = 2 ] && grep -q '"type":"joined"' "$tmp/ws.out"; }
if wait_for 15 two_subscribers; then
	ok "wss client joined (subprotocol $(awk '/^SUBPROTOCOL/{print $2}' "$tmp/ws.out")) and SSE stream open: 2 subscribers"
else
	bad "wss client and SSE stream did not both subscribe: $(head -c 300 "$tmp/ws.out") / $(head -c 300 "$tmp/sse.out")"
fi
pub=$(curl -sk --max-time 5 -w ' %{http_code}' -X POST "https://127.0.0.1:$p1/rooms/smoke/messages" \
	-H 'Content-Type: application/json' -d '{"a":1}')
check "POST /rooms/smoke/messages over https: 201 ($pub)" grep -q ' 201$' <<<"$pub"
seq=$(sed -E 's/.*"seq":([0-9]+).*/\1/' <<<"$pub")
want='{"type":"message","room":"smoke","seq":'"$seq"','
both_got() { grep -qF "$want" "$tmp/ws.out" && grep -qF "data: $want" "$tmp/sse.out"; }
if wait_for 10 both_got; then
	ok "the wss client and the SSE stream both received seq $seq"
	same_frame() {
		local w s
		w=$(grep -F "$want" "$tmp/ws.out")
		s=$(grep -F "data: $want" "$tmp/sse.out")
		[ "data: $w" = "$s" ] && [[ $w == *'"data":{"a":1}}' ]]
	}
	check "with the same frame, data {\"a\":1}" same_frame
else
	bad "message not received by both: ws=$(tail -c 300 "$tmp/ws.out") sse=$(tail -c 300 "$tmp/sse.out")"
fi

health() { pm inspect --format '{{.State.Health.Status}}' "$1" 2>/dev/null; }
echo "container: health status before the first check: $(health "$c_main")"
hc=$(pm healthcheck run "$c_main" 2>&1)
hc_rc=$?
check "podman healthcheck run (runs the image's HEALTHCHECK) passes${hc:+: $hc}" test "$hc_rc" = 0
check "health status turned healthy ($(health "$c_main"))" test "$(health "$c_main")" = healthy
found_listener() {
	pm inspect --format '{{json .State.Health.Log}}' "$c_main" | grep -q "healthy: https://127.0.0.1:$p1/healthz"
}
check "the HEALTHCHECK found the config's first listener by itself" found_listener

uid=$(pm exec "$c_main" id -u 2>/dev/null)
check "the process inside runs as uid $uid (non-root)" non_root "$uid"
status=$(pm exec "$c_main" cat /proc/1/status 2>/dev/null)
pid1_roomgate() {
	grep -q '^Name:[[:space:]]*roomgate$' <<<"$status" && grep -Eq '^Uid:[[:space:]]+[1-9][0-9]*[[:space:]]' <<<"$status"
}
check "PID 1 is roomgate itself, Uid $(awk '/^Uid:/{print $2}' <<<"$status")" pid1_roomgate

# A reload, as docs/OPERATIONS.md says (`docker kill -s HUP`): the mounted file is
# rewritten in place (a single-file mount follows the inode) with one more room; the
# WebSocket client and the SSE stream stay connected (SIGTERM below closes them).
sed 's/{ "name": "smoke", "history": 100, "publish": "anyone" }/&,\n    { "name": "reloaded" }/' \
	"$tmp/roomgate.json" >"$tmp/roomgate.json.new"
cat "$tmp/roomgate.json.new" >"$tmp/roomgate.json"
pm kill --signal HUP "$c_main" >/dev/null
reloaded() { logs "$c_main" | grep -q 'reload: /etc/roomgate/roomgate.json in force'; }
check "SIGHUP: the config was reloaded (log: in force)" wait_for 5 reloaded
rooms=$(curl -sk --max-time 3 "https://127.0.0.1:$p1/rooms")
check "SIGHUP: GET /rooms lists the room the reload added" grep -q '"name":"reloaded"' <<<"$rooms"
check "SIGHUP: the container still runs" test "$(pm inspect --format '{{.State.Running}}' "$c_main")" = true

# SIGTERM with a WebSocket client and an SSE stream connected.
t_kill=$(date +%s%N)
pm kill --signal TERM "$c_main" >/dev/null
code=$(timeout 10 podman wait "$c_main" 2>/dev/null)
t_ms=$((($(date +%s%N) - t_kill) / 1000000))
check "SIGTERM: exited with code ${code:-none (still running after 10 s)}" test "${code:-x}" = 0
check "SIGTERM: exited in $t_ms ms (default drain 1 s; limit $drain_limit s)" test "$t_ms" -lt $((drain_limit * 1000))
check "SIGTERM: the WebSocket client was closed with 1001" wait_for 5 grep -q '^CLOSED 1001' "$tmp/ws.out"
sse_ended() { ! kill -0 "$sse_pid" 2>/dev/null; }
check "SIGTERM: the SSE stream ended" wait_for 5 sse_ended
stop_logged() {
	local l
	l=$(logs "$c_main")
	grep -q "signal 15: closing connections" <<<"$l" && grep -q "NOTICE: stopped" <<<"$l"
}
check "log: signal 15, closing connections, stopped" stop_logged

# ---- 5. no mounts at all: self-signed certificate, compose.yaml's hardening ----------
# Its own network namespace (--network none: loopback only), so 8443 on the host is free
# for whoever uses it; the health check runs inside it.
# With compose.yaml's hardening: read-only root file system and a tmpfs on /tmp (the
# entrypoint's working directory then), no capabilities, no new privileges.
if ! pm run -d --name "$c_default" --network none --read-only --tmpfs /tmp \
	--cap-drop ALL --security-opt no-new-privileges "$image" >"$tmp/run2.log" 2>&1; then
	cat "$tmp/run2.log"
	bad "podman run with no mounts"
fi
serving() { logs "$c_default" | grep -q 'roomgate serving'; }
check "no mounts: the gateway starts on the default config" wait_for 20 serving
dlog=$(logs "$c_default")
self_signed_announced() {
	grep -q "WARNING: NO TLS CERTIFICATE MOUNTED at /etc/roomgate/certs" <<<"$dlog" && grep -q "SELF-SIGNED" <<<"$dlog"
}
check "no mounts: a self-signed certificate is made and announced loudly" self_signed_announced
echo "$dlog" | grep -E 'roomgate-entrypoint: (\*|WARNING: (NO|gen))' | head -3
healthy_default() { timeout 30 podman healthcheck run "$c_default" >/dev/null 2>&1; }
check "no mounts: health status turns healthy" wait_for 15 healthy_default
files=$(pm exec "$c_default" sh -c 'ls -A /etc/roomgate/certs; stat -c "%a %u" /tmp/roomgate/selfsigned/dev.key' 2>/dev/null)
own_key() { [[ $files =~ ^600\ [1-9][0-9]*$ ]]; }
check "no mounts: the key is the container's own (mode, uid: $files), /etc/roomgate/certs empty" own_key
# the default config's auth section: its keys are made for the container as well, and a
# token made inside with roomgate-dev-token verifies with the key the gateway loaded
tok=$(pm exec "$c_default" roomgate-dev-token alice --key /tmp/roomgate/selfsigned/dev-jwt.key 2>/dev/null)
pub=$(pm exec "$c_default" cat /tmp/roomgate/selfsigned/dev-jwt.pub.pem 2>/dev/null)
token_verifies() {
	TOK=$tok PUB=$pub /usr/bin/python3 -c '
import os, jwt
c = jwt.decode(os.environ["TOK"], os.environ["PUB"], algorithms=["EdDSA"])
assert c["sub"] == "alice", c' 2>&1
}
check "no mounts: dev credentials made; a dev token made inside verifies (python3-jwt)" token_verifies
creds_logged() { grep -q "development credentials: an API key in" <<<"$dlog"; }
check "no mounts: the entrypoint says where the dev credentials are" creds_logged
t_stop=$(date +%s%N)
pm stop -t 10 "$c_default" >/dev/null 2>&1
t_ms=$((($(date +%s%N) - t_stop) / 1000000))
code=$(pm inspect --format '{{.State.ExitCode}}' "$c_default" 2>/dev/null)
stopped_clean() { [ "$code" = 0 ] && [ "$t_ms" -lt $((drain_limit * 1000)) ]; }
check "no mounts: podman stop: exit code $code in $t_ms ms" stopped_clean

# ---- 6. two gateways and Redis in containers (compose.cluster.yaml's stack) -----------
# Redis from docker/redis.Dockerfile, two containers of the image on one port
# (listen[].reuse_port; these containers share the host's network namespace, see
# CONTAINERS_CONF above) with cluster.redis: SSE streams on the port, spread over both,
# all get a message published there; both stop with exit 0.
t0=$(date +%s)
out=$(pm run --rm --network none -v "$repo/config/compose-cluster.json:/etc/roomgate/roomgate.json:ro" \
	"$image" --check-config 2>&1)
check "config/compose-cluster.json passes --check-config in the image" \
	grep -q '/etc/roomgate/roomgate.json: ok' <<<"$out"
if timeout 900 podman build --isolation chroot --network host --pull=never --format docker \
	-t "$redis_image" -f docker/redis.Dockerfile docker >"$tmp/build-redis.log" 2>&1; then
	ok "podman build of docker/redis.Dockerfile ($(elapsed "$t0") s)"
else
	tail -20 "$tmp/build-redis.log"
	bad "podman build of docker/redis.Dockerfile"
fi
read -r pr pc < <(free_ports 2)
mkdir -p "$tmp/cluster"
cat >"$tmp/cluster/roomgate.json" <<EOF
{ "listen": [ { "port": $pc, "host": "127.0.0.1", "reuse_port": true,
                "tls": { "cert": "certs/tls.crt", "key": "certs/tls.key" } } ],
  "cluster": { "redis": { "address": "127.0.0.1:$pr" } },
  "rooms": [ { "name": "smoke" } ] }
EOF
chmod 755 "$tmp/cluster"
chmod 644 "$tmp/cluster/roomgate.json"
pm run -d --name "$c_redis" --network host "$redis_image" \
	redis-server --bind 127.0.0.1 --port "$pr" --save "" --appendonly no >/dev/null 2>&1
for c in "$c_node1" "$c_node2"; do
	pm run -d --name "$c" --network host -v "$tmp/cluster/roomgate.json:/etc/roomgate/roomgate.json:ro" \
		-v "$tmp/certs:/etc/roomgate/certs:ro" "$image" >/dev/null 2>&1
done
both_serving() { logs "$c_node1" | grep -q 'roomgate serving' && logs "$c_node2" | grep -q 'roomgate serving'; }
check "two gateway containers listen on one port ($pc)" wait_for 20 both_serving
port_ready() { curl -sk --max-time 3 "https://127.0.0.1:$pc/readyz" | grep -q '"status":"ready"'; }
check "the port's /readyz: ready (Redis reached)" wait_for 20 port_ready
for i in $(seq 20); do
	timeout 60 curl -sNk --max-time 30 -H 'Accept: text/event-stream' \
		"https://127.0.0.1:$pc/events?room=smoke" >"$tmp/csse.$i" 2>&1 &
	pids+=($!)
done
streams_open() { [ "$(grep -l '^event: stream' "$tmp"/csse.* 2>/dev/null | wc -l)" = 20 ]; }
check "20 SSE streams open on the port" wait_for 15 streams_open
pub=$(curl -sk --max-time 5 -w ' %{http_code}' -X POST "https://127.0.0.1:$pc/rooms/smoke/messages" \
	-H 'Content-Type: application/json' -d '{"c":1}')
check "POST to the port: 201 ($pub)" grep -q ' 201$' <<<"$pub"
all_got() { [ "$(grep -l '"data":{"c":1}' "$tmp"/csse.* 2>/dev/null | wc -l)" = 20 ]; }
check "all 20 streams received it" wait_for 10 all_got
for c in "$c_node1" "$c_node2"; do
	pm stop -t 10 "$c" >/dev/null 2>&1
done
s1=$(logs "$c_node1" | grep -c 'path=/events')
s2=$(logs "$c_node2" | grep -c 'path=/events')
check "both containers served streams ($s1 and $s2 of 20)" test "$s1" -gt 0 -a "$s2" -gt 0 -a $((s1 + s2)) = 20
codes="$(pm inspect --format '{{.State.ExitCode}}' "$c_node1") $(pm inspect --format '{{.State.ExitCode}}' "$c_node2")"
check "both stop with exit 0 ($codes)" test "$codes" = "0 0"
pm stop -t 5 "$c_redis" >/dev/null 2>&1

echo "container: timings: base image $t_base s, build $t_build s, total $(elapsed "$t_start") s; image $size_mb MB"
echo "container: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
