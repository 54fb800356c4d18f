"""Server-Sent Events face: GET /events?room=... (docs/PROTOCOL.md)."""
import asyncio
import json
import time

from harness import GatewayTestCase, event_epoch, http_version_used, run_tests


class SSETest(GatewayTestCase):
    CONFIG = {"sse": {"keepalive_seconds": 1, "retry_ms": 1500},
              "limits": {"max_rooms_per_connection": 4}}

    async def open_stream(self, query, http2, rooms):
        s = self.sse(query, http2=http2)
        await asyncio.to_thread(s.wait_started)
        for room in rooms:
            await asyncio.to_thread(self.gw.wait_subscribers, room, 1)
        return s

    async def check_stream(self, http2):
        room = f"t:sse{2 if http2 else 1}"
        s = await self.open_stream(f"room={room}", http2, [room])
        self.assertEqual(s.lines[0], "retry: 1500", "first line is retry: from sse.retry_ms")
        self.assertEqual(s.status_line().split()[:2], ["HTTP/2" if http2 else "HTTP/1.1", "200"])
        h = s.headers()
        self.assertTrue(h.get("content-type", "").startswith("text/event-stream"), h)
        self.assertEqual(h.get("cache-control"), "no-cache")
        self.assertEqual(h.get("x-accel-buffering"), "no")

        w = await self.ws()
        await w.join(room)
        self.assertEqual(await w.publish(room, {"via": "ws"}), 1)
        r = await self.ahttp("POST", f"/rooms/{room}/messages", '{"via":"http"}', http2=http2)
        self.assertEqual(r.status, 201, r)
        for seq in (1, 2):
            _, raw = await w.message_raw()
            ev = await asyncio.to_thread(s.next_event)
            self.assertEqual(ev, {"id": f"{w.epoch}/{seq}", "event": "message", "data": raw},
                             "SSE event carries the WS message frame byte for byte; id"
                             " EPOCH/SEQ with the epoch of the WS joined")
            self.assertEqual(json.loads(raw)["seq"], seq)
        self.assertTrue(s.alive())

    async def test_stream_http1(self):
        await self.check_stream(http2=False)

    async def test_stream_http2(self):
        self.assertEqual(await asyncio.to_thread(http_version_used, self.gw, True), "2",
                         "ALPN h2 negotiated")
        await self.check_stream(http2=True)

    async def test_multi_room_cursor(self):
        s = await self.open_stream("room=t:ma&room=news", False, ["t:ma", "news"])
        w = await self.ws()
        await w.join("t:ma")
        await w.publish("t:ma", "a1")
        for body in ('"n1"', '"n2"'):
            self.assertEqual((await self.ahttp("POST", "/rooms/news/messages", body)).status,
                             201)
        await w.publish("t:ma", "a2")
        got = await asyncio.to_thread(s.take, 4)
        self.assertEqual([e["id"] for e in got],
                         [f"{w.epoch}/{c}" for c in ("t:ma=1,news=0", "t:ma=1,news=1",
                                                     "t:ma=1,news=2", "t:ma=2,news=2")])
        self.assertEqual([(json.loads(e["data"])["room"], json.loads(e["data"])["data"])
                          for e in got],
                         [("t:ma", "a1"), ("news", "n1"), ("news", "n2"), ("t:ma", "a2")])

    async def test_keepalive_comments(self):
        for http2 in (False, True):
            with self.subTest(http2=http2):
                s = await self.open_stream("room=t:ka", http2, [])
                await asyncio.sleep(3.5)
                texts = [c for _, c in s.comments]
                self.assertGreaterEqual(len(texts), 2, f"keepalives in 3.5 s: {s.lines}")
                self.assertEqual(set(texts), {"keepalive"})
                await s.close()

    async def test_errors(self):
        r129 = "t:" + "x" * 127
        cases = [
            ("GET", "/events", 400, "bad_request"),
            ("GET", "/events?", 400, "bad_request"),
            ("GET", "/events?foo=bar", 400, "bad_request"),
            ("GET", "/events?room=", 400, "bad_request"),
            ("GET", "/events?room=bad%20name", 400, "bad_request"),
            ("GET", "/events?room=a%01b", 400, "bad_request"),
            ("GET", f"/events?room={r129}", 400, "bad_request"),
            ("GET", "/events?room=nosuchroom", 404, "unknown_room"),
            ("GET", "/events?room=t:err&room=nosuchroom", 404, "unknown_room"),
            ("GET", "/events?room=t:err&room=t:err", 400, "bad_request"),
            ("GET", "/events?room=t:e1&room=t:e2&room=t:e3&room=t:e4&room=t:e5",
             429, "limit_exceeded"),
            ("POST", "/events?room=lobby", 405, "method_not_allowed"),
            ("DELETE", "/events?room=lobby", 405, "method_not_allowed"),
        ]
        for http2 in (False, True):
            for method, path, status, code in cases:
                with self.subTest(http2=http2, method=method, path=path[:60]):
                    self.assertError(await self.ahttp(method, path, http2=http2), status, code)
        for http2 in (False, True):  # garbage: refused somehow, never a stream
            for path in ("/events?room=%ZZ", "/events?room=%", "/events?room=lobby%00",
                         "/events?" + "room=lobby&" * 2000):
                with self.subTest(http2=http2, path=path[:40]):
                    r = await self.ahttp("GET", path, http2=http2, timeout=3)
                    self.assertTrue(r.status == 0 or 400 <= r.status < 500, r)
                    self.assertFalse(r.content_type.startswith("text/event-stream"), r)
        names = {r["name"] for r in (await asyncio.to_thread(self.gw.rooms))["rooms"]}
        self.assertFalse(names & {"t:err", "t:e1", "t:e2", "t:e3"},
                         "a refused /events request created rooms")
        # the gateway still streams
        s = await self.open_stream("room=t:after", True, ["t:after"])
        await self.ahttp("POST", "/rooms/t:after/messages", "1")
        ev_id = (await asyncio.to_thread(s.next_event))["id"]
        self.assertEqual(ev_id, f"{event_epoch(ev_id)}/1")

    async def test_client_going_away_unsubscribes(self):
        a = await self.open_stream("room=t:gone", False, [])
        b = await self.open_stream("room=t:gone", True, [])
        await asyncio.to_thread(self.gw.wait_subscribers, "t:gone", 2)
        await a.close()
        await asyncio.to_thread(self.gw.wait_subscribers, "t:gone", 1)
        await b.close()
        # a pattern room that never held a message goes with its last subscriber
        deadline = time.monotonic() + 5
        while self.gw.room_info("t:gone") is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.assertIsNone(self.gw.room_info("t:gone"))


class SSEQuietTest(GatewayTestCase):
    """lws idle timeouts must not kill quiet streams."""
    CONFIG = {"ws": {"ping_seconds": 2, "ping_timeout_seconds": 2},
              "sse": {"keepalive_seconds": 60}}

    async def test_quiet_streams_survive(self):
        h2 = self.sse("room=t:quiet", http2=True)
        h1 = self.sse("room=t:quiet", http2=False)
        for s in (h1, h2):
            await asyncio.to_thread(s.wait_started)
        await asyncio.to_thread(self.gw.wait_subscribers, "t:quiet", 2)
        t0 = time.monotonic()
        await asyncio.sleep(12)
        self.assertTrue(h2.alive(), f"HTTP/2 stream closed after ~{time.monotonic() - t0:.0f}s"
                                    f" of quiet")
        self.assertTrue(h1.alive(), "HTTP/1.1 stream closed during quiet")
        r = await self.ahttp("POST", "/rooms/t:quiet/messages", '{"late":true}')
        self.assertEqual(r.status, 201, r)
        epochs = set()
        for name, s in (("h2", h2), ("h1", h1)):
            ev = await asyncio.to_thread(s.next_event)
            epochs.add(event_epoch(ev["id"]))
            self.assertEqual(ev["id"], f"{event_epoch(ev['id'])}/1", name)
            self.assertEqual(json.loads(ev["data"])["data"], {"late": True}, name)
            self.assertEqual(s.comments, [], f"{name}: keepalive before keepalive_seconds=60")
        self.assertEqual(len(epochs), 1, f"one gateway, one epoch: {epochs}")


if __name__ == "__main__":
    run_tests()
