"""Issue 10 items 13 and 14 (roomgate's part): upgrade confusion (a WebSocket upgrade
naming the SSE or API protocol got 101 on any path, bypassing the /ws filter and the
stream accounting) and ambiguous HTTP/1.1 body framing (two different Content-Length
headers answered 201; Transfer-Encoding with a Content-Length accepted and read by the
length), which a proxy in front could read differently (request smuggling); and
POST /events answered 405 with an empty body. Now only the chat protocol upgrades, on
/ws; ambiguous framing is refused 400 with the connection closed; every refusal
carries the JSON error body."""
import base64
import json
import os

from attack import GatewayTestCase, raw_tls, run_tests


def exchange(gw, request, limit=65536):
    """Sends raw bytes on a new TLS connection; returns everything until EOF."""
    s = raw_tls(gw, timeout=5)
    try:
        s.sendall(request)
        data = b""
        while len(data) < limit:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        return data
    finally:
        s.close()


def status_of(resp):
    line = resp.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def body_of(resp):
    return resp.partition(b"\r\n\r\n")[2]


class UpgradeTest(GatewayTestCase):
    async def test_only_the_chat_protocol_upgrades_on_its_path(self):
        for proto in ("rg-sse", "rg-api", "roomgate.v1"):
            for path in ("/rooms", "/healthz", "/nope", "/events?room=lobby", "/ws"):
                key = base64.b64encode(os.urandom(16)).decode()
                req = (f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                       f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {proto}\r\n\r\n")
                resp = exchange(self.gw, req.encode(), 4096)
                want_upgrade = proto == "roomgate.v1" and path == "/ws"
                self.assertEqual(status_of(resp) == 101, want_upgrade,
                                 f"{proto} on {path}: {resp[:120]!r}")
        info = self.gw.room_info("lobby")
        self.assertEqual(info["subscribers"], 0, info)


class FramingTest(GatewayTestCase):
    def post(self, path, headers, body=b'{"a":1}'):
        req = (f"POST {path} HTTP/1.1\r\nHost: localhost\r\n"
               "Content-Type: application/json\r\n" + "".join(h + "\r\n" for h in headers)
               + "\r\n").encode() + body
        return exchange(self.gw, req)

    async def test_ambiguous_framing_is_refused(self):
        cases = {
            "two Content-Length": ["Content-Length: 7", "Content-Length: 5"],
            "the same Content-Length twice": ["Content-Length: 7", "Content-Length: 7"],
            "Content-Length and chunked": ["Content-Length: 7", "Transfer-Encoding: chunked"],
            "Content-Length and xchunked": ["Content-Length: 7",
                                            "Transfer-Encoding: xchunked"],
            "a signed Content-Length": ["Content-Length: +7"],
        }
        for what, headers in cases.items():
            resp = self.post("/rooms/t:frame/messages", headers)
            self.assertEqual(status_of(resp), 400, f"{what}: {resp[:200]!r}")
            err = json.loads(body_of(resp))["error"]
            self.assertEqual(err["code"], "bad_request", what)
            self.assertIn(b"connection: close", resp.lower(), what)
        # nothing was published
        r = await self.ahttp("GET", "/rooms/t:frame/messages")
        self.assertEqual(r.json()["last_seq"], 0, r)
        # one plain Content-Length still works
        resp = self.post("/rooms/t:frame/messages", ["Content-Length: 7"])
        self.assertEqual(status_of(resp), 201, resp[:200])

    async def test_post_events_gets_a_json_405(self):
        resp = self.post("/events?room=lobby", ["Content-Length: 7"])
        self.assertEqual(status_of(resp), 405, resp[:200])
        self.assertIn(b"allow: GET", resp)
        self.assertEqual(json.loads(body_of(resp))["error"]["code"], "method_not_allowed")
        resp = self.post("/events?room=lobby", ["Content-Length: 7",
                                                "Transfer-Encoding: chunked"])
        self.assertEqual(status_of(resp), 400, resp[:200])


if __name__ == "__main__":
    run_tests()
