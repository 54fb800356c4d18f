"""HTTP/1.1 pipelining cannot wedge the gateway: libwebsockets 4.1.6 spins on a request
pipelined behind a completed one, so every HTTP/1.1 API answer closes its connection
(docs/PROTOCOL.md). Each pair of requests sent in one write gets the first answered,
then the connection closed, and the gateway keeps serving everyone."""
import unittest

from harness import GatewayTestCase, http, raw_tls

BODY = b'{"t":1}'
REQUESTS = {
    "get": b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "post": (b"POST /rooms/t:pipe/messages HTTP/1.1\r\nHost: localhost\r\n"
             b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY),
    "static": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
}


class PipeliningTest(GatewayTestCase):
    async def test_pipelined_pairs(self):
        for case in ("get+post", "post+post", "get+get", "post+get", "static+post"):
            with self.subTest(case=case):
                s = raw_tls(self.gw, timeout=5)
                s.sendall(b"".join(REQUESTS[p] for p in case.split("+")))
                data = b""
                while True:
                    chunk = s.recv(65536)  # the gateway closes: no timeout expected
                    if not chunk:
                        break
                    data += chunk
                s.close()
                self.assertGreaterEqual(data.count(b"HTTP/1.1 "), 1, data[:300])
                if not case.startswith("static"):
                    self.assertIn(b"connection: close", data.lower())
                r = http(self.gw, "GET", "/healthz", timeout=5)
                self.assertEqual((r.status, r.json()), (200, {"status": "ok"}), r)


if __name__ == "__main__":
    unittest.main()
