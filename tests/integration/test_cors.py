"""Origins (docs/CONFIG.md, http.allowed_origins): a browser page on an origin that is
neither the gateway's own nor listed cannot open the chat WebSocket (403), read the API
or SSE, or publish, whatever the Content-Type it labels the body with (a no-cors POST
of a form-urlencoded body used to land in the room); a listed origin gets CORS answers
and preflights; requests without Origin (curl, servers) are not judged."""
from websockets.exceptions import InvalidStatusCode

from harness import GatewayTestCase, run_tests

LISTED = "https://chat.example.com"
EVIL = "https://evil.example"


class OriginTest(GatewayTestCase):
    CONFIG = {"http": {"allowed_origins": [LISTED, "http://localhost:3000"]}}

    def own(self):
        return f"https://127.0.0.1:{self.gw.port}"

    async def test_websocket_refused_from_another_origin(self):
        for http_origin in (EVIL, "null", "https://chat.example.com.evil.example",
                            f"https://127.0.0.1:{self.gw.port + 1}"):
            with self.subTest(origin=http_origin):
                with self.assertRaises(InvalidStatusCode) as cm:
                    await self.ws(origin=http_origin)
                self.assertEqual(cm.exception.status_code, 403)
        for ok in (LISTED, self.own(), None):
            with self.subTest(origin=ok):
                c = await self.ws(origin=ok)
                self.assertEqual((await c.request("ping"))["type"], "pong")

    async def test_no_cross_site_publish(self):
        room = "t:cors-publish"
        for http2 in (False, True):
            for ctype in ("application/json", "application/x-www-form-urlencoded",
                          "text/plain"):
                with self.subTest(http2=http2, ctype=ctype):
                    r = await self.ahttp("POST", f"/rooms/{room}/messages", '{"data":1}',
                                         content_type=ctype, http2=http2,
                                         headers=[f"Origin: {EVIL}"])
                    self.assertError(r, 403, "forbidden")
                    self.assertNotIn("access-control-allow-origin", r.headers)
        r = await self.ahttp("GET", f"/rooms/{room}/messages")
        self.assertEqual(r.json()["messages"], [], "a refused publish landed in the room")
        # the gateway's own page and a listed one publish; so does curl (no Origin)
        for headers in ([f"Origin: {self.own()}"], [f"Origin: {LISTED}"], []):
            r = await self.ahttp("POST", f"/rooms/{room}/messages", '{"data":1}',
                                 headers=headers)
            self.assertEqual(r.status, 201, r)
        self.assertEqual(len((await self.ahttp("GET", f"/rooms/{room}/messages"))
                             .json()["messages"]), 3)

    async def test_cors_answers_to_a_listed_origin(self):
        for http2 in (False, True):
            with self.subTest(http2=http2):
                r = await self.ahttp("GET", "/rooms", http2=http2,
                                     headers=[f"Origin: {LISTED}"])
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.headers.get("access-control-allow-origin"), LISTED)
                self.assertEqual(r.headers.get("vary"), "origin")
                r = await self.ahttp("GET", "/rooms", http2=http2)  # no Origin, no CORS
                self.assertNotIn("access-control-allow-origin", r.headers)
                r = await self.ahttp("GET", "/rooms", http2=http2, headers=[f"Origin: {EVIL}"])
                self.assertError(r, 403, "forbidden")

    async def test_preflight(self):
        pre = ["Access-Control-Request-Method: POST",
               "Access-Control-Request-Headers: content-type, idempotency-key"]
        for http2 in (False, True):
            for path, methods in (("/rooms/lobby/messages", "GET, POST"), ("/events", "GET")):
                with self.subTest(http2=http2, path=path):
                    r = await self.ahttp("OPTIONS", path, http2=http2,
                                         headers=[f"Origin: {LISTED}"] + pre)
                    self.assertEqual(r.status, 204, r)
                    self.assertEqual(r.headers.get("access-control-allow-origin"), LISTED)
                    self.assertEqual(r.headers.get("access-control-allow-methods"), methods)
                    allowed = r.headers.get("access-control-allow-headers", "")
                    for h in ("authorization", "content-type", "idempotency-key",
                              "last-event-id"):
                        self.assertIn(h, allowed)
                    r = await self.ahttp("OPTIONS", path, http2=http2,
                                         headers=[f"Origin: {EVIL}"] + pre)
                    self.assertError(r, 403, "forbidden")
        r = await self.ahttp("GET", "/healthz")  # the connection's next request is served
        self.assertEqual(r.status, 200)

    async def test_sse_origin(self):
        s = self.sse("room=lobby", headers=[f"Origin: {LISTED}"])
        s.wait_started()
        self.assertEqual(s.headers().get("access-control-allow-origin"), LISTED)
        r = await self.ahttp("GET", "/events?room=lobby", headers=[f"Origin: {EVIL}"])
        self.assertError(r, 403, "forbidden")

    async def test_static_files_cors(self):
        r = await self.ahttp("GET", "/", headers=[f"Origin: {LISTED}"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("access-control-allow-origin"), LISTED)
        r = await self.ahttp("GET", "/", headers=[f"Origin: {EVIL}"])
        self.assertEqual(r.status, 200, r)  # a page may embed it; it cannot read it
        self.assertNotIn("access-control-allow-origin", r.headers)


if __name__ == "__main__":
    run_tests()
