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
import re
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


class PerAddress(GatewayTestCase):
    """A gateway with a per-address limit. Each test has a class, so a gateway, of its
    own: the release of an earlier test's connections follows their close by a loop
    pass, and would blur the count."""
    CONFIG = {"limits": {"max_connections_per_address": PER_ADDRESS}}


class CountedAndReleasedTest(PerAddress):
    async def admitted(self, make):
        """make() until the gateway admits it: an earlier round's connections are
        released a loop pass after their close."""
        deadline = time.monotonic() + 5
        while True:
            try:
                return await make()
            except Exception:
                self.assertLess(time.monotonic(), deadline, "connections not released")
                await asyncio.sleep(0.1)

    async def test_every_kind_of_connection_is_counted_and_released(self):
        async def sse():
            st = self.sse("room=lobby", http2=True)  # one connection, its stream inside
            try:
                st.wait_started(timeout=2)
                return st
            except Exception:
                st.close_sync()
                raise

        async def tls():
            return await asyncio.to_thread(raw_tls, self.gw)

        for round_ in range(3):
            ws = [await self.admitted(self.ws) for _ in range(2)]
            st = await self.admitted(sse)
            s = await self.admitted(tls)  # the fourth: TLS, no request yet
            extra = tcp(self.gw)
            self.assertTrue(refused(extra), f"round {round_}: past the limit, kept")
            extra.close()
            s.close()
            st.close_sync()
            for c in ws:
                await c.close()
            self._clients.clear()


class PastTheLimitTest(PerAddress):
    async def test_past_the_limit_is_closed_at_accept(self):
        held = [tcp(self.gw) for _ in range(PER_ADDRESS)]
        try:
            extra = tcp(self.gw)
            self.assertTrue(refused(extra), "the connection past the limit was kept\n"
                            + self.gw.stderr()[-2000:])
            extra.close()
            for s in held:
                self.assertFalse(refused(s, timeout=0.3), "a held connection was closed")
            self.assertIn("limits: refused a connection from 127.0.0.1: "
                          "limits.max_connections_per_address", self.gw.stderr())
        finally:
            for s in held:
                s.close()
        # every one released (a loop pass after its close): a full set fits again and
        # is served
        again, deadline = [], time.monotonic() + 5
        while len(again) < PER_ADDRESS:
            try:
                again.append(raw_tls(self.gw))
            except OSError:  # refused: a release still to come
                self.assertLess(time.monotonic(), deadline, "connections not released")
                time.sleep(0.1)
        for s in again:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(s.recv(64).startswith(b"HTTP/1.1 200"))
            s.close()


class HTTP2StreamsTest(PerAddress):
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

    async def burst(self, c, prefix, n):
        """n publishes sent at once (no wait for answers between them, so the buckets
        barely refill meanwhile, even on a slow machine); their answers' types."""
        for i in range(n):
            await c.send({"type": "publish", "room": "t:rate", "data": f"{prefix}{i}",
                          "id": f"{prefix}{i}"})
        answers = [await c.answer() for _ in range(n)]
        by_id = {x.get("id"): x for x in answers}
        return [by_id[f"{prefix}{i}"] for i in range(n)]

    async def test_per_connection_then_per_address(self):
        await asyncio.sleep(1.1)  # full buckets
        a, b = await self.ws(), await self.ws()
        for c in (a, b):
            await c.join("t:rate")
        got = await self.burst(a, "a", 6)
        self.assertEqual([x["type"] for x in got], ["ack"] * 5 + ["error"], got)
        over = got[-1]
        self.assertEqual(over.get("code"), "rate_limited", over)
        self.assertGreater(over.get("retry_after_ms", 0), 0, over)
        # b has its own 5, but the address has 8 in all: 3 left
        got = await self.burst(b, "b", 4)
        self.assertEqual([x["type"] for x in got], ["ack", "ack", "ack", "error"], got)
        stored = await self.stored("t:rate")
        self.assertEqual(stored, [f"a{i}" for i in range(5)] + ["b0", "b1", "b2"])
        # refusals are logged, but a flood of them is not: once per connection and at
        # most once a minute per address and limit (this test's and the HTTP one's
        # refusals all fall in one minute)
        log = self.gw.stderr()
        self.assertEqual(len(re.findall(r"limits\.publish_rate_per_\w+ reached: answered "
                                        r"rate_limited", log)), 1, log)
        # the hint holds: after it, a publishes again
        await asyncio.sleep(max(over["retry_after_ms"], 200) / 1000 + 0.2)
        self.assertEqual((await a.request("publish", room="t:rate", data="later"))["type"],
                         "ack")

    async def test_http_per_address_and_backends(self):
        await asyncio.sleep(1.1)
        # eight publishes on one HTTP/2 connection at once, then two more: a request per
        # TLS handshake would be slow enough for the bucket to refill between them
        t0 = time.monotonic()
        out = subprocess.run(
            ["curl", "-sk", "--http2", "--parallel", "-X", "POST", "-H",
             "content-type: application/json", "-d", "1", "-w", "%{http_code}\\n"]
            + ["-o", "/dev/null", f"{self.gw.base}/rooms/t:hrate/messages"] * 12,
            capture_output=True, timeout=30, text=True).stdout.split()
        # 8 at once, and one more for each 1/8 s the requests took (the bucket refills)
        refill = int((time.monotonic() - t0) * 8) + 1
        self.assertEqual(len(out), 12, out)
        self.assertTrue(set(out) <= {"201", "429"}, out)
        self.assertGreaterEqual(out.count("201"), 8, out)
        self.assertLessEqual(out.count("201"), 8 + refill, out)
        self.assertGreaterEqual(out.count("429"), 12 - 8 - refill, out)
        self.assertIn("429", out)
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


class RoomCreationRateTest(GatewayTestCase):
    """limits.room_creation_rate_*: new pattern rooms a minute, per connection (WS, SSE)
    and per address (with the HTTP API); rooms that are alive are not counted."""
    CONFIG = {"limits": {"room_creation_rate_per_connection": 3,
                         "room_creation_rate_per_address": 5}}

    async def test_ws_sse_and_http(self):
        a = await self.ws()
        for i in range(3):
            await a.join(f"t:new{i}")
        over = await a.request("join", room="t:new3")
        self.assertEqual((over["type"], over.get("code")), ("error", "rate_limited"), over)
        self.assertGreater(over["retry_after_ms"], 10000, over)  # a minute's bucket
        self.assertNotIn("t:new3", {r["name"] for r in self.gw.rooms()["rooms"]})
        self.assertIn("limits.room_creation_rate_per_connection reached: answered "
                      "rate_limited", self.gw.stderr())
        await a.join("lobby")  # alive: not counted
        # the address has 5 in all: 2 left for another connection
        b = await self.ws()
        await b.join("t:new4")
        st = self.sse("room=t:new5")
        st.wait_started()
        st2 = self.sse("room=t:new6")
        deadline = time.monotonic() + 5
        while not st2.status_line() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.assertIn(" 429", st2.status_line())
        # the HTTP API makes rooms from the same bucket (loopback without auth is a
        # backend, which is not limited: this gateway's publishes to new rooms go through)
        r = await self.ahttp("POST", "/rooms/t:new7/messages", body="1")
        self.assertEqual(r.status, 201, r)


class HandshakeTest(GatewayTestCase):
    """limits.handshake_seconds: a connection that never completes its TLS handshake
    is closed after it; one that completes it and then sends no complete request
    headers (a slowloris) within 5 s at most (libwebsockets' own timer)."""
    CONFIG = {"limits": {"handshake_seconds": 2}}

    def closed_after(self, sock):
        t0 = time.monotonic()
        sock.settimeout(15)
        try:
            while sock.recv(100):
                pass
        except (ConnectionResetError, OSError):
            pass
        return time.monotonic() - t0

    async def test_handshake_and_headers(self):
        silent = tcp(self.gw)
        took = await asyncio.to_thread(self.closed_after, silent)
        silent.close()
        self.assertGreater(took, 1.5)
        self.assertLess(took, 3.5)
        s = await asyncio.to_thread(raw_tls, self.gw)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        took = await asyncio.to_thread(self.closed_after, s)
        s.close()
        self.assertLess(took, 6.5)
        r = await self.ahttp("GET", "/healthz")  # others are served meanwhile
        self.assertEqual(r.status, 200)


class HeaderBytesTest(GatewayTestCase):
    """limits.max_header_bytes: a request's line and headers together; 414 for a URL
    past it, 431 for headers past it, anything within it served (SSE arguments too)."""
    CONFIG = {"limits": {"max_header_bytes": 8192}}

    def status(self, head):
        s = raw_tls(self.gw)
        try:
            s.sendall(head)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\r\n", 1)[0].decode("latin-1")
        finally:
            s.close()

    async def test_url_and_headers(self):
        pad = "a" * 6000
        ok = await asyncio.to_thread(
            self.status, f"GET /healthz?x={pad} HTTP/1.1\r\nHost: x\r\nX-Pad: {pad[:1000]}\r\n"
            "Connection: close\r\n\r\n".encode())
        self.assertIn(" 200", ok)
        long_url = await asyncio.to_thread(
            self.status, f"GET /healthz?x={pad}{pad} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.assertIn(" 414", long_url)
        long_hdr = await asyncio.to_thread(
            self.status, f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {pad}{pad}\r\n\r\n".encode())
        self.assertIn(" 431", long_hdr)
        # an SSE stream whose other arguments are long still reads its rooms
        st = self.sse(f"room=lobby&x={pad}")
        st.wait_started()
        self.assertIn(" 200", st.status_line())


class JSONDepthTest(GatewayTestCase):
    CONFIG = {"limits": {"max_json_depth": 4}}

    async def test_depth(self):
        c = await self.ws()
        await c.join("t:deep")
        self.assertEqual(await c.publish("t:deep", [[[[1]]]]), 1)
        ans = await c.request("publish", room="t:deep", data=[[[[[1]]]]])
        self.assertEqual((ans["type"], ans["code"]), ("error", "bad_request"), ans)
        self.assertIn("max_json_depth", ans["message"])
        # a string that looks deep is not
        self.assertEqual(await c.publish("t:deep", "[[[[[[[[[[{{{{{{"), 2)
        r = await self.ahttp("POST", "/rooms/t:deep/messages", body='{"a":{"b":[[{}]]}}')
        self.assertError(r, 400, "bad_request")
        r = await self.ahttp("POST", "/rooms/t:deep/messages", body='{"a":{"b":[[1]]}}')
        self.assertEqual(r.status, 201, r)
        log = self.gw.stderr()
        self.assertEqual(log.count("limits.max_json_depth reached"), 1, log)
        self.assertRegex(log, r"\[conn \d+\] limits: 127\.0\.0\.1: limits\.max_json_depth "
                              r"reached: answered bad_request")
        # 2,000 levels (within max_message_bytes and jansson's 2048) are refused; the
        # connection goes on
        await c.send_raw('{"type":"publish","room":"t:deep","data":' + "[" * 2000 +
                         "]" * 2000 + "}")
        ans = await c.answer()
        self.assertEqual(ans.get("code"), "bad_request", ans)
        await c.ping()


if __name__ == "__main__":
    run_tests()
