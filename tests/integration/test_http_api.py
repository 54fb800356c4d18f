"""HTTP API face: POST /rooms/{room}/messages, GET /rooms, GET /healthz."""
import asyncio
import json

from harness import CURL_DEFAULT, GatewayTestCase, run_tests

MAX = 4096  # limits.max_message_bytes of these tests


class HTTPApiTest(GatewayTestCase):

    async def post(self, room, body, **kw):
        return await self.ahttp("POST", f"/rooms/{room}/messages", body, **kw)

    def assertCreated(self, resp, room, seq):
        self.assertEqual(resp.status, 201, resp)
        self.assertTrue(resp.content_type.startswith("application/json"), resp.headers)
        body = resp.json()
        self.assertEqual((body.get("room"), body.get("seq")), (room, seq), body)

    async def test_publish_json(self):
        w = await self.ws()
        await w.join("t:pub")
        self.assertCreated(await self.post("t:pub", '{"text":"hi"}'), "t:pub", 1)
        self.assertCreated(await self.post("t:pub", '[1, 2, {"a" : null}]',
                                           content_type="application/json; charset=utf-8"),
                           "t:pub", 2)
        self.assertCreated(await self.post("t:pub", '"just a string"'), "t:pub", 3)
        got = await w.take(3)
        self.assertEqual([(m["seq"], m["data"]) for m in got],
                         [(1, {"text": "hi"}), (2, [1, 2, {"a": None}]), (3, "just a string")])

    async def test_curl_default_form_content_type(self):
        w = await self.ws()
        await w.join("t:form")
        r = await self.post("t:form", '{"text":"a+b=c&d"}', content_type=CURL_DEFAULT)
        self.assertCreated(r, "t:form", 1)
        self.assertEqual((await w.message())["data"], {"text": "a+b=c&d"}, "never form-decoded")
        self.assertError(await self.post("t:form", "a=1&b=2", content_type=CURL_DEFAULT),
                         400, "bad_json")

    async def test_server_room_accepts_http(self):
        before = (await asyncio.to_thread(self.gw.room_info, "news"))["last_seq"]
        self.assertCreated(await self.post("news", '{"headline":"x"}'), "news", before + 1)

    async def test_http2_post(self):
        r = await self.post("t:h2", '{"v":2}', http2=True)
        self.assertEqual(r.version, "2")
        self.assertCreated(r, "t:h2", 1)
        self.assertError(await self.post("t:h2", "x" * (MAX + 1), http2=True), 413, "too_large")
        self.assertError(await self.post("t:h2", "1", content_type="text/plain", http2=True),
                         415, "unsupported_media_type")
        self.assertCreated(await self.post("t:h2", '{"v":3}', http2=True), "t:h2", 2)

    async def test_healthz(self):
        for http2 in (False, True):
            r = await self.ahttp("GET", "/healthz", http2=http2)
            self.assertEqual(r.status, 200)
            self.assertTrue(r.content_type.startswith("application/json"), r.headers)
            self.assertEqual(r.json().get("status"), "ok")

    async def test_rooms_listing(self):
        a, b = await self.ws(), await self.ws()
        for c in (a, b):
            await c.join("t:list")
        for i in range(3):
            await a.publish("t:list", i)
        await a.join("dm:bob")
        r = await self.ahttp("GET", "/rooms")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.content_type.startswith("application/json"), r.headers)
        doc = r.json()
        rooms = {x["name"]: x for x in doc["rooms"]}
        self.assertEqual({k: rooms["lobby"].get(k) for k in ("publish", "history")},
                         {"publish": "anyone", "history": 1000})
        self.assertEqual({k: rooms["news"].get(k) for k in ("publish", "history")},
                         {"publish": "server", "history": 100})
        self.assertEqual({k: rooms["t:list"].get(k) for k in ("subscribers", "last_seq")},
                         {"subscribers": 2, "last_seq": 3})
        self.assertEqual({k: rooms["dm:bob"].get(k) for k in ("subscribers", "last_seq")},
                         {"subscribers": 1, "last_seq": 0})
        pats = {p["pattern"]: p for p in doc["patterns"]}
        self.assertEqual({k: pats["dm:*"].get(k) for k in ("publish", "history")},
                         {"publish": "anyone", "history": 200})
        self.assertGreaterEqual(pats["dm:*"].get("rooms"), 1)
        self.assertGreaterEqual(pats["t:*"].get("rooms"), 1)

    async def test_size_boundary(self):
        body = json.dumps("x" * (MAX - 2))
        self.assertEqual(len(body), MAX)
        self.assertCreated(await self.post("t:bound", body), "t:bound", 1)
        self.assertCreated(await self.post("t:bound", body, http2=True), "t:bound", 2)
        self.assertError(await self.post("t:bound", json.dumps("x" * (MAX - 1))), 413,
                         "too_large")

    async def test_body_without_content_length_411(self):
        """HTTP/1.1 chunked, or HTTP/2 without content-length: 411 length_required."""
        w = await self.ws()
        await w.join("t:len")
        bodies = ['{"ok":1}', json.dumps("x" * (MAX - 2)), "x" * 20000]
        for http2, header, more in ((False, "Transfer-Encoding: chunked", [""]),  # "0\r\n\r\n"
                                    (True, "Content-Length:", [])):
            for body in bodies + more:
                with self.subTest(http2=http2, size=len(body)):
                    self.assertError(await self.post("t:len", body, headers=[header],
                                                     http2=http2), 411, "length_required")
        self.assertCreated(await self.post("t:len", '{"ok":2}'), "t:len", 1)
        self.assertEqual((await w.message())["data"], {"ok": 2})
        await w.assert_quiet()

    async def test_garbage_then_valid(self):
        """Every refused request gets its exact error and changes nothing: a WS
        subscriber gets exactly the valid messages, seq without gaps."""
        room = "t:garb"
        w = await self.ws()
        await w.join(room)
        big = json.dumps("x" * (MAX - 1))  # MAX + 1 bytes
        msgs = f"/rooms/{room}/messages"
        chunked = ["Transfer-Encoding: chunked"]
        cases = [  # method, path, body, kwargs, status, code
            ("POST", msgs, "1", {"content_type": "text/plain"}, 415, "unsupported_media_type"),
            ("POST", msgs, "1", {"content_type": None}, 415, "unsupported_media_type"),
            ("POST", msgs, "1", {"content_type": "multipart/form-data; boundary=x"}, 415,
             "unsupported_media_type"),
            ("POST", msgs, "1", {"content_type": "application/jsonx"}, 415,
             "unsupported_media_type"),
            ("POST", msgs, "", {}, 400, "bad_request"),
            ("POST", msgs, '{"a":', {}, 400, "bad_json"),
            ("POST", msgs, "hello", {}, 400, "bad_json"),
            ("POST", msgs, "{} x", {}, 400, "bad_json"),
            ("POST", msgs, "[" * 3000, {}, 400, "bad_json"),
            ("POST", msgs, b'"\xff\xfe"', {}, 400, "bad_json"),
            ("POST", msgs, b'{"nul":"\x00"}', {}, 400, "bad_json"),
            ("POST", msgs, big, {}, 413, "too_large"),
            ("POST", msgs, big, {"headers": chunked}, 411, "length_required"),
            ("POST", msgs, "x" * 20000, {}, 413, "too_large"),
            ("POST", msgs, "x" * 20000, {"headers": chunked}, 411, "length_required"),
            ("POST", msgs, '{"ok":0}', {"headers": chunked}, 411, "length_required"),
            ("POST", "/rooms/nosuchroom/messages", "1", {}, 404, "unknown_room"),
            ("POST", "/rooms/bad%20name/messages", "1", {}, 400, "bad_request"),
            ("POST", "/rooms/a%01b/messages", "1", {}, 400, "bad_request"),
            ("POST", "/rooms/" + "t:" + "x" * 127 + "/messages", "1", {}, 400, "bad_request"),
            ("PUT", msgs, "1", {}, 405, "method_not_allowed"),
            ("DELETE", msgs, None, {}, 405, "method_not_allowed"),
            ("POST", "/rooms", "1", {}, 405, "method_not_allowed"),
            ("POST", "/healthz", "1", {}, 405, "method_not_allowed"),
            ("GET", f"/rooms/{room}", None, {}, 404, "not_found"),
            ("GET", f"/rooms/{room}/other", None, {}, 404, "not_found"),
            ("POST", f"/rooms/{room}/messages/x", "1", {}, 404, "not_found"),
        ]
        seq = 0
        for http2 in (False, True):
            for method, path, body, kw, status, code in cases:
                if http2 and kw.get("headers") == chunked:  # HTTP/2 has no chunked coding:
                    kw = {"headers": ["Content-Length:"]}   # a body without the length
                with self.subTest(http2=http2, method=method, path=path[:50],
                                  body=repr(body)[:30], kw=kw):
                    r = await self.ahttp(method, path, body, http2=http2, **kw)
                    self.assertError(r, status, code)
                    if code == "method_not_allowed" and path == msgs:
                        self.assertEqual(r.headers.get("allow"), "GET, POST")
                seq += 1
                self.assertCreated(await self.post(room, json.dumps({"ok": seq})), room, seq)
        got = await w.take(seq)
        self.assertEqual([(m["seq"], m["data"]) for m in got],
                         [(i, {"ok": i}) for i in range(1, seq + 1)])
        await w.assert_quiet()
        self.assertEqual((await asyncio.to_thread(self.gw.room_info, room))["last_seq"], seq)
        names = {x["name"] for x in (await asyncio.to_thread(self.gw.rooms))["rooms"]}
        self.assertNotIn("nosuchroom", names)


if __name__ == "__main__":
    run_tests()
