"""WebSocket face: /ws, subprotocol roomgate.v1 (docs/PROTOCOL.md)."""
import asyncio
import json
import time

from websockets.legacy.client import WebSocketClientProtocol

from harness import GatewayTestCase, run_tests

MAX = 4096  # limits.max_message_bytes of these tests


def frame_of_size(room, size):
    """A publish frame of exactly `size` bytes."""
    head = json.dumps({"type": "publish", "room": room, "id": "big", "data": ""},
                      separators=(",", ":"))
    pad = size - len(head)
    assert pad >= 0
    return head.replace('"data":""', '"data":"' + "x" * pad + '"')


def chunks(text, n):
    return [text[i:i + n] for i in range(0, len(text), n)]


class WSTest(GatewayTestCase):
    CONFIG = {"limits": {"max_rooms_per_connection": 4}}

    def assertMessage(self, msg, room, seq, data):
        self.assertEqual(msg.get("type"), "message")
        self.assertEqual(msg.get("room"), room, msg)
        self.assertEqual(msg.get("seq"), seq, msg)
        self.assertEqual(msg.get("data"), data, msg)
        self.assertIsInstance(msg.get("ts"), int, msg)
        self.assertLess(abs(msg["ts"] - time.time() * 1000), 60_000, f"ts far off: {msg}")

    def assertErrorFrame(self, ans, code, id_=None):
        self.assertEqual(ans.get("type"), "error", ans)
        self.assertEqual(ans.get("code"), code, ans)
        self.assertIsInstance(ans.get("message"), str, ans)
        if id_ is not None:
            self.assertEqual(ans.get("id"), id_, f"error does not echo id: {ans}")

    async def test_subprotocol_negotiated(self):
        a = await self.ws()
        self.assertEqual(a.ws.subprotocol, "roomgate.v1")
        await a.ping()

    async def test_join_publish_fanout_seq(self):
        room = "t:fanout"
        a, b = await self.ws(), await self.ws()
        self.assertEqual(await a.join(room), 0)
        self.assertEqual(await b.join(room), 0)
        for i in range(1, 4):
            self.assertEqual(await a.publish(room, {"n": i}), i)
        for c in (a, b):
            for i, m in enumerate(await c.take(3), 1):
                self.assertMessage(m, room, i, {"n": i})
        c = await self.ws()
        self.assertEqual(await c.join(room), 3, "joined.seq is the room's last seq")
        self.assertEqual(await b.publish(room, "four"), 4)
        for cl in (a, b, c):
            self.assertMessage(await cl.message(), room, 4, "four")
            await cl.assert_quiet()

    async def test_data_any_json_value_compact(self):
        room = "t:values"
        a = await self.ws()
        await a.join(room)
        await a.send_raw('{ "type" : "publish", "room" : "t:values", "id" : "sp",'
                         ' "data" : { "a" : [ 1 , 2 ] , "s" : "x y" } }')
        self.assertEqual(await a.answer(), {"type": "ack", "room": room, "seq": 1, "id": "sp"})
        msg, raw = await a.message_raw()
        self.assertIn('"data":{"a":[1,2],"s":"x y"}', raw, "data is re-encoded compactly")
        values = ["text", 42, -7, True, False, None, [1, "two", None], {"nested": {"k": []}},
                  "unicode \u00e9\u4e2d \U0001F600", "quote\" back\\ nl\n"]
        for seq, v in enumerate(values, 2):
            self.assertEqual(await a.publish(room, v), seq)
            self.assertMessage(await a.message(), room, seq, v)

    async def test_two_rooms_one_connection(self):
        a, b = await self.ws(), await self.ws()
        await a.join("t:two1")
        await a.join("t:two2")
        await b.join("t:two1")
        self.assertEqual(await a.publish("t:two1", "x"), 1)
        self.assertEqual(await a.publish("t:two2", "y"), 1)
        self.assertEqual(await a.publish("t:two2", "z"), 2)
        got = await a.take(3)
        self.assertMessage(got[0], "t:two1", 1, "x")
        self.assertMessage(got[1], "t:two2", 1, "y")
        self.assertMessage(got[2], "t:two2", 2, "z")
        self.assertMessage(await b.message(), "t:two1", 1, "x")
        await b.assert_quiet()

    async def test_join_twice_no_duplicate(self):
        a = await self.ws()
        self.assertEqual(await a.join("t:twice"), 0)
        self.assertEqual(await a.join("t:twice"), 0)
        await a.publish("t:twice", 1)
        self.assertMessage(await a.message(), "t:twice", 1, 1)
        await asyncio.sleep(0.2)
        await a.assert_quiet()

    async def test_leave(self):
        a, b = await self.ws(), await self.ws()
        await a.join("t:leave")
        await b.join("t:leave")
        self.assertEqual(await a.request("leave", room="t:leave", id="L1"),
                         {"type": "left", "room": "t:leave", "id": "L1"})
        await b.publish("t:leave", "after")
        self.assertMessage(await b.message(), "t:leave", 1, "after")
        await asyncio.sleep(0.2)
        await a.assert_quiet()
        self.assertErrorFrame(await a.request("publish", room="t:leave", data=1, id="L2"),
                              "not_joined", "L2")
        self.assertErrorFrame(await a.request("leave", room="t:leave", id="L3"),
                              "not_joined", "L3")

    async def test_ping_pong_ids(self):
        a = await self.ws()
        self.assertEqual(await a.request("ping", id="abc"), {"type": "pong", "id": "abc"})
        long_id = "i" * 64
        self.assertEqual((await a.request("ping", id=long_id))["id"], long_id)
        utf8_id = "\u00e9" * 32  # 64 bytes
        self.assertEqual((await a.request("ping", id=utf8_id))["id"], utf8_id)
        await a.send({"type": "ping"})
        ans = await a.answer()
        self.assertEqual(ans.get("type"), "pong")
        self.assertNotIn("id", ans)
        # unknown fields are ignored
        await a.send({"type": "ping", "id": "u", "extra": [1, {"x": None}]})
        self.assertEqual(await a.answer(), {"type": "pong", "id": "u"})

    async def test_no_subprotocol_is_served(self):
        a = await self.ws(subprotocols=None)
        self.assertIsNone(a.ws.subprotocol)
        await a.ping()
        self.assertEqual(await a.join("t:nosub"), 0)
        self.assertEqual(await a.publish("t:nosub", "hi"), 1)
        self.assertMessage(await a.message(), "t:nosub", 1, "hi")

    async def test_pattern_room_created_on_first_join(self):
        self.assertIsNone(await asyncio.to_thread(self.gw.room_info, "dm:alice"))
        a = await self.ws()
        self.assertEqual(await a.join("dm:alice"), 0)
        info = await asyncio.to_thread(self.gw.room_info, "dm:alice")
        self.assertIsNotNone(info, "dm:alice listed in GET /rooms after join")
        self.assertEqual(info.get("subscribers"), 1)
        self.assertEqual(await a.publish("dm:alice", "hello"), 1)
        self.assertMessage(await a.message(), "dm:alice", 1, "hello")

    async def test_rooms_per_connection_limit(self):
        a = await self.ws()
        for i in range(4):
            await a.join(f"t:lim{i}")
        await a.join("t:lim0")  # joining again does not count
        self.assertErrorFrame(await a.request("join", room="t:lim4", id="x"),
                              "limit_exceeded", "x")
        self.assertRegex(self.gw.stderr(), r"\[conn \d+\] limits: 127\.0\.0\.1: "
                         r"limits\.max_rooms_per_connection reached: answered limit_exceeded")
        await a.request("leave", room="t:lim3")
        await a.join("t:lim4")

    async def test_size_boundary(self):
        a = await self.ws()
        await a.join("t:size")
        exact = frame_of_size("t:size", MAX)
        self.assertEqual(len(exact.encode()), MAX)
        await a.send_raw(exact)
        self.assertEqual(await a.answer(), {"type": "ack", "room": "t:size", "seq": 1,
                                            "id": "big"})
        self.assertEqual((await a.message())["data"], json.loads(exact)["data"])
        await a.send_raw(frame_of_size("t:size", MAX + 1))
        self.assertErrorFrame(await a.answer(), "too_large")
        await a.assert_quiet()

    async def test_fragmented_message_reassembled(self):
        a = await self.ws()
        await a.join("t:frag")
        text = json.dumps({"type": "publish", "room": "t:frag", "id": "f1",
                           "data": {"parts": "abc" * 100}})
        await a.send_raw(chunks(text, 50))
        self.assertEqual(await a.answer(), {"type": "ack", "room": "t:frag", "seq": 1,
                                            "id": "f1"})
        self.assertMessage(await a.message(), "t:frag", 1, {"parts": "abc" * 100})
        await a.send_raw(['{"type":"pi', 'ng","id":"f2"}'])
        self.assertEqual(await a.answer(), {"type": "pong", "id": "f2"})

    async def test_garbage_keeps_connections_working(self):
        """Every refused frame gets its exact error; nothing else happens; the same
        connection and another one keep working (publish delivered to both)."""
        room = "t:garbage"
        a, b = await self.ws(), await self.ws()
        await a.join(room)
        await b.join(room)
        await a.join("news")
        long_room = "t:" + "r" * 126  # 128 characters
        cases = [
            ('{"type":"ping"', "bad_json", None),
            ('{"type":"ping","id":"g"} trailing', "bad_json", None),
            ('{"type":"ping",}', "bad_json", None),
            ("", "bad_json", None),
            ("\u00e9\u4e2d", "bad_json", None),
            ("[" * 3000, "bad_json", None),
            ("[1]", "bad_request", None),
            ('"x"', "bad_request", None),
            ("3", "bad_request", None),
            ("null", "bad_request", None),
            ("{}", "bad_request", None),
            ('{"id":"g0"}', "bad_request", "g0"),
            ('{"type":5,"id":"g1"}', "bad_request", "g1"),
            ('{"type":"shout","id":"g2"}', "unknown_type", "g2"),
            ('{"type":"JOIN","room":"lobby","id":"g3"}', "unknown_type", "g3"),
            ('{"type":"join","id":"g4"}', "bad_request", "g4"),
            ('{"type":"join","room":5,"id":"g5"}', "bad_request", "g5"),
            ('{"type":"join","room":null,"id":"g6"}', "bad_request", "g6"),
            ('{"type":"join","room":["lobby"],"id":"g7"}', "bad_request", "g7"),
            ('{"type":"ping","id":5}', "bad_request", None),
            ('{"type":"ping","id":""}', "bad_request", None),
            ('{"type":"ping","id":"' + "x" * 65 + '"}', "bad_request", None),
            ('{"type":"ping","id":"' + "\u00e9" * 33 + '"}', "bad_request", None),
            ('{"type":"join","room":"' + long_room + 'x","id":"g8"}', "bad_request", "g8"),
            ('{"type":"join","room":"a b","id":"g9"}', "bad_request", "g9"),
            ('{"type":"join","room":"a\\u0001b","id":"g10"}', "bad_request", "g10"),
            ('{"type":"join","room":"lobby\\n","id":"g11"}', "bad_request", "g11"),
            ('{"type":"join","room":"","id":"g12"}', "bad_request", "g12"),
            ('{"type":"join","room":"lob/by","id":"g13"}', "bad_request", "g13"),
            ('{"type":"join","room":"caf\u00e9","id":"g14"}', "bad_request", "g14"),
            ('{"type":"join","room":"nosuchroom","id":"g15"}', "unknown_room", "g15"),
            ('{"type":"publish","room":"news","data":1,"id":"g16"}', "forbidden", "g16"),
            ('{"type":"publish","room":"lobby","data":1,"id":"g17"}', "not_joined", "g17"),
            ('{"type":"leave","room":"lobby","id":"g18"}', "not_joined", "g18"),
            ('{"type":"publish","room":"t:garbage","id":"g19"}', "bad_request", "g19"),
            ('{"type":"publish","data":1,"id":"g20"}', "bad_request", "g20"),
            ('{"type":"leave","room":7,"id":"g21"}', "bad_request", "g21"),
            (frame_of_size(room, MAX + 1), "too_large", None),
            (frame_of_size(room, 65536), "too_large", None),
            (chunks(frame_of_size(room, 5000), 1000), "too_large", None),  # fragments
            (b'{"type":"ping","id":"bin"}', "bad_request", None),  # binary frame
            (b"\x00\xff", "bad_request", None),
        ]
        seq = 0
        for raw, code, id_ in cases:
            with self.subTest(frame=repr(raw)[:80]):
                await a.send_raw(raw)
                self.assertErrorFrame(await a.answer(), code, id_)
                seq += 1
                self.assertEqual(await b.publish(room, {"after": seq}), seq)
                for c in (a, b):
                    self.assertMessage(await c.message(), room, seq, {"after": seq})
                await a.assert_quiet()
        self.assertEqual(await a.join(long_room), 0, "a 128-character name is valid")

    async def test_invalid_utf8_closes_1007(self):
        a, b = await self.ws(), await self.ws()
        await a.ws.write_frame(True, 0x1, b'{"type":"ping","id":"\xff\xfe"}')
        try:
            await asyncio.wait_for(a.ws.wait_closed(), 5)
        except asyncio.TimeoutError:
            self.fail("connection not closed after invalid UTF-8 text frame")
        self.assertEqual(a.ws.close_code, 1007)
        await b.ping()

    async def test_permessage_deflate_client(self):
        a = await self.ws(compression="deflate")
        await a.join("t:deflate")
        data = {"text": "compressible " * 100}
        self.assertEqual(await a.publish("t:deflate", data), 1)
        self.assertEqual((await a.message())["data"], data)
        # the limit applies to the message, not to its compressed size on the wire
        await a.send_raw(frame_of_size("t:deflate", 100_000))
        self.assertErrorFrame(await a.answer(), "too_large")
        await a.ping()


class CountingProtocol(WebSocketClientProtocol):
    """Counts the gateway's pings; answers them unless `mute`."""
    mute = False

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.gw_pings = 0

    async def pong(self, data=b""):
        self.gw_pings += 1
        if not self.mute:
            await super().pong(data)


class MuteProtocol(CountingProtocol):
    mute = True


class WSPingTest(GatewayTestCase):
    CONFIG = {"ws": {"ping_seconds": 1, "ping_timeout_seconds": 1}}

    async def test_idle_pinged_and_dead_peer_closed(self):
        start = time.monotonic()
        live = await self.ws(create_protocol=CountingProtocol)
        mute = await self.ws(create_protocol=MuteProtocol)
        await live.ping()
        await mute.ping()
        try:
            await asyncio.wait_for(mute.ws.wait_closed(), 8)
        except asyncio.TimeoutError:
            self.fail("a peer that answers no ping is still open after 8 s"
                      " (ping 1 s, timeout 1 s)")
        self.assertGreaterEqual(mute.ws.gw_pings, 1, "the gateway pinged the idle peer")
        await asyncio.sleep(max(0.0, start + 4.5 - time.monotonic()))
        self.assertTrue(live.ws.open, "a peer that answers pings stays open")
        self.assertGreaterEqual(live.ws.gw_pings, 2, "idle peer pinged every ping_seconds")
        await live.ping()


class WSShutdownTest(GatewayTestCase):
    async def test_sigterm_closes_1001_and_exits_0(self):
        a = await self.ws()
        await a.join("lobby")
        rc = await asyncio.to_thread(self.gw.stop)
        self.assertEqual(rc, 0, "exit code on SIGTERM")
        try:
            await asyncio.wait_for(a.ws.wait_closed(), 5)
        except asyncio.TimeoutError:
            self.fail("WS connection still open after the gateway exited")
        self.assertEqual(a.ws.close_code, 1001, "close code when the gateway shuts down")


if __name__ == "__main__":
    run_tests()
