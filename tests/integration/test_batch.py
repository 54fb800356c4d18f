"""Batch publish, POST /messages (docs/PROTOCOL.md): many messages to one room or several
in one request, each item judged as its own publish would be, answered in order with
its seq or its error; a body that is not a batch publishes nothing."""
import asyncio
import json

from harness import GatewayTestCase, HmacAuth, run_tests

MAX_ITEMS = 50


def batch(items, room=None):
    body = {"messages": items}
    if room:
        body["room"] = room
    return json.dumps(body)


class BatchTest(GatewayTestCase):
    CONFIG = {"limits": {"max_batch_messages": MAX_ITEMS, "max_batch_bytes": 8192,
                         "max_json_depth": 8}}

    async def post(self, body, **kw):
        return await self.ahttp("POST", "/messages", body, **kw)

    async def last_seq(self, room):
        r = await self.ahttp("GET", f"/rooms/{room}/messages?since=0")
        return r.json()["last_seq"] if r.status == 200 else None

    async def test_one_room_and_several(self):
        a, b = await self.ws(), await self.ws()
        await a.join("t:ba")
        await b.join("t:bb")
        r = await self.post(batch([{"data": {"n": 1}}, {"data": [1, 2.50], "key": "k1"},
                                   {"room": "t:bb", "data": "x"}, {"data": None}],
                                  room="t:ba").replace("2.5", "2.50"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"results": [
            {"room": "t:ba", "seq": 1}, {"room": "t:ba", "seq": 2},
            {"room": "t:bb", "seq": 1}, {"room": "t:ba", "seq": 3}]})
        got = await a.take(3)
        self.assertEqual([(m["seq"], m["data"]) for m in got],
                         [(1, {"n": 1}), (2, [1, 2.5]), (3, None)])
        self.assertEqual((await b.message())["data"], "x")
        # the data as sent: 2.50 is not re-encoded
        r = await self.ahttp("GET", "/rooms/t:ba/messages?since=1&limit=1")
        self.assertIn(b'"data":[1,2.50]', r.body, r)

    async def test_items_fail_alone(self):
        r = await self.post(batch([
            {"room": "t:bi", "data": 1, "key": "a"},
            {"room": "nowhere", "data": 2},
            {"room": "t:bi", "data": 1, "key": "a"},      # the same key and data again
            {"room": "t:bi", "data": 9, "key": "a"},      # the same key, other data
            {"room": "t:bi", "data": 3}]))
        self.assertEqual(r.status, 200, r)
        res = r.json()["results"]
        self.assertEqual(res[0], {"room": "t:bi", "seq": 1})
        self.assertEqual((res[1]["room"], res[1]["error"]["code"]), ("nowhere", "unknown_room"))
        self.assertEqual(res[2], {"room": "t:bi", "seq": 1, "duplicate": True})
        self.assertEqual(res[3]["error"]["code"], "conflict")
        self.assertEqual(res[4], {"room": "t:bi", "seq": 2})
        self.assertEqual(await self.last_seq("t:bi"), 2)

    async def test_refused_body_publishes_nothing(self):
        good = {"room": "t:bn", "data": 1}
        cases = [
            ("not json", "{", 400, "bad_json"),
            ("empty", "", 400, "bad_json"),
            ("no messages", "{}", 400, "bad_request"),
            ("no items", batch([]), 400, "bad_request"),
            ("an item not an object", batch([good, 5]), 400, "bad_request"),
            ("an item without data", batch([good, {"room": "t:bn"}]), 400, "bad_request"),
            ("an item without a room", batch([good, {"data": 1}]), 400, "bad_request"),
            ("an unknown member", batch([dict(good, id="x")]), 400, "bad_request"),
            ("a bad room name", batch([good, {"room": "a b", "data": 1}]), 400,
             "bad_request"),
            ("a bad key", batch([dict(good, key="")]), 400, "bad_request"),
            ("too deep", batch([good, {"room": "t:bn", "data": [[[[[[[[[1]]]]]]]]]}]), 400,
             "bad_request"),
            ("too many items", batch([good] * (MAX_ITEMS + 1)), 400, "bad_request"),
            ("data past max_message_bytes", batch([good, {"room": "t:bn", "data": "x" * 4100}]),
             413, "too_large"),
            ("a body past max_batch_bytes",
             batch([good] * 48 + [{"room": "t:bn", "data": "y" * 4000}] * 2), 413,
             "too_large"),
            ("duplicate members", '{"messages":[{"room":"t:bn","data":1,"data":2}]}', 400,
             "bad_json"),
        ]
        for what, body, status, code in cases:
            with self.subTest(what):
                self.assertError(await self.post(body), status, code)
        self.assertError(await self.post(batch([good]), content_type="text/plain"), 415,
                         "unsupported_media_type")
        self.assertError(await self.ahttp("GET", "/messages"), 405, "method_not_allowed")
        self.assertIn(await self.last_seq("t:bn"), (None, 0))
        # the gateway serves on, on the same kind of connection
        r = await self.post(batch([good]))
        self.assertEqual(r.json(), {"results": [{"room": "t:bn", "seq": 1}]}, r)

    async def test_http2(self):
        r = await self.post(batch([{"data": i} for i in range(MAX_ITEMS)], room="t:b2"),
                            http2=True)
        self.assertEqual((r.version, r.status), ("2", 200), r)
        self.assertEqual([x["seq"] for x in r.json()["results"]], list(range(1, MAX_ITEMS + 1)))
        self.assertError(await self.post("{", http2=True), 400, "bad_json")


AUTH = HmacAuth()


class BatchAuthTest(GatewayTestCase):
    """Each item is judged by its room's publish policy for the caller."""
    CONFIG = {"auth": AUTH.config}

    async def test_policy_per_item(self):
        items = batch([{"room": "lobby", "data": 1}, {"room": "news", "data": 2}])
        user = [f"Authorization: Bearer {AUTH.token('alice')}"]
        r = await self.ahttp("POST", "/messages", items, headers=user)
        res = r.json()["results"]
        self.assertEqual((res[0]["room"], "seq" in res[0]), ("lobby", True), res)
        self.assertEqual(res[1]["error"]["code"], "forbidden", res)
        r = await self.ahttp("POST", "/messages", items)
        self.assertEqual(r.json()["results"][1]["error"]["code"], "unauthorized", r)
        key = [f"Authorization: Bearer {AUTH.api_key}"]
        r = await self.ahttp("POST", "/messages", items, headers=key)
        self.assertTrue(all("seq" in x for x in r.json()["results"]), r)
        bad = ["Authorization: Bearer not-a-token"]
        self.assertError(await self.ahttp("POST", "/messages", items, headers=bad), 401,
                         "unauthorized")


class BatchRateTest(GatewayTestCase):
    """A caller that is no backend spends one publish token per item."""
    CONFIG = {"auth": AUTH.config, "limits": {"publish_rate_per_address": 5}}

    async def test_rate_per_item(self):
        user = [f"Authorization: Bearer {AUTH.token('bob')}"]
        r = await self.ahttp("POST", "/messages",
                             batch([{"data": i} for i in range(8)], room="t:br"), headers=user)
        res = r.json()["results"]
        ok = [x for x in res if "seq" in x]
        limited = [x for x in res if x.get("error", {}).get("code") == "rate_limited"]
        self.assertEqual(len(ok) + len(limited), 8, res)
        self.assertGreaterEqual(len(ok), 5, res)
        self.assertGreaterEqual(len(limited), 1, res)
        self.assertTrue(all(x["retry_after_ms"] > 0 for x in limited), res)
        # the refused ones were never stored: seqs stay dense
        self.assertEqual([x["seq"] for x in ok], list(range(1, len(ok) + 1)))
        await asyncio.sleep(0)


if __name__ == "__main__":
    run_tests()
