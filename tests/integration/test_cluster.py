"""Several gateways sharing rooms through one Redis (cluster.redis; docs/OPERATIONS.md,
"Several gateways"): a real Debian redis-server on a free loopback port and three
gateway processes. Messages published on every node, over WebSocket and HTTP, reach the
WebSocket and SSE subscribers of every node in one order with the same seqs;
idempotency keys hold across nodes; while Redis is down publishes are answered
`unavailable` (never acked), /readyz says 503, connections stay, and publishing works
again when it is back."""
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

from harness import (Gateway, SSEStream, WSClient, die_with_parent, dump_stderr,
                     expect_stream_event, free_port, http, run_tests)

REDIS = shutil.which("redis-server")
PREFIX = "rgtest:"
# per node and transport: 3 nodes x 2 x 1667 = 10,002 messages
PER_NODE = int(os.environ.get("RG_CLUSTER_PER_NODE", "1667"))


class Redis:
    """redis-server on a loopback port of its own, its data in a temp dir (appendonly,
    fsync always: a restart keeps every acked write)."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-")
        self.proc = None

    def start(self, timeout=10):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "redis.log")],
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


def publish(gw, room, data, key=None):
    headers = [f"Idempotency-Key: {key}"] if key else []
    return http(gw, "POST", f"/rooms/{room}/messages", json.dumps(data), headers=headers)


class ClusterTest(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis().start()
        conf = {"cluster": {"redis": {"address": f"127.0.0.1:{cls.redis.port}",
                                      "key_prefix": PREFIX}},
                "limits": {"max_rooms_per_connection": 64}}
        cls.nodes = [Gateway(conf).start() for _ in range(3)]
        for gw in cls.nodes:
            wait_ready(gw, "ready")
        cls.failed = False

    @classmethod
    def tearDownClass(cls):
        problems = []
        for gw in cls.nodes:
            alive = gw.alive()
            rc = gw.stop()
            if not alive:
                problems.append(f"gateway :{gw.port} died during the tests")
            elif rc != 0:
                problems.append(f"gateway :{gw.port} exit code on SIGTERM: {rc}")
            if gw.sanitizer_reports():
                problems.append(f"gateway :{gw.port}: {gw.sanitizer_reports()}")
            if problems or cls.failed:
                dump_stderr(gw, f"node :{gw.port}")
        cls.redis.stop()
        shutil.rmtree(cls.redis.dir, ignore_errors=True)
        if problems:
            raise AssertionError("; ".join(problems))

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result is not None else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            type(self).failed = True
        return out

    async def asyncSetUp(self):
        self.clients = []

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

    async def test_one_order_on_every_node(self):
        """Every node's WebSocket publisher and HTTP publisher send PER_NODE messages
        at once; a WebSocket and an SSE subscriber on every node receive all of them,
        seqs 1..N in order, each seq with the same message everywhere, and the acks
        name each seq once."""
        room = "t:order"
        n = PER_NODE * 2 * len(self.nodes)
        subs = []
        for gw in self.nodes:
            c = await self.ws(gw)
            self.assertEqual(await c.join(room), 0)
            subs.append(c)
        streams = [await self.sse(gw, room) for gw in self.nodes]
        pubs = []
        for gw in self.nodes:
            p = await self.ws(gw)
            await p.join(room)
            pubs.append(p)

        async def ws_publisher(i, p):
            seqs = []
            for k in range(PER_NODE):
                seqs.append(await p.publish(room, {"from": f"ws{i}", "k": k}))
            return seqs

        def http_publisher(i, gw):
            seqs = []
            for k in range(PER_NODE):
                r = publish(gw, room, {"from": f"http{i}", "k": k})
                assert r.status == 201, r
                seqs.append(r.json()["seq"])
            return seqs

        # read while they publish: a subscriber that does not is a slow consumer
        readers = [asyncio.create_task(c.take(n, timeout=180)) for c in subs]
        t0 = time.monotonic()
        acked = await asyncio.gather(
            *[ws_publisher(i, p) for i, p in enumerate(pubs)],
            *[asyncio.to_thread(http_publisher, i, gw) for i, gw in enumerate(self.nodes)])
        took = time.monotonic() - t0
        every = sorted(s for seqs in acked for s in seqs)
        self.assertEqual(every, list(range(1, n + 1)), "acks: each seq once")
        for seqs in acked:  # one publisher's messages are ordered as it sent them
            self.assertEqual(seqs, sorted(seqs))

        order = None
        for i, reader in enumerate(readers):
            msgs = await reader
            got = [(m["seq"], json.dumps(m["data"], sort_keys=True)) for m in msgs]
            self.assertEqual([s for s, _ in got], list(range(1, n + 1)),
                             f"node {i}: WebSocket seqs")
            if order is None:
                order = got
            self.assertEqual(got, order, f"node {i}: WebSocket order differs from node 0's")
        for i, s in enumerate(streams):
            events = await asyncio.to_thread(s.take, n, 120)
            got = [(json.loads(e["data"])["seq"],
                    json.dumps(json.loads(e["data"])["data"], sort_keys=True))
                   for e in events]
            self.assertEqual(got, order, f"node {i}: SSE order differs")
        # each publisher's messages reached everyone in the order it sent them
        for who in [f"ws{i}" for i in range(3)] + [f"http{i}" for i in range(3)]:
            ks = [json.loads(d)["k"] for _, d in order if json.loads(d)["from"] == who]
            self.assertEqual(ks, list(range(PER_NODE)), who)
        # the room's stream holds its history (t:* keeps 1000) and ends at seq n
        last = self.redis.cmd("XREVRANGE", f"{PREFIX}{{{room}}}", "+", "-", "COUNT", "1")
        self.assertEqual(last[0][0], f"0-{n}")
        print(f"\n    {n} messages published on 3 nodes in {took:.2f} s, "
              f"delivered to 6 subscribers in one order", flush=True)

    async def test_idempotency_key_on_every_node(self):
        room = "t:idem"
        first = publish(self.nodes[0], room, {"v": 1}, key="k-1")
        self.assertEqual(first.status, 201, first)
        seq = first.json()["seq"]
        again = publish(self.nodes[1], room, {"v": 1}, key="k-1")
        self.assertEqual((again.status, again.json()),
                         (200, {"room": room, "seq": seq, "duplicate": True}))
        other = publish(self.nodes[2], room, {"v": 2}, key="k-1")
        self.assertEqual(other.status, 409, other)
        self.assertEqual(other.json()["error"]["code"], "conflict")
        # a WebSocket publish id is the same key
        c = await self.ws(self.nodes[2])
        await c.join(room)
        ans = await c.request("publish", room=room, data={"v": 1}, id="k-1")
        self.assertEqual(ans, {"type": "ack", "room": room, "seq": seq, "duplicate": True,
                               "id": "k-1"})
        # and a batch item's key
        r = http(self.nodes[1], "POST", "/messages", json.dumps(
            {"room": room, "messages": [{"data": {"v": 1}, "key": "k-1"},
                                        {"data": {"v": 3}, "key": "k-2"}]}))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["results"],
                         [{"room": room, "seq": seq, "duplicate": True},
                          {"room": room, "seq": seq + 1}])

    async def test_redis_down_then_back(self):
        """Redis stops: /readyz 503 `unavailable` on every node, publishes over HTTP,
        a batch and WebSocket are answered `unavailable`, subscribers stay connected.
        Redis comes back (its data kept): publishing resumes where the order was,
        and the subscribers get the new messages, none twice."""
        room = "t:down"
        a, b = self.nodes[0], self.nodes[1]
        sub = await self.ws(b)
        await sub.join(room)
        stream = await self.sse(a, room)
        pub = await self.ws(a)
        await pub.join(room)
        before = await pub.publish(room, {"n": "before"})
        self.assertEqual((await sub.message())["seq"], before)

        self.redis.stop()
        try:
            for gw in self.nodes:
                wait_ready(gw, "unavailable", timeout=10)
            self.assertEqual(ready(a), (503, "unavailable"))
            r = publish(a, room, {"n": "lost"}, key="while-down")
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json()["error"]["code"], "unavailable")
            r = http(b, "POST", "/messages", json.dumps(
                {"room": room, "messages": [{"data": {"n": "lost"}}]}))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["results"][0]["error"]["code"], "unavailable")
            ans = await pub.request("publish", room=room, data={"n": "lost"})
            self.assertEqual(ans["type"], "error", ans)
            self.assertEqual(ans["code"], "unavailable", ans)
            await sub.ping()
            await pub.ping()
            self.assertTrue(stream.alive())
        finally:
            self.redis.start()
        for gw in self.nodes:
            wait_ready(gw, "ready", timeout=15)
        # the retry with the key the refusal named is stored once
        r = publish(a, room, {"n": "lost"}, key="while-down")
        self.assertEqual(r.status, 201, r)
        after = r.json()["seq"]
        self.assertEqual(after, before + 1)
        self.assertEqual(await pub.publish(room, {"n": "after"}), after + 1)
        got = [m["seq"] for m in await sub.take(2)]
        self.assertEqual(got, [after, after + 1])
        events = await asyncio.to_thread(stream.take, 3, 10)
        self.assertEqual([json.loads(e["data"])["seq"] for e in events],
                         [before, after, after + 1])
        await sub.assert_quiet()


if __name__ == "__main__":
    if REDIS is None:
        print("SKIP test_cluster: redis-server is not installed (scripts/deps.sh --test "
              "installs it); the cluster tests need a real Redis", flush=True)
        sys.exit(77)
    run_tests()
