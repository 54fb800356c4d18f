"""Idempotent publish (docs/PROTOCOL.md, "Delivery guarantees", "publish retries"): a
publish `id` (WebSocket) or `Idempotency-Key` (HTTP) that the room still holds is not
stored again: the answer carries the original seq and `"duplicate": true`; the same key
with other data is refused (`conflict`). Keys are room-scoped and live as long as their
message is in the room's ring."""
import asyncio
import json
import urllib.parse

from harness import (DEFAULT_ROOMS, GatewayTestCase, event_seq, expect_stream_event,
                     run_tests, stream_epoch)

EVICT_HISTORY = 3


class IdempotencyTest(GatewayTestCase):
    CONFIG = {"rooms": DEFAULT_ROOMS + [
        {"pattern": "k:*", "history": EVICT_HISTORY, "idle_seconds": 300}]}

    async def subscribers(self, room):
        """A WS subscriber and an SSE subscriber of room."""
        w = await self.ws()
        await w.join(room)
        s = self.sse(f"room={room}")
        await asyncio.to_thread(expect_stream_event, s)
        await asyncio.to_thread(self.gw.wait_subscribers, room, 2)
        return w, s

    async def assertDelivered(self, w, s, room, datas):
        """w and s got exactly these messages (seq 1..n), each once."""
        msgs = await w.take(len(datas))
        self.assertEqual([(m["seq"], m["data"]) for m in msgs], list(enumerate(datas, 1)))
        events = await asyncio.to_thread(s.take, len(datas))
        self.assertEqual([(event_seq(e["id"]), json.loads(e["data"])["data"])
                          for e in events], list(enumerate(datas, 1)))
        stream_epoch(events, w.epoch)
        await asyncio.sleep(0.3)
        await w.assert_quiet()
        self.assertTrue(s.events.empty(), f"SSE: more events {s.lines[-6:]}")
        info = await asyncio.to_thread(self.gw.room_info, room)
        self.assertEqual(info["last_seq"], len(datas), f"stored once: {info}")

    def assertErrorFrame(self, ans, code, id_=None):
        self.assertEqual(ans.get("type"), "error", ans)
        self.assertEqual(ans.get("code"), code, ans)
        self.assertIsInstance(ans.get("message"), str, ans)
        if id_ is not None:
            self.assertEqual(ans.get("id"), id_, ans)

    async def post(self, room, body, key=None, http2=False):
        """The key as the Idempotency-Key header on HTTP/1.1; as the idempotency_key query
        argument on HTTP/2, where lws 4.1.6 drops the header (docs/PROTOCOL.md)."""
        path, headers = f"/rooms/{room}/messages", []
        if key is not None and http2:
            path += "?idempotency_key=" + urllib.parse.quote(key, safe="")
        elif key is not None:
            headers = [f"Idempotency-Key: {key}"]
        return await self.ahttp("POST", path, body, headers=headers, http2=http2)

    async def test_http2_header(self):
        """The header works over HTTP/2 as over HTTP/1.1 (lws 4.1.6 dropped it there
        until patches/lws/0110), on new connections and mixed with HTTP/1.1."""
        room = "t:h2key"
        r = await self.ahttp("POST", f"/rooms/{room}/messages", "1",
                             headers=["Idempotency-Key: h2-1"], http2=True)
        self.assertPosted(r, 201, {"room": room, "seq": 1})
        for http2 in (True, False):
            r = await self.ahttp("POST", f"/rooms/{room}/messages", "1",
                                 headers=["Idempotency-Key: h2-1"], http2=http2)
            self.assertPosted(r, 200, {"room": room, "seq": 1, "duplicate": True})
        r = await self.ahttp("POST", f"/rooms/{room}/messages", "2",
                             headers=["Idempotency-Key: h2-1"], http2=True)
        self.assertError(r, 409, "conflict")

    def assertPosted(self, r, status, want):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.content_type.startswith("application/json"), r.headers)
        self.assertEqual(r.json(), want)

    # ------------------------------------------------------------------ WebSocket

    async def test_ws_same_publish_three_times_stored_once(self):
        room = "t:i3"
        w, s = await self.subscribers(room)
        p = await self.ws()
        await p.join(room)
        acks = [await p.request("publish", room=room, data={"x": 1}, id="pub-1")
                for _ in range(3)]
        self.assertEqual(acks[0], {"type": "ack", "room": room, "seq": 1, "id": "pub-1"})
        for a in acks[1:]:
            self.assertEqual(a, {"type": "ack", "room": room, "seq": 1, "duplicate": True,
                                 "id": "pub-1"})
        # the same data spelled with other whitespace is the same data
        await p.send_raw('{"type":"publish","room":"t:i3","id":"pub-1","data":{ "x" : 1 }}')
        self.assertEqual(await p.answer(), {"type": "ack", "room": room, "seq": 1,
                                            "duplicate": True, "id": "pub-1"})
        # from another connection too: the key belongs to the room
        self.assertEqual(await w.request("publish", room=room, data={"x": 1}, id="pub-1"),
                         {"type": "ack", "room": room, "seq": 1, "duplicate": True,
                          "id": "pub-1"})
        self.assertEqual(await p.request("publish", room=room, data={"x": 2}, id="pub-2"),
                         {"type": "ack", "room": room, "seq": 2, "id": "pub-2"})
        await self.assertDelivered(w, s, room, [{"x": 1}, {"x": 2}])
        self.assertEqual([(m["seq"], m["data"]) for m in await p.take(2)],
                         [(1, {"x": 1}), (2, {"x": 2})], "the publisher too, once")

    async def test_ws_same_id_other_data_conflict(self):
        room = "t:iconf"
        w, s = await self.subscribers(room)
        p = await self.ws()
        await p.join(room)
        self.assertEqual(await p.request("publish", room=room, data="a", id="k"),
                         {"type": "ack", "room": room, "seq": 1, "id": "k"})
        for other in ("b", ["a"], {"a": 1}, None, 1):
            with self.subTest(data=other):
                self.assertErrorFrame(await p.request("publish", room=room, data=other, id="k"),
                                      "conflict", "k")
        self.assertEqual(await p.request("publish", room=room, data="a", id="k"),
                         {"type": "ack", "room": room, "seq": 1, "duplicate": True, "id": "k"})
        self.assertEqual(await p.publish(room, "c"), 2)
        await self.assertDelivered(w, s, room, ["a", "c"])

    async def test_ws_bad_ids(self):
        room = "t:ibad"
        w, s = await self.subscribers(room)
        p = await self.ws()
        await p.join(room)
        bad = ["x" * 65, "\u00e9" * 33, "", "a\u0001b", "tab\there", "nl\n",
               "del\u007f", "\u001f"]
        for id_ in bad:
            with self.subTest(id=repr(id_)):
                await p.send({"type": "publish", "room": room, "data": 1, "id": id_})
                self.assertErrorFrame(await p.answer(), "bad_request")
        for id_ in (5, None, True, [], {"k": 1}, 1.5):
            with self.subTest(id=id_):
                await p.send({"type": "publish", "room": room, "data": 1, "id": id_})
                self.assertErrorFrame(await p.answer(), "bad_request")
        # the longest valid ids: 64 bytes, in ASCII and in UTF-8
        for k, id_ in enumerate(("y" * 64, "\u00e9" * 32), 1):
            ans = await p.request("publish", room=room, data=k, id=id_)
            self.assertEqual(ans, {"type": "ack", "room": room, "seq": k, "id": id_})
        await self.assertDelivered(w, s, room, [1, 2])

    async def test_ws_key_is_room_scoped(self):
        p = await self.ws()
        for room in ("t:sc1", "t:sc2"):
            await p.join(room)
        self.assertEqual(await p.request("publish", room="t:sc1", data="one", id="same"),
                         {"type": "ack", "room": "t:sc1", "seq": 1, "id": "same"})
        self.assertEqual(await p.request("publish", room="t:sc2", data="one", id="same"),
                         {"type": "ack", "room": "t:sc2", "seq": 1, "id": "same"},
                         "the same key in another room is a new message")
        self.assertEqual(await p.request("publish", room="t:sc2", data="two", id="same2"),
                         {"type": "ack", "room": "t:sc2", "seq": 2, "id": "same2"})
        self.assertEqual(await p.request("publish", room="t:sc1", data="other", id="same2"),
                         {"type": "ack", "room": "t:sc1", "seq": 2, "id": "same2"},
                         "no conflict across rooms")
        got = [(m["room"], m["seq"], m["data"]) for m in await p.take(4)]
        self.assertEqual(sorted(got), [("t:sc1", 1, "one"), ("t:sc1", 2, "other"),
                                       ("t:sc2", 1, "one"), ("t:sc2", 2, "two")])

    # ------------------------------------------------------------------ HTTP

    async def test_http_idempotency_key(self):
        room = "t:h3"
        w, s = await self.subscribers(room)
        body = '{"y":1}'
        self.assertPosted(await self.post(room, body, "key-1"), 201, {"room": room, "seq": 1})
        for http2, b in ((False, body), (True, body), (False, '{ "y" : 1 }')):
            with self.subTest(http2=http2, body=b):
                self.assertPosted(await self.post(room, b, "key-1", http2=http2), 200,
                                  {"room": room, "seq": 1, "duplicate": True})
        for http2 in (False, True):
            for b in ('{"y":2}', '"y"', '[{"y":1}]'):
                with self.subTest(http2=http2, conflict=b):
                    self.assertError(await self.post(room, b, "key-1", http2=http2), 409,
                                     "conflict")
        self.assertPosted(await self.post(room, '{"y":2}', "key-2", http2=True), 201,
                          {"room": room, "seq": 2})
        self.assertPosted(await self.post(room, '{"y":3}'), 201, {"room": room, "seq": 3})
        self.assertPosted(await self.post(room, '{"y":3}'), 201, {"room": room, "seq": 4},
                          )  # without a key, the same body is a new message
        await self.assertDelivered(w, s, room, [{"y": 1}, {"y": 2}, {"y": 3}, {"y": 3}])

    async def test_http_bad_keys(self):
        room = "t:hbadkey"
        w, s = await self.subscribers(room)
        for http2 in (False, True):
            for key in ("k" * 65, "a\tb", "del\x7fx", "ctl\x01x"):
                with self.subTest(http2=http2, key=repr(key)):
                    r = await self.post(room, "1", key, http2=http2)
                    self.assertError(r, 400, "bad_request")
        self.assertPosted(await self.post(room, "1", "k" * 64), 201, {"room": room, "seq": 1})
        self.assertPosted(await self.post(room, "1", "k" * 64, http2=True), 200,
                          {"room": room, "seq": 1, "duplicate": True})
        await self.assertDelivered(w, s, room, [1])

    async def test_http_key_is_room_scoped(self):
        for room in ("t:hs1", "t:hs2"):
            self.assertPosted(await self.post(room, '"x"', "shared"), 201,
                              {"room": room, "seq": 1})
        self.assertPosted(await self.post("t:hs2", '"other"', "shared2"), 201,
                          {"room": "t:hs2", "seq": 2})
        self.assertPosted(await self.post("t:hs1", '"different"', "shared2"), 201,
                          {"room": "t:hs1", "seq": 2})

    async def test_ws_id_and_http_key_are_one_key_space(self):
        """"a key the room still holds": whichever face stored it."""
        room = "t:both"
        w, s = await self.subscribers(room)
        self.assertEqual(await w.request("publish", room=room, data={"z": 1}, id="both-1"),
                         {"type": "ack", "room": room, "seq": 1, "id": "both-1"})
        self.assertPosted(await self.post(room, '{"z":1}', "both-1"), 200,
                          {"room": room, "seq": 1, "duplicate": True})
        self.assertError(await self.post(room, '{"z":9}', "both-1"), 409, "conflict")
        self.assertPosted(await self.post(room, '{"z":2}', "both-2"), 201,
                          {"room": room, "seq": 2})
        self.assertEqual(await w.request("publish", room=room, data={"z": 2}, id="both-2"),
                         {"type": "ack", "room": room, "seq": 2, "duplicate": True,
                          "id": "both-2"})
        self.assertErrorFrame(await w.request("publish", room=room, data={"z": 9}, id="both-2"),
                              "conflict", "both-2")
        await self.assertDelivered(w, s, room, [{"z": 1}, {"z": 2}])

    async def test_key_lives_as_long_as_its_message_in_the_ring(self):
        """history 3: exactly-once within the window, a new message beyond it."""
        room = "k:evict"
        p = await self.ws()
        await p.join(room)
        self.assertEqual((await p.request("publish", room=room, data="m", id="K"))["seq"], 1)
        self.assertEqual(await p.publish(room, "f2"), 2)
        self.assertEqual(await p.publish(room, "f3"), 3)
        self.assertEqual(await p.request("publish", room=room, data="m", id="K"),
                         {"type": "ack", "room": room, "seq": 1, "duplicate": True, "id": "K"},
                         "seq 1 is still in the ring (3 messages)")
        self.assertPosted(await self.post(room, '"h"', "H"), 201, {"room": room, "seq": 4})
        # seq 1 has left the ring: K is free again, even for other data
        self.assertEqual(await p.request("publish", room=room, data="new", id="K"),
                         {"type": "ack", "room": room, "seq": 5, "id": "K"})
        self.assertPosted(await self.post(room, '"h"', "H"), 200,
                          {"room": room, "seq": 4, "duplicate": True})
        self.assertEqual(await p.publish(room, "f6"), 6)
        self.assertEqual(await p.publish(room, "f7"), 7)
        self.assertPosted(await self.post(room, '"h2"', "H"), 201, {"room": room, "seq": 8})
        self.assertEqual([(m["seq"], m["data"]) for m in await p.take(8)],
                         [(1, "m"), (2, "f2"), (3, "f3"), (4, "h"), (5, "new"), (6, "f6"),
                          (7, "f7"), (8, "h2")])


if __name__ == "__main__":
    run_tests()
