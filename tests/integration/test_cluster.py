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
import signal
import sys
import time
from http.client import HTTPSConnection

import cluster_case
from cluster_case import PREFIX, ClusterCase, members, publish, ready, redis_peers, wait_ready
from harness import SSEStream, client_ssl, expect_stream_event, http

# per node and transport: 3 nodes x 2 x 1667 = 10,002 messages
PER_NODE = int(os.environ.get("RG_CLUSTER_PER_NODE", "1667"))
OUTAGE_S = float(os.environ.get("RG_CLUSTER_OUTAGE_S", "10"))


class ClusterTest(ClusterCase):
    async def test_cursor_ahead_while_redis_is_away(self):
        """While a node cannot read Redis, a cursor past what it holds (of the cluster's
        epoch: perhaps one another node reached) is answered `unavailable`, to retry,
        not with a `reset` that would replay the room; a cursor it holds resumes as
        ever. Back, the same cursor resumes."""
        room = "t:ahead"
        a = self.nodes[0]
        first = await self.ws(a)
        await first.join(room)
        epoch = first.epoch
        for k in range(1, 6):
            self.assertEqual(publish(a, room, {"k": k}).status, 201)
        self.assertEqual(len(await first.take(5)), 5)
        self.redis.stop()
        try:
            wait_ready(a, "unavailable")
            c = await self.ws(a)
            ans = await c.request("join", room=room, since=9, epoch=epoch)
            self.assertEqual((ans["type"], ans["code"]), ("error", "unavailable"), ans)
            ans = await c.request("history", room=room, since=9, epoch=epoch)
            self.assertEqual((ans["type"], ans["code"]), ("error", "unavailable"), ans)
            r = http(a, "GET", f"/rooms/{room}/messages?since=9&epoch={epoch}")
            self.assertEqual((r.status, r.json()["error"]["code"]), (503, "unavailable"), r)
            ans = await c.request("join", room=room, since=3, epoch=epoch)
            self.assertEqual((ans["type"], ans["seq"]), ("joined", 5), ans)
            self.assertEqual([m["seq"] for m in await c.take(2)], [4, 5])
            await c.assert_quiet()
        finally:
            self.redis.start()
        wait_ready(a, "ready")
        for k in range(6, 11):
            self.assertEqual(publish(a, room, {"k": k}).status, 201)
        back = await self.ws(a)
        ans = await back.request("join", room=room, since=9, epoch=epoch)
        self.assertEqual((ans["type"], ans["seq"]), ("joined", 10), ans)
        self.assertEqual([m["seq"] for m in await back.take(1)], [10])
        await back.assert_quiet()

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
            # one keep-alive connection, as a backend publishes (a curl each: too slow
            # for 10,000 under the CI's load)
            conn = HTTPSConnection("127.0.0.1", gw.port, timeout=30,
                                               context=client_ssl())
            seqs = []
            try:
                for k in range(PER_NODE):
                    conn.request("POST", f"/rooms/{room}/messages",
                                 json.dumps({"from": f"http{i}", "k": k}),
                                 {"Content-Type": "application/json"})
                    r = conn.getresponse()
                    body = r.read()
                    assert r.status == 201, (r.status, body)
                    seqs.append(json.loads(body)["seq"])
            finally:
                conn.close()
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


    async def test_redis_outage_during_traffic(self):
        """Redis is stopped for OUTAGE_S seconds (10) while a WebSocket publisher on
        node A and an HTTP publisher on node C publish without pause, and restarted:
        every acked message reaches node B's subscriber once, in one unbroken order;
        every publish not acked was answered `unavailable`; none is delivered twice."""
        room = "t:outage"
        a, b, c = self.nodes
        sub = await self.ws(b)
        await sub.join(room)
        pub = await self.ws(a)
        await pub.join(room)
        stop = asyncio.Event()
        acked, refused = set(), []

        async def ws_publisher():
            k = 0
            while not stop.is_set():
                k += 1
                ans = await pub.request("publish", room=room, data={"k": f"ws{k}"}, timeout=30)
                if ans["type"] == "ack":
                    acked.add(f"ws{k}")
                else:
                    refused.append(ans.get("code"))
                    await asyncio.sleep(0.02)
            return k

        def http_publisher():
            conn = HTTPSConnection("127.0.0.1", c.port, timeout=30, context=client_ssl())
            k = 0
            try:
                while not stop.is_set():
                    k += 1
                    conn.request("POST", f"/rooms/{room}/messages", json.dumps({"k": f"h{k}"}),
                                 {"Content-Type": "application/json"})
                    r = conn.getresponse()
                    body = json.loads(r.read())
                    if r.status == 201:
                        acked.add(f"h{k}")
                    else:
                        refused.append(body["error"]["code"])
                        time.sleep(0.02)
            finally:
                conn.close()
            return k

        tasks = [asyncio.create_task(ws_publisher()),
                 asyncio.create_task(asyncio.to_thread(http_publisher))]
        got = []

        async def read_for(seconds):
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                try:
                    got.append(await sub.message(timeout=0.2))
                except AssertionError:
                    pass

        await read_for(1)
        self.redis.stop()
        try:
            await read_for(OUTAGE_S)
        finally:
            self.redis.start()
        await asyncio.to_thread(wait_ready, a, "ready", 20)
        await asyncio.to_thread(wait_ready, c, "ready", 20)
        await read_for(2)
        stop.set()
        sent = await asyncio.gather(*tasks)
        await read_for(3)
        seqs = [m["seq"] for m in got]
        ks = [m["data"]["k"] for m in got]
        print(f"    {sum(sent)} publishes over a {OUTAGE_S} s outage: {len(acked)} acked, "
              f"{len(refused)} answered unavailable, {len(got)} delivered", file=sys.stderr)
        self.assertEqual(set(refused), {"unavailable"}, "refusals say unavailable")
        self.assertEqual(len(acked) + len(refused), sum(sent), "every publish answered")
        self.assertGreater(len(refused), 0, "publishes came during the outage")
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))), "one unbroken order")
        self.assertEqual(len(ks), len(set(ks)), "none delivered twice")
        self.assertEqual(acked - set(ks), set(), "every acked message delivered")

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
    cluster_case.main("test_cluster")
