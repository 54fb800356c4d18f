"""What the cluster tests share (test_cluster*.py; docs/OPERATIONS.md, "Several
gateways"): a real Debian redis-server on a free loopback port of its own, three
gateway processes sharing rooms through it, and small helpers."""
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from harness import (DEFAULT_ROOMS, Gateway, RecordsFailure, SSEStream, WSClient,
                     die_with_parent, dump_stderr, expect_stream_event, free_port, http,
                     run_tests, stop_and_check)

REDIS = shutil.which("redis-server")
PREFIX = "rgtest:"


class Redis:
    """redis-server on a loopback port of its own, its data in a temp dir (appendonly,
    fsync always: a restart keeps every acked write)."""

    def __init__(self, extra=()):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-")
        self.extra = list(extra)  # more redis-server arguments (TLS)
        self.proc = None

    def start(self, timeout=10):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "redis.log")] + self.extra,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            preexec_fn=die_with_parent())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.cmd("PING") == "PONG":
                    return self
            except OSError:
                time.sleep(0.05)
            except RuntimeError as e:  # -LOADING: reading its append-only file
                if "LOADING" not in str(e):
                    raise
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def cmd(self, *args):
        """One command over RESP; its reply as str, int, list or None."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=3) as s:
            out = f"*{len(args)}\r\n".encode()
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += f"${len(a)}\r\n".encode() + a + b"\r\n"
            s.sendall(out)
            f = s.makefile("rb")
            return self._read(f)

    def _read(self, f):
        line = f.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:].decode()
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(f"redis: {rest}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else f.read(n + 2)[:-2].decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read(f) for _ in range(n)]
        raise RuntimeError(f"redis: unexpected reply {line!r}")


def ready(gw):
    r = http(gw, "GET", "/readyz")
    return r.status, r.json().get("status")


def wait_ready(gw, want, timeout=15):
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = ready(gw)
        if got[1] == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"gateway :{gw.port}: /readyz {got}, want {want} within {timeout}s")


def redis_peers(pid, port):
    """The local addresses (host:port) of process pid's connections to Redis on port,
    as Redis's CLIENT LIST names them (ss from iproute2)."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( dport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return [line.split()[2] for line in out.splitlines() if f"pid={pid}," in line]


def publish(gw, room, data, key=None):
    headers = [f"Idempotency-Key: {key}"] if key else []
    return http(gw, "POST", f"/rooms/{room}/messages", json.dumps(data), headers=headers)


def members(gw, room):
    r = http(gw, "GET", f"/rooms/{room}/presence")
    assert r.status == 200, r
    return sorted(r.json()["users"])


def wait_members(nodes, room, want, timeout=10):
    """Waits until every node lists want as room's members; the seconds it took."""
    start = time.monotonic()
    while True:
        got = {gw.port: members(gw, room) for gw in nodes}
        if all(v == sorted(want) for v in got.values()):
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{room}: members {got}, want {sorted(want)} on every "
                                 f"node within {timeout}s")
        time.sleep(0.1)


def presence(room, event, user):
    return {"type": "presence", "room": room, "event": event, "user": user}


class ClusterCase(RecordsFailure, unittest.IsolatedAsyncioTestCase):
    """NODES gateways on one Redis, started once per class; what every cluster test
    needs of them. A class changes the Redis (make_redis) or how the gateways reach it
    (redis_conf)."""

    NODES = 3

    @classmethod
    def make_redis(cls):
        return Redis().start()

    @classmethod
    def redis_conf(cls):
        return {"address": f"127.0.0.1:{cls.redis.port}", "key_prefix": PREFIX}

    @classmethod
    def setUpClass(cls):
        cls.redis = cls.make_redis()
        cls.conf = {"cluster": {"redis": cls.redis_conf()},
                    # the test's readers share one Python process with its publishers:
                    # slow readers, not the subject here
                    "limits": {"max_rooms_per_connection": 64,
                               "max_pending_bytes": 64 << 20},
                    "rooms": DEFAULT_ROOMS + [{"pattern": "p:*", "presence": True,
                                               "idle_seconds": 300}]}
        cls.nodes = [Gateway(cls.conf).start() for _ in range(cls.NODES)]
        for gw in cls.nodes:
            wait_ready(gw, "ready")

    @classmethod
    def tearDownClass(cls):
        problems = []
        for gw in cls.nodes:
            mine = stop_and_check(gw)
            if mine or cls._failed:
                dump_stderr(gw, f"node :{gw.port}")
            problems += mine
        cls.redis.stop()
        shutil.rmtree(cls.redis.dir, ignore_errors=True)
        if problems:
            raise AssertionError("; ".join(problems))

    async def asyncSetUp(self):
        self.clients = []
        for gw in self.nodes:  # an earlier test may have left one reconnecting
            wait_ready(gw, "ready")

    async def asyncTearDown(self):
        for c in self.clients:
            if isinstance(c, SSEStream):
                c.close_sync()
            else:
                await c.close()

    async def ws(self, gw):
        c = await WSClient.connect(gw)
        self.clients.append(c)
        return c

    async def sse(self, gw, room):
        s = SSEStream(gw, f"room={room}")
        self.clients.append(s)
        await asyncio.to_thread(expect_stream_event, s)
        return s

    async def member(self, gw, room, name):
        c = await self.ws(gw)
        ans = await c.request("join", room=room, name=name)
        self.assertEqual(ans["type"], "joined", ans)
        return c


def main(name):
    """Runs the calling test file, or skips it loudly without redis-server."""
    if REDIS is None:
        print(f"SKIP {name}: redis-server is not installed (scripts/deps.sh --test "
              "installs it); the cluster tests need a real Redis", flush=True)
        sys.exit(77)
    run_tests()
