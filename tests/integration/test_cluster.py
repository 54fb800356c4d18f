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
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
import unittest

from harness import (BIN, DEFAULT_ROOMS, REPO, Gateway, RecordsFailure, SSEStream, WSClient, deep_merge,
                     die_with_parent, dump_stderr, expect_stream_event, free_port, http,
                     run_tests, shared_cert, stop_and_check)

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


class ClusterTest(RecordsFailure, unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis().start()
        cls.conf = {"cluster": {"redis": {"address": f"127.0.0.1:{cls.redis.port}",
                                          "key_prefix": PREFIX}},
                    "limits": {"max_rooms_per_connection": 64},
                    "rooms": DEFAULT_ROOMS + [{"pattern": "p:*", "presence": True,
                                               "idle_seconds": 300}]}
        cls.nodes = [Gateway(cls.conf).start() for _ in range(3)]
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

    async def test_presence_across_nodes(self):
        """Members of a presence room on every node (WebSocket and SSE) are told when
        one on another node joins or leaves, and every node lists the same members.
        A node that stops cleanly takes its members out at once; a killed one's leave
        within its cluster.redis.node_timeout_seconds (2 s here)."""
        room = "p:across"
        a, b, c = self.nodes
        quick = Gateway(deep_merge(self.conf, {"cluster": {"redis": {
            "node_timeout_seconds": 2}}})).start()
        clean = Gateway(self.conf).start()
        extra = [quick, clean]
        try:
            for gw in extra:
                wait_ready(gw, "ready")
            ann = await self.member(a, room, "ann")
            bob = await self.member(b, room, "bob")
            self.assertEqual(await ann.answer(), presence(room, "join", "bob"))
            dee = SSEStream(c, f"room={room}&name=dee")
            self.clients.append(dee)
            await asyncio.to_thread(expect_stream_event, dee)
            cat = await self.member(quick, room, "cat")
            eve = await self.member(clean, room, "eve")
            for who in ("dee", "cat", "eve"):
                self.assertEqual(await ann.answer(), presence(room, "join", who))
                self.assertEqual(await bob.answer(), presence(room, "join", who))
            self.assertEqual(await cat.answer(), presence(room, "join", "eve"))
            got = await asyncio.to_thread(dee.take, 2)
            self.assertEqual([(e["event"], json.loads(e["data"])) for e in got],
                             [("presence", presence(room, "join", w)) for w in ("cat", "eve")])
            everyone = ["ann", "bob", "cat", "dee", "eve"]
            await asyncio.to_thread(wait_members, self.nodes + extra, room, everyone)
            ans = await cat.request("presence", room=room)
            self.assertEqual(sorted(ans["users"]), everyone, "the WebSocket query too")

            # a leave, and a clean stop: at once
            await bob.request("leave", room=room)
            self.assertEqual(await ann.answer(), presence(room, "leave", "bob"))
            t0 = time.monotonic()
            self.assertEqual(stop_and_check(clean), [])
            extra.remove(clean)
            self.assertEqual(await ann.answer(timeout=3), presence(room, "leave", "eve"))
            print(f"    a clean stop's member left the other nodes {time.monotonic() - t0:.2f} s "
                  "after SIGTERM", file=sys.stderr)

            # killed: gone within its timeout
            quick.proc.kill()
            quick.proc.wait(5)
            t0 = time.monotonic()
            self.assertEqual(await ann.answer(timeout=8), presence(room, "leave", "cat"))
            took = time.monotonic() - t0
            self.assertLess(took, 2 + 1 + 2, "node_timeout_seconds 2, a heartbeat a second")
            print(f"    a killed node's member left the other nodes after {took:.2f} s",
                  file=sys.stderr)
            await asyncio.to_thread(wait_members, self.nodes, room, ["ann", "dee"])
            for gw in (quick, clean):
                node = re.search(r"as node ([0-9a-v]+)", gw.stderr()).group(1)
                self.assertIsNone(self.redis.cmd("ZSCORE", f"{PREFIX}nodes", node),
                                  "the killed and the stopped node are forgotten")
                self.assertEqual(self.redis.cmd("EXISTS", f"{PREFIX}node:{node}"), 0)
            await ann.assert_quiet()
        finally:
            for gw in extra:
                gw.stop()

    async def test_presence_through_a_redis_outage(self):
        """Redis is down for a while: a member that leaves meanwhile leaves every node
        once it is back, one that joins meanwhile joins them; nothing is told twice."""
        room = "p:outage"
        a, b = self.nodes[0], self.nodes[1]
        ann = await self.member(a, room, "ann")
        bob = await self.member(b, room, "bob")
        self.assertEqual(await ann.answer(), presence(room, "join", "bob"))
        await asyncio.to_thread(wait_members, self.nodes, room, ["ann", "bob"])
        self.redis.stop()
        try:
            for gw in self.nodes:
                wait_ready(gw, "unavailable")
            await bob.request("leave", room=room)
            cal = await self.member(b, room, "cal")
            await bob.assert_quiet()
            self.assertEqual(members(b, room), ["ann", "cal"], "node B knows at once")
        finally:
            self.redis.start()
        for gw in self.nodes:
            wait_ready(gw, "ready")
        got = [await ann.answer(timeout=10), await ann.answer(timeout=10)]
        self.assertCountEqual(got, [presence(room, "leave", "bob"),
                                    presence(room, "join", "cal")])
        await asyncio.to_thread(wait_members, self.nodes, room, ["ann", "cal"])
        await ann.assert_quiet()
        await cal.assert_quiet()

    async def test_processes_sharing_a_port(self):
        """Two gateways on one port (listen[].reuse_port): the kernel spreads the
        connections between them, and a message published to the port reaches every
        subscriber whichever process holds it. A third process on the port without
        reuse_port is refused at start, saying why. (Each process also has a port of
        its own, to ask it and no other whether it is ready.)"""
        port = free_port()
        cert, key = shared_cert()
        tls = {"cert": cert, "key": key}
        shared = types.SimpleNamespace(port=port, ws_url=f"wss://127.0.0.1:{port}/ws",
                                       base=f"https://127.0.0.1:{port}")

        def on_port(share):
            own = free_port()
            gw = Gateway(deep_merge(self.conf, {"listen": [
                {"port": own, "host": "127.0.0.1", "tls": tls},
                {"port": port, "host": "127.0.0.1", "reuse_port": share, "tls": tls}]}))
            gw.port = own
            return gw

        pair = [on_port(True), on_port(True)]
        try:
            for gw in pair:
                gw.start()
                wait_ready(gw, "ready")
                self.assertIn(f"listening on 127.0.0.1:{port} (TLS: https, wss; HTTP/2 by "
                              "ALPN), shared with other processes (reuse_port)", gw.stderr())
            room = "t:shared"
            subs = []
            for _ in range(40):
                c = await self.ws(shared)
                await c.join(room)
                subs.append(c)
            self.assertEqual(publish(shared, room, {"k": 1}).status, 201)
            for c in subs:
                self.assertEqual((await c.message())["data"], {"k": 1})
            for c in subs:
                await c.close()
            self.clients = []
            # each process logs the WebSocket connections it served as they close
            deadline = time.monotonic() + 5
            while True:
                served = [gw.stderr().count("access ws ") for gw in pair]
                if sum(served) >= 40 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            print(f"    40 WebSocket connections to one port: {served[0]} and {served[1]} "
                  "served by the two processes", file=sys.stderr)
            self.assertEqual(sum(served), 40, served)
            self.assertTrue(all(served), f"both processes take connections: {served}")

            alone = on_port(False)
            with self.assertRaises(RuntimeError) as cm:
                alone.start(timeout=5)
            self.assertIn(f"cannot listen on 127.0.0.1:{port}: port {port} is already in use",
                          str(cm.exception))
            alone.stop()
        finally:
            for gw in pair:
                self.assertEqual(stop_and_check(gw), [])

    async def test_cluster_script(self):
        """scripts/cluster.sh runs N processes of one config (reuse_port, cluster.redis)
        on this host: both serve the port; SIGTERM stops them all, status 0. One that
        dies stops the other, and the script's status says so."""
        port = free_port()
        cert, key = shared_cert()
        gw = Gateway(deep_merge(self.conf, {"listen": [
            {"port": port, "host": "127.0.0.1", "reuse_port": True,
             "tls": {"cert": cert, "key": key}}]}))
        gw.port = port
        log = os.path.join(gw.dir, "cluster.log")

        def run(serving):
            with open(log, "ab") as f:
                proc = subprocess.Popen(
                    ["bash", os.path.join(REPO, "scripts", "cluster.sh"), "2", gw.config_path],
                    env=dict(os.environ, ROOMGATE_BIN=BIN), stdin=subprocess.DEVNULL,
                    stdout=f, stderr=f, preexec_fn=die_with_parent())
            deadline = time.monotonic() + 15
            while True:
                kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                      text=True).stdout.split()
                if len(kids) == 2 and open(log).read().count("roomgate serving") >= serving:
                    break
                self.assertIsNone(proc.poll(), open(log).read())
                self.assertLess(time.monotonic(), deadline, open(log).read())
                time.sleep(0.1)
            return proc, kids

        proc, kids = run(2)
        try:
            wait_ready(gw, "ready")
            subs = [await self.ws(gw) for _ in range(10)]
            for c in subs:
                await c.join("t:script")
            self.assertEqual(publish(gw, "t:script", {"k": 1}).status, 201)
            for c in subs:
                self.assertEqual((await c.message())["data"], {"k": 1})
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(15), 0, open(log).read())
            self.assertEqual(open(log).read().count("NOTICE: stopped"), 2)

            proc, kids = run(4)
            os.kill(int(kids[0]), signal.SIGKILL)
            self.assertEqual(proc.wait(15), 137, open(log).read())
            self.assertIn(f"gateway pid {kids[0]} exited with 137: stopping the others",
                          open(log).read())
            self.assertEqual(open(log).read().count("NOTICE: stopped"), 3)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            for k in kids:
                subprocess.run(["kill", "-9", k], capture_output=True)

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
            # the publishers are in the room too: an ack waits behind every message
            # sent before it, which this client reads one by one (slow under load)
            seqs = []
            for k in range(PER_NODE):
                ans = await p.request("publish", room=room, data={"from": f"ws{i}", "k": k},
                                      timeout=60)
                assert ans.get("type") == "ack", ans
                seqs.append(ans["seq"])
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
            self.assertIn("roomgate_cluster_ready 0\n", http(a, "GET", "/metrics").text)
        finally:
            self.redis.start()
        for gw in self.nodes:
            wait_ready(gw, "ready", timeout=15)
            m = http(gw, "GET", "/metrics").text
            self.assertIn("roomgate_cluster_ready 1\n", m)
            self.assertRegex(m, r"roomgate_cluster_outages_total [1-9]")
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


    async def test_resume_on_another_node(self):
        """A client leaves node A after reading part of a room and resumes on node B
        with `since`, and on node C over SSE with Last-Event-ID: each gets exactly
        what it missed, then what is published next, and every node names the same
        epoch."""
        room = "t:move"
        a, b, c = self.nodes
        first = await self.ws(a)
        await first.join(room)
        epoch = first.epoch
        for k in range(1, 31):
            self.assertEqual(publish(a, room, {"k": k}).status, 201)
        got = await first.take(30)
        self.assertEqual([m["seq"] for m in got], list(range(1, 31)))
        await first.close()
        for k in range(31, 51):  # missed while away
            self.assertEqual(publish(b if k % 2 else a, room, {"k": k}).status, 201)
        moved = await self.ws(b)
        ans = await moved.request("join", room=room, since=20, epoch=epoch)
        self.assertEqual((ans["type"], ans["epoch"]), ("joined", epoch), ans)
        got = await moved.take(30)
        self.assertEqual([(m["seq"], m["data"]["k"]) for m in got],
                         [(k, k) for k in range(21, 51)])
        stream = SSEStream(c, f"room={room}", headers=[f"Last-Event-ID: {epoch}/40"])
        self.clients.append(stream)
        await asyncio.to_thread(expect_stream_event, stream)
        events = await asyncio.to_thread(stream.take, 10)
        self.assertEqual([json.loads(e["data"])["seq"] for e in events], list(range(41, 51)))
        self.assertEqual(publish(c, room, {"k": 51}).status, 201)
        self.assertEqual((await moved.message())["seq"], 51)
        self.assertEqual(json.loads((await asyncio.to_thread(stream.take, 1))[0]["data"])
                         ["seq"], 51)
        await moved.assert_quiet()

    async def test_node_restart(self):
        """A node restarts: before it says ready it has read every room back from
        Redis, and its clients resume there with nothing lost and nothing twice."""
        room = "t:restart"
        a, c = self.nodes[0], self.nodes[2]
        sub = await self.ws(c)
        await sub.join(room)
        epoch = sub.epoch
        for k in range(1, 21):
            self.assertEqual(publish(a, room, {"k": k}).status, 201)
        self.assertEqual([m["seq"] for m in await sub.take(20)], list(range(1, 21)))
        self.assertEqual(c.stop(), 0)
        for k in range(21, 41):  # while it is down
            self.assertEqual(publish(a, room, {"k": k}).status, 201)
        c.start()
        wait_ready(c, "ready")
        back = await self.ws(c)
        ans = await back.request("join", room=room, since=20, epoch=epoch)
        self.assertEqual((ans["type"], ans["seq"], ans["epoch"]), ("joined", 40, epoch), ans)
        got = await back.take(20)
        self.assertEqual([(m["seq"], m["data"]["k"]) for m in got],
                         [(k, k) for k in range(21, 41)])
        self.assertEqual(publish(c, room, {"k": 41}).status, 201)
        self.assertEqual((await back.message())["seq"], 41)
        await back.assert_quiet()
        # and its history answers from what it read back
        r = http(c, "GET", f"/rooms/{room}/messages?since=35&epoch={epoch}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual([m["seq"] for m in r.json()["messages"]], list(range(36, 42)))

    async def test_catch_up_after_losing_redis_links(self):
        """Node C is stopped (SIGSTOP) and Redis drops its connections (CLIENT KILL, as
        when a node is too slow for Redis's output buffer limits or a network path
        breaks) while node A publishes. Back, C reconnects and reads what it missed
        from the streams before it publishes again: its subscriber receives every
        message once, in order, and no gap is counted."""
        room = "t:catchup"
        a, c = self.nodes[0], self.nodes[2]
        sub = await self.ws(c)
        await sub.join(room)
        reader = asyncio.create_task(sub.take(600, timeout=60))
        ours = redis_peers(c.proc.pid, self.redis.port)
        self.assertEqual(len(ours), 2, "node C holds a command and a pub/sub connection")
        os.kill(c.proc.pid, signal.SIGSTOP)
        try:
            for addr in ours:
                self.assertEqual(self.redis.cmd("CLIENT", "KILL", "ADDR", addr), 1)
            r = http(a, "POST", "/messages", json.dumps(
                {"room": room, "messages": [{"data": {"k": k}} for k in range(1, 601)]}),
                timeout=20)
            self.assertEqual(r.status, 200, r)
            self.assertEqual([x.get("seq") for x in r.json()["results"]],
                             list(range(1, 601)))
        finally:
            os.kill(c.proc.pid, signal.SIGCONT)
        got = await reader
        self.assertEqual([(m["seq"], m["data"]["k"]) for m in got],
                         [(k, k) for k in range(1, 601)])
        wait_ready(c, "ready")
        self.assertEqual(publish(c, room, {"k": 601}).status, 201)
        self.assertEqual((await sub.message())["seq"], 601)
        await sub.assert_quiet()
        m = http(c, "GET", "/metrics")
        self.assertIn("roomgate_cluster_gaps_total 0\n", m.text, "no gap on node C")
        self.assertIn("publishing again", c.stderr())

    async def test_garbage_in_redis(self):
        """What no gateway wrote, on a room's channel, in a room's stream or as the
        epoch, is refused with a log line: the gateways stay up, deliver nothing of
        it, and serve on."""
        room = "t:junk"
        a, c = self.nodes[0], self.nodes[2]
        sub = await self.ws(c)
        await sub.join(room)
        chan = f"{PREFIX}{{{room}}}"
        for junk in ["", "x", "1 2", "1 2 3", "0 1 0\n{}", "1 2 99\n{}", "-1 2 0\n{}",
                     "1 x 0\n{}", "99999999999999999999999 1 0\n{}", "\x00\xff" * 50]:
            self.assertEqual(self.redis.cmd("PUBLISH", chan, junk), 3, junk)
        # presence joins and leaves (on a presence room's channel) that are not one
        pchan, prow = f"{PREFIX}{{p:junk}}", f"{PREFIX}{{p:junk}}:m"
        member = await self.ws(a)
        self.assertEqual((await member.request("join", room="p:junk", name="m"))["type"],
                         "joined")
        for junk in ["+", "-", "+x\n{}", "-x", "+abcdefgh conn-1", "+abcdefgh conn-1\nnot json",
                     "+abcdefgh conn-1\n{}", "+abcdefgh conn-1\n{\"user\":\"\"}",
                     "+abcdefgh conn-1\n{\"user\":7}", "+abcdefgh conn-1\n{\"user\":\""
                     + "u" * 65 + "\"}", "+abcdefgh " + "c" * 40 + "\n{\"user\":\"u\"}",
                     "-abcdefgh\nconn-1"]:
            self.assertEqual(self.redis.cmd("PUBLISH", pchan, junk), 3, junk)
        self.redis.cmd("HSET", prow, "no field", '{"user":"u"}', "abcdefgh conn-9", "[1]")
        self.assertEqual(self.redis.cmd("PUBLISH", f"{PREFIX}{{}}", "1 2 0\n{}"), 3)
        self.assertEqual(self.redis.cmd("PUBLISH", f"{PREFIX}{{bad room}}", "1 2 0\n{}"), 3)
        # entries without the fields a gateway writes, read back at the next catch-up
        self.redis.cmd("XADD", f"{PREFIX}{{t:junk2}}", "0-1", "x", "y")
        self.redis.cmd("XADD", f"{PREFIX}{{t:junk2}}", "0-2", "d", "{}")
        self.redis.cmd("XADD", f"{PREFIX}{{t:junk2}}", "5-3", "t", "1", "d", "{}")
        self.redis.cmd("SET", f"{PREFIX}{{t:junk3}}", "not a stream")
        self.assertEqual(publish(a, room, {"ok": 1}).status, 201)
        self.assertEqual((await sub.message())["data"], {"ok": 1})
        await sub.assert_quiet()
        for gw in self.nodes:
            self.assertIn("that no gateway wrote; ignored", gw.stderr())
            self.assertIn("a presence join on rgtest:{p:junk} that no gateway wrote",
                          gw.stderr())
            self.assertIn("a presence member of rgtest:{p:junk} that no gateway wrote",
                          gw.stderr())
            self.assertEqual(members(gw, "p:junk"), ["m"])
        await member.assert_quiet()

        # an epoch that is not one: the node that reads it does not publish
        epoch = self.redis.cmd("GET", f"{PREFIX}epoch")
        self.redis.cmd("SET", f"{PREFIX}epoch", "{not an epoch}")
        try:
            for addr in redis_peers(c.proc.pid, self.redis.port):
                self.redis.cmd("CLIENT", "KILL", "ADDR", addr)
            wait_ready(c, "unavailable")
            time.sleep(0.5)
            self.assertEqual(ready(c), (503, "unavailable"))
            self.assertIn("the epoch key holds something else", c.stderr())
        finally:
            self.redis.cmd("SET", f"{PREFIX}epoch", epoch)
        wait_ready(c, "ready")
        self.assertEqual(publish(c, room, {"ok": 2}).status, 201)
        self.assertEqual((await sub.message())["data"], {"ok": 2})
        self.assertEqual(members(c, "p:junk"), ["m"], "nor what a catch-up read")
        # what the catch-up read of t:junk2: only the entry a gateway could have written
        r = http(c, "GET", "/rooms/t:junk2/messages")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["messages"], [])


if __name__ == "__main__":
    if REDIS is None:
        print("SKIP test_cluster: redis-server is not installed (scripts/deps.sh --test "
              "installs it); the cluster tests need a real Redis", flush=True)
        sys.exit(77)
    run_tests()
