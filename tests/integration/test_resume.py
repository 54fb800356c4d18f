"""Resuming a subscription after a reconnect (docs/PROTOCOL.md, "Delivery guarantees"):
WebSocket `join {since}`, SSE `Last-Event-ID` (header, as EventSource sends it, and
the `last_event_id` query parameter, bare and named form, HTTP/1.1 and HTTP/2), the
`gap` notice when the ring no longer reaches back, refused cursors, and `history`
over WebSocket and HTTP."""
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

from harness import (DEFAULT_ROOMS, NODE_DIR, GatewayTestCase, TCPProxy, die_with_parent,
                     expect_stream_event, node_ready, run_tests)

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
        p = await self.ws()
        await p.join(room)
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
                         [str(k) for k in range(first, last + 1)], "SSE ids")
        self.assertEqual([e.get("event") for e in events], ["message"] * len(events))
        self.assertMessages([json.loads(e["data"]) for e in events], room, first, last)

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
        ans = await c2.request("join", room=room, since=last, id="resume")
        self.assertEqual(ans, {"type": "joined", "room": room, "seq": 510, "id": "resume"})
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
        for since, gap in ((5, (6, 30)), (0, (1, 30)), (29, (30, 30)), (30, None)):
            with self.subTest(since=since):
                c = await self.ws()
                await c.send({"type": "join", "room": room, "since": since, "id": "j"})
                frames = await read_frames(c, 2 + 20 if gap else 1 + 20)
                self.assertEqual(frames[0], {"type": "joined", "room": room, "seq": 50,
                                             "id": "j"})
                if gap:
                    self.assertEqual(frames[1], {"type": "gap", "room": room,
                                                 "from": gap[0], "to": gap[1]},
                                     "gap right after joined")
                self.assertMessages(frames[2 if gap else 1:], room, 31, 50)
                await asyncio.sleep(0.1)
                await c.assert_quiet()
                await c.close()

    async def test_ws_bad_since_refused_changes_nothing(self):
        room = "t:badsince"
        p = await self.publisher(room)
        await self.publish_n(p, room, 1, 3)
        c = await self.ws()
        bad = [-1, "5", 1.5, 4, 1000000, None, True, [1], {"seq": 1}]
        for k, since in enumerate(bad):
            with self.subTest(since=since):
                ans = await c.request("join", room=room, since=since, id=f"b{k}")
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
        ans = await c.request("join", room=room, since=6, id="beyond")
        self.assertEqual((ans.get("type"), ans.get("code")), ("error", "bad_request"), ans)
        await self.publish_n(p, room, 6, 6)
        self.assertMessages(await c.take(1), room, 6, 6)
        await asyncio.sleep(0.2)
        await c.assert_quiet()

    async def test_ws_refused_join_creates_no_room(self):
        """"A refused message changes nothing": a join refused for its since must not
        leave a pattern room behind."""
        c = await self.ws()
        ans = await c.request("join", room="t:never", since=5, id="n")
        self.assertEqual((ans.get("type"), ans.get("code")), ("error", "bad_request"), ans)
        info = await asyncio.to_thread(self.gw.room_info, "t:never")
        self.assertIsNone(info, "a refused join created the pattern room (GET /rooms)")

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
        self.assertEqual(ids, [str(k) for k in range(1, total + 1)],
                         "eventsource: every seq exactly once, in order (lastEventId)")
        self.assertMessages([json.loads(x["data"]) for x in lines], room, 1, total)
        opens = stderr_text().splitlines().count("open")
        self.assertGreaterEqual(opens, 3, f"opened, then reopened after each cut:"
                                          f" {stderr_text()[-500:]!r}")
        print(f"\neventsource: {total} messages over {opens} connections,"
              f" {proxy.accepted} proxied")

    async def test_sse_resume_curl(self):
        """Last-Event-ID header and last_event_id parameter, bare and named form, over
        HTTP/1.1 and HTTP/2: exactly the messages after the cursor, then live ones."""
        n = 0
        for http2 in (False, True):
            for how in ("header", "query", "header-named", "query-named", "query-encoded"):
                n += 1
                if http2 and how.startswith("header"):
                    continue  # documented caveat: test_sse_http2_header_caveat
                room = f"t:cr{n}"
                with self.subTest(http2=http2, how=how):
                    p = await self.publisher(room)
                    await self.publish_n(p, room, 1, 10)
                    cursor = f"{room}=4" if "named" in how or "encoded" in how else "4"
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

    async def test_sse_http2_header_caveat(self):
        """docs/PROTOCOL.md, "HTTP/2 caveat": lws 4.1.6 drops the Last-Event-ID header
        on HTTP/2, so the stream starts live (and a bad id is not even seen). This pins
        the documented limitation; the query parameter works (test_sse_resume_curl)."""
        room = "t:h2hdr"
        p = await self.publisher(room)
        await self.publish_n(p, room, 1, 5)
        s = await self.open_sse(f"room={room}", http2=True, headers=["Last-Event-ID: 2"])
        bad = await self.open_sse(f"room={room}", http2=True, headers=["Last-Event-ID: abc"])
        await asyncio.to_thread(self.gw.wait_subscribers, room, 3)
        await self.publish_n(p, room, 6, 6)
        for stream in (s, bad):
            self.assertSSEMessages(await asyncio.to_thread(stream.take, 1), room, 6, 6)
        sys.stderr.write("\n*** NOTE: over HTTP/2 the Last-Event-ID header is ignored"
                         " (documented lws 4.1.6 caveat); resume over h2 needs"
                         " ?last_event_id= ***\n")

    async def test_sse_resume_zero_and_last(self):
        room = "t:cz"
        p = await self.publisher(room)
        await self.publish_n(p, room, 1, 3)
        a = await self.open_sse(f"room={room}", headers=["Last-Event-ID: 0"])
        b = await self.open_sse(f"room={room}&last_event_id=3", http2=True)
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
        variants = [
            (False, [f"Last-Event-ID: {ra}=2,{rb}=4"], ""),
            (False, [f"Last-Event-ID: {rb}=4,{ra}=2"], ""),  # h2: header not seen (caveat)
            (False, [], f"&last_event_id={ra}=2,{rb}=4"),
            (True, [], "&last_event_id=" + urllib.parse.quote(f"{ra}=2,{rb}=4", safe="")),
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
                    self.assertEqual(e["id"], f"{ra}={cur[ra]},{rb}={cur[rb]}",
                                     "id: every room's cursor after this event")
                    self.assertEqual(m["data"], {"i": m["seq"]})
                self.assertEqual(got, {ra: [3, 4, 5], rb: [5, 6, 7]})
        await asyncio.to_thread(self.gw.wait_subscribers, rb, 1 + len(streams))
        await self.publish_n(pb, rb, 8, 8)
        for s, *_ in streams:
            e = await asyncio.to_thread(s.next_event)
            self.assertEqual(e["id"], f"{ra}=5,{rb}=8")
            self.assertEqual(json.loads(e["data"])["seq"], 8)
            self.assertTrue(s.events.empty(), f"extra events: {s.lines[-4:]}")

    async def test_sse_named_cursor_rejoins_room_the_url_lacks(self):
        """A named cursor for a room the URL lacks (added to the stream with
        POST /streams/{id}/rooms) joins it again, from its cursor."""
        ra, rb = "t:ja", "t:jb"
        pa, pb = await self.publisher(ra), await self.publisher(rb)
        await self.publish_n(pa, ra, 1, 3)
        await self.publish_n(pb, rb, 1, 3)
        s = await self.open_sse(f"room={ra}", headers=[f"Last-Event-ID: {ra}=1,{rb}=1"])
        cur, got = {ra: 1, rb: 1}, {ra: [], rb: []}
        for e in await asyncio.to_thread(s.take, 4):
            m = json.loads(e["data"])
            got[m["room"]].append(m["seq"])
            cur[m["room"]] = m["seq"]
            self.assertEqual(e["id"], f"{ra}={cur[ra]},{rb}={cur[rb]}")
        self.assertEqual(got, {ra: [2, 3], rb: [2, 3]})
        await asyncio.to_thread(self.gw.wait_subscribers, rb, 2)
        await self.publish_n(pb, rb, 4, 4)
        e = await asyncio.to_thread(s.next_event)
        self.assertEqual((e["id"], json.loads(e["data"])["room"]), (f"{ra}=3,{rb}=4", rb))

    async def test_sse_since_beyond_history_gap(self):
        for http2, how in ((False, "header"), (True, "query")):
            room = f"h:sse{int(http2)}"
            with self.subTest(http2=http2, how=how):
                p = await self.publisher(room)
                await self.publish_n(p, room, 1, 50)
                s = await self.open_sse(
                    f"room={room}" + ("&last_event_id=5" if how == "query" else ""),
                    http2=http2, headers=["Last-Event-ID: 5"] if how == "header" else [])
                events = await asyncio.to_thread(s.take, 21)
                self.assertEqual(s.lines[0], f"retry: {RETRY_MS}")
                self.assertEqual(events[0].get("event"), "gap", f"gap first: {events[0]}")
                self.assertNotIn("id", events[0], "a gap does not move the cursor")
                self.assertEqual(json.loads(events[0]["data"]),
                                 {"type": "gap", "room": room, "from": 6, "to": 30})
                self.assertSSEMessages(events[1:], room, 31, 50)
                await self.publish_n(p, room, 51, 51)
                self.assertSSEMessages(await asyncio.to_thread(s.take, 1), room, 51, 51)
                await s.close()

    async def test_sse_bad_last_event_id(self):
        ra, rb = "t:sa", "t:sb"
        pa, pb = await self.publisher(ra), await self.publisher(rb)
        await self.publish_n(pa, ra, 1, 3)
        await self.publish_n(pb, rb, 1, 2)
        # t:sb is not in the URL: a named cursor for it rejoins it (a room added with
        # POST /streams/{id}/rooms), so only an impossible seq for it is refused
        single = ["abc", "5,6", f"{ra}=x", "other=3", f"{rb}=3", "4", f"{ra}=4", "1000000",
                  "9999999999999999999", "18446744073709551616", "-1", "+1", "1.5",
                  f"{ra}=1,{ra}=2", f"{ra}=1,", f"={ra}", "1=2=3"]
        double = ["2", f"{ra}=1,{rb}=3", f"{ra}=1,other=1", f"{ra}=4,{rb}=1",
                  f"{ra}=1;{rb}=1", f"{ra}=9999999999999999999,{rb}=1"]
        before = {r: (await asyncio.to_thread(self.gw.room_info, r))["subscribers"]
                  for r in (ra, rb)}
        self.assertEqual(before, {ra: 1, rb: 1})
        for http2 in (False, True):
            for query, ids in ((f"room={ra}", single), (f"room={ra}&room={rb}", double)):
                for bad in ids:
                    # over HTTP/2 the header is not seen (documented caveat)
                    for how in (("query",) if http2 else ("header", "query")):
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
                                headers=[f"Last-Event-ID: {ra}=3,{rb}=2"])
        await asyncio.to_thread(self.gw.wait_subscribers, ra, 2)
        await self.publish_n(pa, ra, 4, 4)
        self.assertEqual((await asyncio.to_thread(s.next_event))["id"], f"{ra}=4,{rb}=2")

    async def test_sse_refused_stream_creates_no_room(self):
        r = await self.ahttp("GET", "/events?room=t:nope&last_event_id=5", timeout=3)
        self.assertError(r, 400, "bad_request")
        info = await asyncio.to_thread(self.gw.room_info, "t:nope")
        self.assertIsNone(info, "a refused stream created the pattern room (GET /rooms)")

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
                want = {"room": room, "last_seq": 50, "more": more,
                        "messages": [ref[k] for k in range(first, last + 1)] if first else []}
                if gap:
                    want["gap"] = {"from": gap[0], "to": gap[1]}
                ans = await c.request("history", room=room, id="h", **args)
                self.assertEqual(ans, {"type": "history", "id": "h", **want})
                r = await self.ahttp("GET", f"/rooms/{room}/messages?" + "&".join(q))
                self.assertEqual(r.status, 200, r)
                self.assertTrue(r.content_type.startswith("application/json"), r.headers)
                self.assertEqual(r.json(), want)

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
                  {"since": 4}, {"since": None}, {"limit": 0}, {"limit": 1001},
                  {"limit": "a"}, {"limit": -1}, {"limit": 2.0}, {"limit": True}]
        for k, args in enumerate(ws_bad):
            with self.subTest(ws=args):
                ans = await c.request("history", room=room, id=f"x{k}", **args)
                self.assertEqual((ans.get("type"), ans.get("code"), ans.get("id")),
                                 ("error", "bad_request", f"x{k}"), ans)
        http_bad = ["since=-1", "since=x", "since=4", "since=1.5", "since=", "limit=0",
                    "limit=1001", "limit=a", "limit=-1", "limit=", "since=1&limit=0",
                    "since=99999999999999999999"]
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
