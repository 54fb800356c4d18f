"""Resuming a subscription after a reconnect (docs/PROTOCOL.md, "Delivery guarantees"):
WebSocket `join {since}`, SSE `Last-Event-ID` (header, as EventSource sends it, and
the `last_event_id` query parameter, bare and named form, HTTP/1.1 and HTTP/2), the
`gap` notice when the ring no longer reaches back, the `reset` notice for a cursor of
another epoch or past the room's last seq, refused cursors, and `history` over WebSocket
and HTTP."""
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

from harness import (DEFAULT_ROOMS, NODE_DIR, GatewayTestCase, TCPProxy, die_with_parent,
                     event_cursors, expect_stream_event, node_ready, other_epoch, run_tests,
                     stream_epoch, without_epoch)

RETRY_MS = 200
HIST = 20  # history of the h:* rooms


async def read_frames(c, n, timeout=10):
    """The next n frames of a WSClient in arrival order (answers and messages mixed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out = []
    while len(out) < n:
        try:
            raw = await asyncio.wait_for(c.ws.recv(), max(0.01, deadline - loop.time()))
        except asyncio.TimeoutError:
            raise AssertionError(f"WS: {len(out)} of {n} frames within {timeout}s: {out[-3:]}")
        out.append(json.loads(raw))
    return out


def seqs_of(events):
    return [json.loads(e["data"])["seq"] for e in events]


class ResumeTest(GatewayTestCase):
    # keepalive 1 s: an HTTP/1.1 stream whose client went away is noticed by a failing
    # keepalive write (docs/PROTOCOL.md), not by its FIN
    CONFIG = {"sse": {"retry_ms": RETRY_MS, "keepalive_seconds": 1},
              "limits": {"max_rooms_per_connection": 4},
              "rooms": DEFAULT_ROOMS + [
                  {"pattern": "h:*", "history": HIST, "idle_seconds": 300}]}

    async def open_sse(self, query, http2=False, headers=()):
        """An SSE stream past its `event: stream` (checked)."""
        s = self.sse(query, http2=http2, headers=headers)
        await asyncio.to_thread(expect_stream_event, s)
        return s

    async def publisher(self, room):
        """A joined WSClient; self.epoch: the gateway's epoch, from its `joined`."""
        p = await self.ws()
        await p.join(room)
        self.epoch = p.epoch
        return p

    async def publish_n(self, p, room, first, last):
        """Publishes {"i": k} for k in first..last, each acked with seq k."""
        for k in range(first, last + 1):
            self.assertEqual(await p.publish(room, {"i": k}), k, "ack seq")
            if len(p.messages) > 64:
                p.messages.clear()
        p.messages.clear()

    def assertMessages(self, msgs, room, first, last):
        self.assertEqual([m.get("seq") for m in msgs], list(range(first, last + 1)),
                         "seqs: exactly once, in order, no gap")
        for m in msgs:
            self.assertEqual((m.get("type"), m.get("room"), m.get("data")),
                             ("message", room, {"i": m["seq"]}), m)

    def assertSSEMessages(self, events, room, first, last):
        self.assertEqual([e.get("id") for e in events],
                         [f"{self.epoch}/{k}" for k in range(first, last + 1)],
                         "SSE ids: EPOCH/SEQ, the gateway's epoch")
        self.assertEqual([e.get("event") for e in events], ["message"] * len(events))
        self.assertMessages([json.loads(e["data"]) for e in events], room, first, last)

    def assertSSEReset(self, event, room):
        """`event: reset` naming the room and the gateway's epoch; no id."""
        self.assertEqual(event.get("event"), "reset", f"reset first: {event}")
        self.assertNotIn("id", event, "a reset does not move the cursor")
        self.assertEqual(json.loads(event["data"]),
                         {"type": "reset", "room": room, "epoch": self.epoch})

    # ------------------------------------------------------------------ WebSocket

    async def test_ws_resume_after_abort(self):
        room = "t:r1"
        p = await self.publisher(room)
        c = await self.ws()
        self.assertEqual(await c.join(room), 0)
        await self.publish_n(p, room, 1, 10)
        self.assertMessages(await c.take(10), room, 1, 10)
        last = 10
        c.ws.transport.abort()  # no close frame: the connection is just gone
        await asyncio.to_thread(self.gw.wait_subscribers, room, 1)

        t0 = time.monotonic()
        await self.publish_n(p, room, 11, 510)
        print(f"\npublished 500 in {time.monotonic() - t0:.1f}s while cut off")

        c2 = await self.ws()
        # the cursor a client keeps: its last seq and the epoch of its `joined`
        ans = await c2.request("join", room=room, since=last, epoch=c.epoch, id="resume")
        self.assertEqual(ans, {"type": "joined", "room": room, "seq": 510, "epoch": c.epoch,
                               "id": "resume"})
        self.assertMessages(await c2.take(500, timeout=20), room, 11, 510)
        await self.publish_n(p, room, 511, 513)
        self.assertMessages(await c2.take(3), room, 511, 513)
        await asyncio.sleep(0.2)
        await c2.assert_quiet()

    async def test_ws_join_since_zero_and_last(self):
        room = "t:r0"
        p = await self.publisher(room)
        await self.publish_n(p, room, 1, 5)
        a, b = await self.ws(), await self.ws()
        self.assertEqual((await a.request("join", room=room, since=0))["seq"], 5)
        self.assertMessages(await a.take(5), room, 1, 5)
        self.assertEqual((await b.request("join", room=room, since=5))["seq"], 5)
        await self.publish_n(p, room, 6, 6)
        for c in (a, b):
            self.assertMessages(await c.take(1), room, 6, 6)
            await asyncio.sleep(0.1)
            await c.assert_quiet()

    async def test_ws_rejoin_with_since_moves_cursor(self):
        room = "t:rejoin"
        p = await self.publisher(room)
        c = await self.ws()
        await c.join(room)
        await self.publish_n(p, room, 1, 8)
        self.assertMessages(await c.take(8), room, 1, 8)
        ans = await c.request("join", room=room, since=3)
        self.assertEqual((ans["type"], ans["seq"]), ("joined", 8), ans)
        self.assertMessages(await c.take(5), room, 4, 8)
        await self.publish_n(p, room, 9, 9)
        self.assertMessages(await c.take(1), room, 9, 9)
        await asyncio.sleep(0.2)
        await c.assert_quiet()
        self.assertEqual((await asyncio.to_thread(self.gw.room_info, room))["subscribers"], 2)

    async def test_ws_since_beyond_history_gap(self):
        room = "h:ws"
        p = await self.publisher(room)
        await self.publish_n(p, room, 1, 50)
        # (since, reset, gap): a since past the last seq starts the room over: reset,
        # then the gap from its first seq
        for since, reset, gap in ((5, False, (6, 30)), (0, False, (1, 30)),
                                  (29, False, (30, 30)), (30, False, None),
                                  (51, True, (1, 30))):
            with self.subTest(since=since):
                c = await self.ws()
                await c.send({"type": "join", "room": room, "since": since, "id": "j"})
                head = [{"type": "joined", "room": room, "seq": 50, "epoch": self.epoch,
                         "id": "j"}]
                if reset:
                    head.append({"type": "reset", "room": room, "epoch": self.epoch})
                if gap:
                    head.append({"type": "gap", "room": room, "from": gap[0], "to": gap[1]})
                frames = await read_frames(c, len(head) + 20)
                self.assertEqual(frames[:len(head)], head,
                                 "joined, then reset (if any), then gap (if any)")
                self.assertMessages(frames[len(head):], room, 31, 50)
                await asyncio.sleep(0.1)
                await c.assert_quiet()
                await c.close()

    async def test_ws_reset_for_foreign_or_impossible_cursor(self):
        """docs/PROTOCOL.md, "Epochs": a since of another epoch (the gateway restarted)
        or past the room's last seq is not refused: `joined`, `reset {room, epoch}`,
        then the room from its first message, then live ones. The current epoch with a
        since the room reached resumes as before, without a reset."""
        room = "t:wreset"
        p = await self.publisher(room)
        await self.publish_n(p, room, 1, 5)
        old = other_epoch(self.epoch)
        cases = [  # (join fields, reset, first delivered)
            ({"since": 6}, True, 1),
            ({"since": 1000000}, True, 1),
            ({"since": 6, "epoch": self.epoch}, True, 1),
            ({"since": 2, "epoch": old}, True, 1),
            ({"since": 5, "epoch": old}, True, 1),
            ({"since": 0, "epoch": old}, True, 1),
            ({"since": 2, "epoch": self.epoch}, False, 3),
            ({"since": 5, "epoch": self.epoch}, False, 6),
        ]
        clients = []
        for k, (fields, reset, first) in enumerate(cases):
            with self.subTest(join=fields):
                c = await self.ws()
                await c.send({"type": "join", "room": room, "id": f"j{k}", **fields})
                head = [{"type": "joined", "room": room, "seq": 5, "epoch": self.epoch,
                         "id": f"j{k}"}]
                if reset:
                    head.append({"type": "reset", "room": room, "epoch": self.epoch})
                frames = await read_frames(c, len(head) + 5 - first + 1)
                self.assertEqual(frames[:len(head)], head)
                self.assertMessages(frames[len(head):], room, first, 5)
                clients.append(c)
        await self.publish_n(p, room, 6, 6)
        for c, (fields, *_) in zip(clients, cases):
            with self.subTest(join=fields, live=True):
                self.assertMessages(await c.take(1), room, 6, 6)
                await c.assert_quiet()

    async def test_ws_bad_since_refused_changes_nothing(self):
        room = "t:badsince"
        p = await self.publisher(room)
        await self.publish_n(p, room, 1, 3)
        c = await self.ws()
        bad = ([{"since": v} for v in (-1, "5", 1.5, None, True, [1], {"seq": 1})]
               + [{"since": 1, "epoch": v} for v in (12345678, None, [self.epoch],
                                                     {"epoch": self.epoch})])
        for k, fields in enumerate(bad):
            with self.subTest(join=fields):
                ans = await c.request("join", room=room, id=f"b{k}", **fields)
                self.assertEqual((ans.get("type"), ans.get("code"), ans.get("id")),
                                 ("error", "bad_request", f"b{k}"), ans)
                self.assertIsInstance(ans.get("message"), str)
        info = await asyncio.to_thread(self.gw.room_info, room)
        self.assertEqual(info["subscribers"], 1, f"a refused join subscribed: {info}")
        await self.publish_n(p, room, 4, 4)
        await asyncio.sleep(0.3)
        await c.assert_quiet()  # not subscribed: the publish is not delivered
        # the connection still works
        self.assertEqual(await c.join(room), 4)
        await self.publish_n(p, room, 5, 5)
        self.assertMessages(await c.take(1), room, 5, 5)
        # a refused join with since on a joined room leaves its cursor alone
        ans = await c.request("join", room=room, since="6", id="bad")
        self.assertEqual((ans.get("type"), ans.get("code")), ("error", "bad_request"), ans)
        await self.publish_n(p, room, 6, 6)
        self.assertMessages(await c.take(1), room, 6, 6)
        # one past the last seq is not refused: reset, and the room again from its start
        ans = await c.request("join", room=room, since=7, id="beyond")
        self.assertEqual(without_epoch(ans), {"type": "joined", "room": room, "seq": 6,
                                              "id": "beyond"})
        self.assertEqual(await c.answer(), {"type": "reset", "room": room,
                                            "epoch": self.epoch})
        self.assertMessages(await c.take(6), room, 1, 6)
        await self.publish_n(p, room, 7, 7)
        self.assertMessages(await c.take(1), room, 7, 7)
        await asyncio.sleep(0.2)
        await c.assert_quiet()

    async def test_ws_refused_join_creates_no_room(self):
        """"A refused message changes nothing": a refused join (here: over
        limits.max_rooms_per_connection) must not leave a pattern room behind. A since
        on a room that does not exist yet is no refusal: the room, a reset, nothing
        stored."""
        c = await self.ws()
        for k in range(4):
            await c.join(f"t:full{k}")
        ans = await c.request("join", room="t:never", since=5, id="n")
        self.assertEqual((ans.get("type"), ans.get("code")), ("error", "limit_exceeded"), ans)
        info = await asyncio.to_thread(self.gw.room_info, "t:never")
        self.assertIsNone(info, "a refused join created the pattern room (GET /rooms)")

        d = await self.ws()
        ans = await d.request("join", room="t:never", since=5, id="n")
        self.assertEqual(without_epoch(ans), {"type": "joined", "room": "t:never", "seq": 0,
                                              "id": "n"})
        self.assertEqual(await d.answer(), {"type": "reset", "room": "t:never",
                                            "epoch": ans["epoch"]})
        await asyncio.sleep(0.2)
        await d.assert_quiet()
        info = await asyncio.to_thread(self.gw.room_info, "t:never")
        self.assertEqual((info or {}).get("subscribers"), 1, info)

    # ------------------------------------------------------------------ SSE

    async def test_sse_resume_eventsource_through_proxy(self):
        ok, why = node_ready()
        if not ok:
            sys.stderr.write(f"\n*** SKIP eventsource resume: {why} ***\n")
            self.skipTest(why)
        room = "t:es"
        proxy = TCPProxy(self.gw.port)
        self.addCleanup(proxy.close)
        p = await self.publisher(room)
        total = 100 + 500 + 200 + 3
        err = open(os.path.join(self.gw.dir, "es-resume.err"), "w+")
        proc = subprocess.Popen(
            ["node", "es_client.mjs", f"https://127.0.0.1:{proxy.port}/events?room={room}",
             str(total), "50"],
            cwd=NODE_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
            env={**os.environ, "NODE_TLS_REJECT_UNAUTHORIZED": "0"},
            preexec_fn=die_with_parent())
        lines = []
        cond = threading.Condition()

        def reader():
            for raw in proc.stdout:
                with cond:
                    lines.append(json.loads(raw))
                    cond.notify_all()

        threading.Thread(target=reader, daemon=True).start()

        def cleanup():
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            err.close()

        self.addCleanup(cleanup)

        def stderr_text():
            err.flush()
            with open(err.name) as f:
                return f.read()

        async def wait_lines(n, timeout=20):
            def wait():
                with cond:
                    return cond.wait_for(lambda: len(lines) >= n, timeout)
            if not await asyncio.to_thread(wait):
                self.fail(f"eventsource: {len(lines)} of {n} messages within {timeout}s;"
                          f" last {lines[-2:]}; stderr {stderr_text()[-500:]!r}")

        await asyncio.to_thread(self.gw.wait_subscribers, room, 2, 10)
        await self.publish_n(p, room, 1, 100)
        await wait_lines(100)

        # cut 1, idle: hold the reconnect back while 500 messages are published
        proxy.hold()
        self.assertEqual(proxy.drop_all(), 1, "one proxied connection to cut")
        await asyncio.to_thread(self.gw.wait_subscribers, room, 1, 10)
        await self.publish_n(p, room, 101, 600)
        deadline = time.monotonic() + 10
        while proxy.accepted < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.assertGreaterEqual(proxy.accepted, 2, "EventSource reconnected (retry: 200)")
        self.assertEqual(len(lines), 100, "nothing arrived while cut off")
        self.assertEqual(proxy.release(), 1)
        await wait_lines(600)

        # cut 2, mid-flow: while messages are being published and read, without holding
        # the reconnect back; EventSource reconnects by itself (perhaps from inside a
        # half-received event) and resumes while the publishing goes on
        flow = asyncio.create_task(self.publish_n(p, room, 601, 800))
        await wait_lines(650)
        self.assertEqual(proxy.drop_all(), 1)
        cut_at = len(lines)
        await flow
        await wait_lines(800)
        print(f"\nmid-flow cut after {cut_at} messages")
        await asyncio.to_thread(self.gw.wait_subscribers, room, 2, 10)
        await self.publish_n(p, room, 801, 803)
        try:
            rc = await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            rc = None
        self.assertEqual(rc, 0, f"es_client exit; stderr {stderr_text()[-1000:]!r}")
        ids = [x["id"] for x in lines]
        self.assertEqual(ids, [f"{self.epoch}/{k}" for k in range(1, total + 1)],
                         "eventsource: every seq exactly once, in order (lastEventId)")
        self.assertMessages([json.loads(x["data"]) for x in lines], room, 1, total)
        opens = stderr_text().splitlines().count("open")
        self.assertGreaterEqual(opens, 3, f"opened, then reopened after each cut:"
                                          f" {stderr_text()[-500:]!r}")
        print(f"\neventsource: {total} messages over {opens} connections,"
              f" {proxy.accepted} proxied")

    async def test_sse_resume_curl(self):
        """Last-Event-ID header and last_event_id parameter, bare and named form, with
        the epoch and without it (ids before epochs), over HTTP/1.1 and HTTP/2: exactly
        the messages after the cursor, then live ones."""
        n = 0
        for http2 in (False, True):
            for how in ("header", "query", "header-named", "query-named", "query-encoded",
                        "header-old", "query-named-old"):
                n += 1
                room = f"t:cr{n}"
                with self.subTest(http2=http2, how=how):
                    p = await self.publisher(room)
                    await self.publish_n(p, room, 1, 10)
                    cursor = f"{room}=4" if "named" in how or "encoded" in how else "4"
                    if not how.endswith("-old"):
                        cursor = f"{self.epoch}/{cursor}"
                    query, headers = f"room={room}", []
                    if how.startswith("header"):
                        headers = [f"Last-Event-ID: {cursor}"]
                    elif how == "query-encoded":
                        query += "&last_event_id=" + urllib.parse.quote(cursor, safe="")
                    else:
                        query += f"&last_event_id={cursor}"
                    s = await self.open_sse(query, http2=http2, headers=headers)
                    self.assertEqual(s.status_line().split()[1:2], ["200"], s.status_line())
                    self.assertEqual(s.lines[0], f"retry: {RETRY_MS}")
                    self.assertSSEMessages(await asyncio.to_thread(s.take, 6), room, 5, 10)
                    await self.publish_n(p, room, 11, 12)
                    self.assertSSEMessages(await asyncio.to_thread(s.take, 2), room, 11, 12)
                    self.assertTrue(s.events.empty(), f"extra events: {s.lines[-4:]}")
                    await s.close()
                    await p.close()

    async def test_sse_http2_last_event_id_header(self):
        """The Last-Event-ID header resumes over HTTP/2 as over HTTP/1.1 (lws 4.1.6
        dropped it there until patches/lws/0110, so a browser's EventSource on the
        page's HTTP/2 connection came back live and missed what was published
        meanwhile), and a bad one is refused there too."""
        room = "t:h2hdr"
        p = await self.publisher(room)
        await self.publish_n(p, room, 1, 5)
        s = await self.open_sse(f"room={room}", http2=True,
                                headers=[f"Last-Event-ID: {self.epoch}/2"])
        self.assertSSEMessages(await asyncio.to_thread(s.take, 3), room, 3, 5)
        bad = await self.ahttp("GET", f"/events?room={room}", http2=True,
                               headers=["Last-Event-ID: abc"])
        self.assertError(bad, 400, "bad_request")
        await asyncio.to_thread(self.gw.wait_subscribers, room, 2)
        await self.publish_n(p, room, 6, 6)
        self.assertSSEMessages(await asyncio.to_thread(s.take, 1), room, 6, 6)

    async def test_sse_resume_zero_and_last(self):
        room = "t:cz"
        p = await self.publisher(room)
        await self.publish_n(p, room, 1, 3)
        a = await self.open_sse(f"room={room}", headers=["Last-Event-ID: 0"])
        b = await self.open_sse(f"room={room}&last_event_id={self.epoch}/3", http2=True)
        self.assertSSEMessages(await asyncio.to_thread(a.take, 3), room, 1, 3)
        await asyncio.to_thread(self.gw.wait_subscribers, room, 3)
        await self.publish_n(p, room, 4, 4)
        self.assertSSEMessages(await asyncio.to_thread(a.take, 1), room, 4, 4)
        self.assertSSEMessages(await asyncio.to_thread(b.take, 1), room, 4, 4)

    async def test_sse_multi_room_named_resume(self):
        ra, rb = "t:ma", "t:mb"
        pa, pb = await self.publisher(ra), await self.publisher(rb)
        await self.publish_n(pa, ra, 1, 5)
        await self.publish_n(pb, rb, 1, 7)
        ep = self.epoch
        variants = [
            (False, [f"Last-Event-ID: {ep}/{ra}=2,{rb}=4"], ""),
            (False, [f"Last-Event-ID: {ep}/{rb}=4,{ra}=2"], ""),  # h2: header not seen
            (False, [f"Last-Event-ID: {ra}=2,{rb}=4"], ""),  # an id from before epochs
            (False, [], f"&last_event_id={ep}/{ra}=2,{rb}=4"),
            (True, [],
             "&last_event_id=" + urllib.parse.quote(f"{ep}/{ra}=2,{rb}=4", safe="")),
        ]
        streams = []
        for http2, headers, extra in variants:
            s = await self.open_sse(f"room={ra}&room={rb}{extra}", http2=http2,
                                    headers=headers)
            streams.append((s, http2, headers, extra))
        for s, http2, headers, extra in streams:
            with self.subTest(http2=http2, headers=headers, query=extra):
                events = await asyncio.to_thread(s.take, 6)
                cur = {ra: 2, rb: 4}
                got = {ra: [], rb: []}
                for e in events:
                    m = json.loads(e["data"])
                    self.assertEqual(e.get("event"), "message")
                    self.assertIn(m["room"], got, m)
                    got[m["room"]].append(m["seq"])
                    cur[m["room"]] = m["seq"]
                    self.assertEqual(e["id"], f"{self.epoch}/{ra}={cur[ra]},{rb}={cur[rb]}",
                                     "id: the epoch, every room's cursor after this event")
                    self.assertEqual(m["data"], {"i": m["seq"]})
                self.assertEqual(got, {ra: [3, 4, 5], rb: [5, 6, 7]})
        await asyncio.to_thread(self.gw.wait_subscribers, rb, 1 + len(streams))
        await self.publish_n(pb, rb, 8, 8)
        for s, *_ in streams:
            e = await asyncio.to_thread(s.next_event)
            self.assertEqual(e["id"], f"{self.epoch}/{ra}=5,{rb}=8")
            self.assertEqual(json.loads(e["data"])["seq"], 8)
            self.assertTrue(s.events.empty(), f"extra events: {s.lines[-4:]}")

    async def test_sse_named_cursor_rejoins_room_the_url_lacks(self):
        """A named cursor for a room the URL lacks (added to the stream with
        POST /streams/{id}/rooms) joins it again, from its cursor."""
        ra, rb = "t:ja", "t:jb"
        pa, pb = await self.publisher(ra), await self.publisher(rb)
        await self.publish_n(pa, ra, 1, 3)
        await self.publish_n(pb, rb, 1, 3)
        s = await self.open_sse(f"room={ra}",
                                headers=[f"Last-Event-ID: {self.epoch}/{ra}=1,{rb}=1"])
        cur, got = {ra: 1, rb: 1}, {ra: [], rb: []}
        for e in await asyncio.to_thread(s.take, 4):
            m = json.loads(e["data"])
            got[m["room"]].append(m["seq"])
            cur[m["room"]] = m["seq"]
            self.assertEqual(e["id"], f"{self.epoch}/{ra}={cur[ra]},{rb}={cur[rb]}")
        self.assertEqual(got, {ra: [2, 3], rb: [2, 3]})
        await asyncio.to_thread(self.gw.wait_subscribers, rb, 2)
        await self.publish_n(pb, rb, 4, 4)
        e = await asyncio.to_thread(s.next_event)
        self.assertEqual((e["id"], json.loads(e["data"])["room"]),
                         (f"{self.epoch}/{ra}=3,{rb}=4", rb))

    async def test_sse_stream_event_names_cursors(self):
        """`event: stream` names the epoch and, for every room, the seq its delivery
        starts after: the cursor's, the last seq of a room that starts live, 0 for a
        room reset (its cursor was past the last seq): what a client resumes from when
        no message came before it reconnects."""
        ra, rb, rc = "t:ca", "t:cb", "t:cc"
        for room, n in ((ra, 3), (rb, 5), (rc, 2)):
            await self.publish_n(await self.publisher(room), room, 1, n)
        for http2 in (False, True):
            with self.subTest(http2=http2):
                s = await self.open_sse(f"room={ra}&room={rb}&room={rc}", http2=http2,
                                        headers=[f"Last-Event-ID: {self.epoch}/{ra}=1,{rc}=9"])
                self.assertEqual(s.stream["epoch"], self.epoch)
                self.assertEqual(s.stream["rooms"], {ra: 1, rb: 5, rc: 0})
                await s.close()

    async def test_sse_since_beyond_history_gap(self):
        # (http2, how, cursor, reset, gap from): a cursor of an earlier epoch starts the
        # room over: reset, then the gap from its first seq
        for k, (http2, how, cursor, reset, gap_from) in enumerate((
                (False, "header", "5", False, 6), (True, "query", "5", False, 6),
                (False, "query", "{old}/40", True, 1))):
            room = f"h:sse{k}"
            with self.subTest(http2=http2, how=how, cursor=cursor):
                p = await self.publisher(room)
                await self.publish_n(p, room, 1, 50)
                cursor = cursor.format(old=other_epoch(self.epoch))
                s = await self.open_sse(
                    f"room={room}" + (f"&last_event_id={cursor}" if how == "query" else ""),
                    http2=http2,
                    headers=[f"Last-Event-ID: {cursor}"] if how == "header" else [])
                events = await asyncio.to_thread(s.take, 21 + reset)
                self.assertEqual(s.lines[0], f"retry: {RETRY_MS}")
                if reset:
                    self.assertSSEReset(events.pop(0), room)
                self.assertEqual(events[0].get("event"), "gap", f"gap first: {events[0]}")
                self.assertNotIn("id", events[0], "a gap does not move the cursor")
                self.assertEqual(json.loads(events[0]["data"]),
                                 {"type": "gap", "room": room, "from": gap_from, "to": 30})
                self.assertSSEMessages(events[1:], room, 31, 50)
                await self.publish_n(p, room, 51, 51)
                self.assertSSEMessages(await asyncio.to_thread(s.take, 1), room, 51, 51)
                await s.close()

    async def test_sse_reset_for_foreign_or_impossible_cursor(self):
        """docs/PROTOCOL.md, "Epochs": a Last-Event-ID of another epoch (the gateway
        restarted) or past the room's last seq opens the stream all the same: first
        `event: reset` naming the gateway's epoch, then the room from its first message,
        then live ones. In a several-room id only the rooms whose cursor is foreign or
        impossible start over."""
        room = "t:sr"
        p = await self.publisher(room)
        await self.publish_n(p, room, 1, 3)
        old = other_epoch(self.epoch)
        variants = [  # (http2, Last-Event-ID header, last_event_id parameter)
            (False, f"{old}/2", None),
            (False, f"{old}/{room}=3", None),
            (False, "4", None),  # an id from before epochs, past the last seq
            (False, None, f"{self.epoch}/1000000"),
            (True, None, f"{old}/0"),
        ]
        streams = []
        for http2, header, param in variants:
            s = await self.open_sse(
                f"room={room}" + (f"&last_event_id={param}" if param else ""), http2=http2,
                headers=[f"Last-Event-ID: {header}"] if header else [])
            streams.append((s, http2, header or param))
        for s, http2, cursor in streams:
            with self.subTest(http2=http2, cursor=cursor):
                self.assertEqual(s.status_line().split()[1:2], ["200"], s.status_line())
                events = await asyncio.to_thread(s.take, 4)
                self.assertSSEReset(events[0], room)
                self.assertSSEMessages(events[1:], room, 1, 3)
        await asyncio.to_thread(self.gw.wait_subscribers, room, 1 + len(streams))
        await self.publish_n(p, room, 4, 4)
        for s, http2, cursor in streams:
            with self.subTest(http2=http2, cursor=cursor, live=True):
                self.assertSSEMessages(await asyncio.to_thread(s.take, 1), room, 4, 4)
                self.assertTrue(s.events.empty(), f"extra events: {s.lines[-4:]}")

        # several rooms: t:srb resumes after 1, t:sra (past its last seq) starts over
        ra, rb = "t:sra", "t:srb"
        pa, pb = await self.publisher(ra), await self.publisher(rb)
        await self.publish_n(pa, ra, 1, 3)
        await self.publish_n(pb, rb, 1, 2)
        s = await self.open_sse(f"room={ra}&room={rb}",
                                headers=[f"Last-Event-ID: {self.epoch}/{ra}=9,{rb}=1"])
        events = await asyncio.to_thread(s.take, 1 + 3 + 1)
        self.assertSSEReset(events[0], ra)
        cur, got = {ra: 0, rb: 1}, {ra: [], rb: []}
        for e in events[1:]:
            m = json.loads(e["data"])
            self.assertEqual((e.get("event"), m["data"]), ("message", {"i": m["seq"]}), e)
            got[m["room"]].append(m["seq"])
            cur[m["room"]] = m["seq"]
            self.assertEqual(event_cursors(e["id"]), cur, e["id"])
        self.assertEqual(got, {ra: [1, 2, 3], rb: [2]})
        stream_epoch(events, self.epoch)

    async def test_sse_cursor_for_unknown_room_is_left_out(self):
        """A room in the Last-Event-ID that the config does not have (any more) is left
        out: the stream opens with its other rooms, without a reset or an error."""
        ra, rb = "t:ua", "t:ub"
        pa, pb = await self.publisher(ra), await self.publisher(rb)
        await self.publish_n(pa, ra, 1, 3)
        await self.publish_n(pb, rb, 1, 2)
        ep = self.epoch
        one = await self.open_sse(f"room={ra}", headers=[f"Last-Event-ID: {ep}/nosuch=3"])
        two = await self.open_sse(f"room={ra}&room={rb}",
                                  headers=[f"Last-Event-ID: {ep}/{ra}=1,nosuch=1,{rb}=2"])
        for s in (one, two):
            self.assertEqual(s.status_line().split()[1:2], ["200"], s.status_line())
        # two resumes t:ua after 1 and t:ub after 2; the unknown room is in no id
        events = await asyncio.to_thread(two.take, 2)
        self.assertEqual([(e.get("event"), event_cursors(e["id"])) for e in events],
                         [("message", {ra: 2, rb: 2}), ("message", {ra: 3, rb: 2})])
        stream_epoch(events, ep)
        # one has no cursor left: it starts live
        await asyncio.to_thread(self.gw.wait_subscribers, ra, 3)
        await self.publish_n(pa, ra, 4, 4)
        self.assertSSEMessages(await asyncio.to_thread(one.take, 1), ra, 4, 4)
        e = await asyncio.to_thread(two.next_event)
        self.assertEqual(event_cursors(e["id"]), {ra: 4, rb: 2}, e)
        for s in (one, two):
            self.assertTrue(s.events.empty(), f"extra events: {s.lines[-4:]}")

    async def test_sse_bad_last_event_id(self):
        ra, rb = "t:sa", "t:sb"
        pa, pb = await self.publisher(ra), await self.publisher(rb)
        await self.publish_n(pa, ra, 1, 3)
        await self.publish_n(pb, rb, 1, 2)
        ep = self.epoch
        # only a malformed id is refused: a cursor of another epoch or past the room's
        # last seq resets (test_sse_reset_for_foreign_or_impossible_cursor), one for a
        # room the config lacks is left out (test_sse_cursor_for_unknown_room_is_left_out)
        single = ["abc", "5,6", f"{ra}=x", "9999999999999999999", "18446744073709551616",
                  "-1", "+1", "1.5", f"{ra}=1,{ra}=2", f"{ra}=1,", f"={ra}", "1=2=3",
                  "/1", f"{ep}/", f"{ep}/abc", f"{ep}/-1", f"{ep}/{ep}/1", "ABCDEFGH/1",
                  "x" * 17 + "/1", f"{ep}/{ra}=1,{ra}=2"]
        double = ["2", f"{ep}/2", f"{ra}=1;{rb}=1", f"{ra}=9999999999999999999,{rb}=1",
                  f"{ep}/{ra}=1,{rb}=x", f"/{ra}=1,{rb}=1"]
        before = {r: (await asyncio.to_thread(self.gw.room_info, r))["subscribers"]
                  for r in (ra, rb)}
        self.assertEqual(before, {ra: 1, rb: 1})
        for http2 in (False, True):
            for query, ids in ((f"room={ra}", single), (f"room={ra}&room={rb}", double)):
                for bad in ids:
                    for how in ("header", "query"):
                        with self.subTest(http2=http2, query=query, id=bad, how=how):
                            if how == "header":
                                r = await self.ahttp("GET", f"/events?{query}", http2=http2,
                                                     headers=[f"Last-Event-ID: {bad}"],
                                                     timeout=3)
                            else:
                                q = urllib.parse.quote(bad, safe=":=,")
                                r = await self.ahttp(
                                    "GET", f"/events?{query}&last_event_id={q}",
                                    http2=http2, timeout=3)
                            self.assertError(r, 400, "bad_request")
        after = {r: (await asyncio.to_thread(self.gw.room_info, r))["subscribers"]
                 for r in (ra, rb)}
        self.assertEqual(after, before, "a refused stream subscribed")
        # the gateway still streams, from a good cursor
        s = await self.open_sse(f"room={ra}&room={rb}",
                                headers=[f"Last-Event-ID: {ep}/{ra}=3,{rb}=2"])
        await asyncio.to_thread(self.gw.wait_subscribers, ra, 2)
        await self.publish_n(pa, ra, 4, 4)
        self.assertEqual((await asyncio.to_thread(s.next_event))["id"],
                         f"{ep}/{ra}=4,{rb}=2")

    async def test_sse_refused_stream_creates_no_room(self):
        """A stream refused for its Last-Event-ID leaves no pattern room behind, refused
        before its rooms are joined (a malformed id) or after (a bare SEQ for a two-room
        stream). A cursor past the last seq of a room not made yet is no refusal: the
        room, a reset, then its first message."""
        for query in ("room=t:nope&last_event_id=abc",
                      "room=t:nope&room=t:nope2&last_event_id=5"):
            with self.subTest(query=query):
                r = await self.ahttp("GET", f"/events?{query}", timeout=3)
                self.assertError(r, 400, "bad_request")
                for room in ("t:nope", "t:nope2"):
                    info = await asyncio.to_thread(self.gw.room_info, room)
                    self.assertIsNone(info, f"a refused stream created {room} (GET /rooms)")
        s = await self.open_sse("room=t:nope&last_event_id=5")
        p = await self.publisher("t:nope")
        self.assertSSEReset(await asyncio.to_thread(s.next_event), "t:nope")
        await self.publish_n(p, "t:nope", 1, 1)
        self.assertSSEMessages(await asyncio.to_thread(s.take, 1), "t:nope", 1, 1)

    # ------------------------------------------------------------------ history

    async def test_history_ws_and_http(self):
        room = "h:hist"
        p = await self.publisher(room)
        ref = {}  # seq -> the live message object
        for k in range(1, 51):
            self.assertEqual(await p.publish(room, {"i": k}), k)
        for m in await p.take(50):
            ref[m["seq"]] = m
        cases = [  # (since, limit, first, last, more, gap)
            (None, None, 31, 50, False, None),
            (35, 10, 36, 45, True, None),
            (45, 10, 46, 50, False, None),
            (5, None, 31, 50, False, (6, 30)),
            (0, 1, 31, 31, True, (1, 30)),
            (29, 1000, 31, 50, False, (30, 30)),
            (30, 20, 31, 50, False, None),
            (49, 1, 50, 50, False, None),
            (50, None, None, None, False, None),
            (None, 5, 46, 50, False, None),
            (None, 1, 50, 50, False, None),
        ]
        c = await self.ws()  # history needs no join
        for since, limit, first, last, more, gap in cases:
            with self.subTest(since=since, limit=limit):
                args, q = {}, []
                if since is not None:
                    args["since"] = since
                    q.append(f"since={since}")
                if limit is not None:
                    args["limit"] = limit
                    q.append(f"limit={limit}")
                want = {"room": room, "epoch": self.epoch, "last_seq": 50, "more": more,
                        "messages": [ref[k] for k in range(first, last + 1)] if first else []}
                if gap:
                    want["gap"] = {"from": gap[0], "to": gap[1]}
                ans = await c.request("history", room=room, id="h", **args)
                self.assertEqual(ans, {"type": "history", "id": "h", **want})
                r = await self.ahttp("GET", f"/rooms/{room}/messages?" + "&".join(q))
                self.assertEqual(r.status, 200, r)
                self.assertTrue(r.content_type.startswith("application/json"), r.headers)
                self.assertEqual(r.json(), want)

    async def test_history_cursor_of_another_epoch(self):
        """A history cursor of another epoch or past the last seq is never refused
        (docs/PROTOCOL.md, "Epochs"): the answer says reset and starts at the room's
        first stored message; a cursor of this epoch is used as it is."""
        room = "t:hepoch"
        p = await self.publisher(room)
        await self.publish_n(p, room, 1, 4)
        old = other_epoch(self.epoch)
        cases = [  # (args, reset, seqs)
            ({"since": 2, "epoch": old}, True, [1, 2, 3, 4]),
            ({"since": 9}, True, [1, 2, 3, 4]),
            ({"since": 9, "epoch": self.epoch}, True, [1, 2, 3, 4]),
            ({"since": 2, "epoch": self.epoch}, False, [3, 4]),
            ({"since": 4}, False, []),
            ({"epoch": old}, False, [1, 2, 3, 4]),  # no cursor: nothing to reset
        ]
        for args, reset, seqs in cases:
            with self.subTest(**args):
                ans = await p.request("history", room=room, **args)
                q = "&".join(f"{k}={v}" for k, v in args.items())
                for http2 in (False, True):
                    r = await self.ahttp("GET", f"/rooms/{room}/messages?{q}", http2=http2)
                    self.assertEqual(r.status, 200, r)
                    body = r.json()
                    self.assertEqual(body, {k: v for k, v in ans.items()
                                            if k not in ("type", "id")})
                self.assertEqual(ans.get("reset", False), reset, ans)
                self.assertEqual(ans["epoch"], self.epoch, ans)
                self.assertEqual([m["seq"] for m in ans["messages"]], seqs, ans)
        # a pattern room that is not alive: empty, reset when the cursor is past 0
        r = await self.ahttp("GET", "/rooms/t:never/messages?since=3")
        self.assertEqual(r.json(), {"room": "t:never", "epoch": self.epoch, "reset": True,
                                    "last_seq": 0, "more": False, "messages": []})

    async def test_history_paging_by_bytes(self):
        """about limits.max_message_bytes per answer; `more` and since page through."""
        room = "h:pages"
        p = await self.publisher(room)
        for k in range(1, HIST + 1):
            self.assertEqual(await p.publish(room, {"i": k, "pad": "p" * 900}), k)
        for via in ("ws", "http"):
            with self.subTest(via=via):
                since, got, pages = 0, [], 0
                while True:
                    if via == "ws":
                        ans = await p.request("history", room=room, since=since, limit=1000)
                    else:
                        r = await self.ahttp("GET",
                                             f"/rooms/{room}/messages?since={since}&limit=1000")
                        self.assertEqual(r.status, 200, r)
                        ans = r.json()
                    pages += 1
                    self.assertGreater(len(ans["messages"]), 0, ans)
                    self.assertNotIn("gap", ans)
                    got += [m["seq"] for m in ans["messages"]]
                    since = got[-1]
                    self.assertEqual(ans["more"], since < HIST, ans["more"])
                    if not ans["more"] or pages > HIST:
                        break
                self.assertEqual(got, list(range(1, HIST + 1)))
                self.assertGreater(pages, 2, "20 x ~1 KB answered in pages of ~4 KB")
                self.assertLessEqual(pages, 10)

    async def test_history_bad_input(self):
        room = "t:hbad"
        p = await self.publisher(room)
        await self.publish_n(p, room, 1, 3)
        c = await self.ws()
        ws_bad = [{"since": -1}, {"since": "x"}, {"since": "1"}, {"since": 1.5},
                  {"since": None}, {"limit": 0}, {"limit": 1001},
                  {"limit": "a"}, {"limit": -1}, {"limit": 2.0}, {"limit": True},
                  {"epoch": ""}, {"epoch": "ABC"}, {"epoch": "x" * 17}, {"epoch": 7}]
        for k, args in enumerate(ws_bad):
            with self.subTest(ws=args):
                ans = await c.request("history", room=room, id=f"x{k}", **args)
                self.assertEqual((ans.get("type"), ans.get("code"), ans.get("id")),
                                 ("error", "bad_request", f"x{k}"), ans)
        http_bad = ["since=-1", "since=x", "since=1.5", "since=", "limit=0",
                    "limit=1001", "limit=a", "limit=-1", "limit=", "since=1&limit=0",
                    "since=99999999999999999999", "epoch=", "epoch=ABC",
                    "since=1&epoch=" + "x" * 17, "epoch=a%21"]
        for http2 in (False, True):
            for q in http_bad:
                with self.subTest(http2=http2, q=q):
                    self.assertError(await self.ahttp("GET", f"/rooms/{room}/messages?{q}",
                                                      http2=http2), 400, "bad_request")
        self.assertError(await self.ahttp("GET", "/rooms/nosuch/messages"), 404,
                         "unknown_room")
        ans = await c.request("history", room="nosuch", id="u")
        self.assertEqual((ans.get("type"), ans.get("code")), ("error", "unknown_room"), ans)
        # boundaries that are fine
        ans = await c.request("history", room=room, since=3, limit=1000)
        self.assertEqual((ans["type"], ans["messages"], ans["more"], ans["last_seq"]),
                         ("history", [], False, 3))
        r = await self.ahttp("GET", f"/rooms/{room}/messages?since=0&limit=1000")
        self.assertEqual([m["seq"] for m in r.json()["messages"]], [1, 2, 3], r)
        await c.assert_quiet()


if __name__ == "__main__":
    run_tests()
