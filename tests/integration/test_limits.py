"""Connection and publish limits (docs/CONFIG.md limits.*).

A connection past limits.max_connections or limits.max_connections_per_address is closed
as it is accepted, unanswered, and logged with its address and the limit; the count
follows the connections that end, whatever they carried (TLS, HTTP/1.1, WebSocket,
HTTP/2 with its streams counting as one connection).

A publish past limits.publish_rate_per_connection (WebSocket) or
limits.publish_rate_per_address (all of an address's connections and HTTP requests) is
answered rate_limited with a retry hint and not stored; backends are not limited."""
import asyncio
import hashlib
import os
import socket
import subprocess
import tempfile
import time

from harness import GatewayTestCase, http, raw_tls, run_tests

PER_ADDRESS = 4


def refused(sock, timeout=3):
    """True when the gateway closed sock without a byte (a refused connection)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def tcp(gw):
    return socket.create_connection(("127.0.0.1", gw.port), timeout=5)


class PerAddressTest(GatewayTestCase):
    CONFIG = {"limits": {"max_connections_per_address": PER_ADDRESS}}

    def wait_count_back(self, timeout=5):
        """Until a connection is admitted again (the earlier ones released)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if http(self.gw, "GET", "/healthz", timeout=3).status == 200:
                return
            time.sleep(0.1)
        self.fail("connections were not released")

    async def test_past_the_limit_is_closed_at_accept(self):
        held = [tcp(self.gw) for _ in range(PER_ADDRESS)]
        try:
            extra = tcp(self.gw)
            self.assertTrue(refused(extra), "the connection past the limit was kept\n"
                            + self.gw.stderr()[-2000:])
            extra.close()
            for s in held:
                self.assertFalse(refused(s, timeout=0.3), "a held connection was closed")
            self.assertIn("limits: refused a connection from ::ffff:127.0.0.1: "
                          "limits.max_connections_per_address", self.gw.stderr())
        finally:
            for s in held:
                s.close()
        # every one released: a full set fits again, and answers
        self.wait_count_back()
        again = [raw_tls(self.gw) for _ in range(PER_ADDRESS)]
        for s in again:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(s.recv(64).startswith(b"HTTP/1.1 200"))
            s.close()

    async def test_every_kind_of_connection_is_counted_and_released(self):
        for round_ in range(3):
            ws = [await self.ws() for _ in range(2)]
            sse = self.sse("room=lobby", http2=True)  # one connection, its stream inside
            sse.wait_started()
            s = raw_tls(self.gw)  # the fourth: TLS, no request yet
            extra = tcp(self.gw)
            self.assertTrue(refused(extra), f"round {round_}: past the limit, kept")
            extra.close()
            s.close()
            sse.close_sync()
            for c in ws:
                await c.close()
            self._clients.clear()
            self.wait_count_back()

    async def test_http2_streams_are_one_connection(self):
        held = [tcp(self.gw) for _ in range(PER_ADDRESS - 1)]
        try:
            # the last connection allowed carries five streams at once (curl --parallel
            # waits for the first connection and multiplexes the rest onto it)
            out = subprocess.run(
                ["curl", "-sk", "--http2", "--parallel"]
                + [f"{self.gw.base}/healthz"] * 5, capture_output=True, timeout=30).stdout
            self.assertEqual(out.count(b'"status":"ok"'), 5, out)
        finally:
            for s in held:
                s.close()


class TotalTest(GatewayTestCase):
    CONFIG = {"limits": {"max_connections": 3, "max_connections_per_address": 0}}

    async def test_total(self):
        held = [tcp(self.gw) for _ in range(3)]
        try:
            extra = tcp(self.gw)
            self.assertTrue(refused(extra))
            extra.close()
            self.assertIn("limits.max_connections reached", self.gw.stderr())
        finally:
            for s in held:
                s.close()
        deadline = time.monotonic() + 5
        while http(self.gw, "GET", "/healthz", timeout=3).status != 200:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)


API_KEY = "limits-test-" + os.urandom(8).hex()


class PublishRateTest(GatewayTestCase):
    # with an auth section, loopback is no backend: anonymous publishers are limited
    CONFIG = {"limits": {"publish_rate_per_connection": 5, "publish_rate_per_address": 8}}

    @classmethod
    def setUpClass(cls):
        keys = os.path.join(tempfile.mkdtemp(prefix="rg-limits-"), "keys")
        with open(keys, "w") as f:
            f.write(hashlib.sha256(API_KEY.encode()).hexdigest() + "\n")
        cls.CONFIG = {**cls.CONFIG, "auth": {"api_keys_file": keys}}
        super().setUpClass()

    async def stored(self, room):
        r = await self.ahttp("GET", f"/rooms/{room}/messages",
                             headers=[f"Authorization: Bearer {API_KEY}"])
        return [m["data"] for m in r.json()["messages"]]

    async def test_per_connection_then_per_address(self):
        await asyncio.sleep(1.1)  # full buckets
        a, b = await self.ws(), await self.ws()
        for c in (a, b):
            await c.join("t:rate")
        for i in range(5):
            self.assertEqual((await a.request("publish", room="t:rate", data=f"a{i}"))
                             ["type"], "ack")
        ans = await a.request("publish", room="t:rate", data="a-over")
        self.assertEqual(ans.get("code"), "rate_limited", ans)
        self.assertGreater(ans.get("retry_after_ms", 0), 0, ans)
        # b has its own 5, but the address has 8 in all: 3 left
        got = [(await b.request("publish", room="t:rate", data=f"b{i}")).get("type")
               for i in range(4)]
        self.assertEqual(got, ["ack", "ack", "ack", "error"])
        stored = await self.stored("t:rate")
        self.assertEqual(stored, [f"a{i}" for i in range(5)] + ["b0", "b1", "b2"])
        # the hint holds: after it, a publishes again
        await asyncio.sleep(max(ans["retry_after_ms"], 200) / 1000 + 0.2)
        self.assertEqual((await a.request("publish", room="t:rate", data="later"))["type"],
                         "ack")

    async def test_http_per_address_and_backends(self):
        await asyncio.sleep(1.1)
        # eight publishes on one HTTP/2 connection at once, then two more: a request per
        # TLS handshake would be slow enough for the bucket to refill between them
        out = subprocess.run(
            ["curl", "-sk", "--http2", "--parallel", "-X", "POST", "-H",
             "content-type: application/json", "-d", "1", "-w", "%{http_code}\\n"]
            + ["-o", "/dev/null", f"{self.gw.base}/rooms/t:hrate/messages"] * 10,
            capture_output=True, timeout=30, text=True).stdout.split()
        self.assertEqual(sorted(out), ["201"] * 8 + ["429"] * 2, out)
        r = await self.ahttp("POST", "/rooms/t:hrate/messages", body="9")
        if r.status == 429:  # unless a token came back meanwhile
            self.assertError(r, 429, "rate_limited")
            self.assertGreaterEqual(int(r.headers.get("retry-after", "0")), 1, r.headers)
        # a backend is not limited
        for i in range(20):
            r = await self.ahttp("POST", "/rooms/t:hrate/messages", body=str(100 + i),
                                 headers=[f"Authorization: Bearer {API_KEY}"])
            self.assertEqual(r.status, 201, r)
        stored = await self.stored("t:hrate")
        self.assertEqual(stored[-20:], list(range(100, 120)))


if __name__ == "__main__":
    run_tests()
