"""SIGTERM with many WebSocket clients over TLS (issue 10, item 16): every client gets
one close frame with 1001 before the gateway exits 0 within its drain.

lws 4.1.6 kept a received PING's payload (to echo in the PONG) in the same buffer as
the close reason: a PING that arrived after the gateway decided to close, before the
close frame went out, became the close frame's status code (17789, 45985, ...).
patches/lws/0230 and 0231 fix it. The window is one event-loop pass, so the test makes
the pass long (600 connections, each closed in it) and has 40 clients ping every 2 ms;
unpatched, 20-40 of them got a garbage code in every run measured.

It also checks that each connection ends cleanly after the close handshake: the
gateway used to close the socket right after its close frame, under the client's close
reply (a reset: 520 of 600 connections), which is how clients lose a close frame that
had arrived but was not read yet.

Clients are asyncio protocols that parse frames as bytes arrive, so a close frame that
reached the client is counted even if the connection is reset right after it.
"""
import asyncio
import base64
import collections
import os
import signal
import struct
import time

import attack  # noqa: F401  (puts tests/integration, the harness, on the path)
from harness import SUBPROTOCOL, GatewayTestCase, client_ssl, run_tests

CLIENTS = 600
PINGERS = 40
PING_EVERY = 0.002
DRAIN_MS = 2000


def masked(opcode, payload):
    mask = os.urandom(4)
    return (bytes([0x80 | opcode, 0x80 | len(payload)]) + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


class Client(asyncio.Protocol):
    def __init__(self, pinger, opened):
        self.pinger = pinger
        self.opened = opened          # future: set at 101 (or on failure)
        self.transport = None
        self.buf = b""
        self.upgraded = False
        self.closes = []              # status codes (None: no code) of close frames
        self.other = []               # opcodes of unexpected frames
        self.lost = asyncio.get_running_loop().create_future()
        self.ping_task = None

    def connection_made(self, transport):
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                         f"Sec-WebSocket-Version: 13\r\n"
                         f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n").encode())

    def data_received(self, data):
        self.buf += data
        if not self.upgraded:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                if not self.opened.done():
                    self.opened.set_exception(AssertionError(f"upgrade refused: {head[:100]!r}"))
                return
            self.upgraded, self.buf = True, rest
            if not self.opened.done():
                self.opened.set_result(self)
        while len(self.buf) >= 2:
            op, n, off = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, off = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
            if len(self.buf) < off + n:
                return
            payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
            if op == 0x8:
                self.closes.append(struct.unpack("!H", payload[:2])[0]
                                   if len(payload) >= 2 else None)
                self.stop_pinging()
                if len(self.closes) == 1:
                    self.transport.write(masked(0x8, payload[:2]))
            elif op == 0x9:
                self.transport.write(masked(0xA, payload))
            elif op != 0xA:
                self.other.append(op)

    def connection_lost(self, exc):
        self.stop_pinging()
        if not self.opened.done():
            self.opened.set_exception(AssertionError(f"connection lost before 101: {exc!r}"))
        if not self.lost.done():
            self.lost.set_result(exc)

    def start_pinging(self):
        if self.pinger:
            self.ping_task = asyncio.get_running_loop().create_task(self.ping_loop())

    def stop_pinging(self):
        if self.ping_task:
            self.ping_task.cancel()
            self.ping_task = None

    async def ping_loop(self):
        while not self.transport.is_closing():
            self.transport.write(masked(0x9, os.urandom(4)))
            await asyncio.sleep(PING_EVERY)


class ShutdownTest(GatewayTestCase):
    CONFIG = {"shutdown": {"drain_ms": DRAIN_MS}}

    async def test_sigterm_every_tls_client_gets_1001(self):
        loop = asyncio.get_running_loop()
        ctx = client_ssl()
        clients = []

        async def connect(i):
            opened = loop.create_future()
            await loop.create_connection(lambda: Client(i < PINGERS, opened), "127.0.0.1",
                                         self.gw.port, ssl=ctx, server_hostname="localhost")
            return await asyncio.wait_for(opened, 30)

        for start in range(0, CLIENTS, 50):
            clients += await asyncio.gather(*(connect(i) for i in
                                              range(start, min(CLIENTS, start + 50))))
        for c in clients:
            c.start_pinging()
        await asyncio.sleep(0.5)
        self.assertTrue(self.gw.alive())

        t0 = time.monotonic()
        self.gw.proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(self.gw.proc.wait, 30)
        took = time.monotonic() - t0
        await asyncio.wait([c.lost for c in clients], timeout=10)
        for c in clients:
            c.stop_pinging()
            c.transport.abort()
        self.gw.stop()  # records the exit code for tearDownClass

        got = collections.Counter(tuple(c.closes) for c in clients)
        summary = ", ".join(f"{list(k) or 'no close frame'}: {n}" for k, n in got.most_common())
        self.assertEqual(rc, 0, summary)
        self.assertLess(took, DRAIN_MS / 1000 + 3, f"exit took {took:.2f}s; {summary}")
        if dict(got) != {(1001,): CLIENTS}:
            self.fail(f"every client must get exactly one close frame, 1001; got {summary}")
        self.assertEqual([c.other for c in clients if c.other], [], "unexpected frames")
        # The gateway waits for each client's close reply before it closes the socket:
        # closing right after its own close frame (what a second writeable did) made
        # the reply hit a closed socket, a reset, which makes many clients drop the
        # close frame they had not read yet ("no close frame").
        ends = collections.Counter(type(c.lost.result()).__name__ if c.lost.done()
                                   else "still open" for c in clients)
        self.assertEqual(dict(ends), {"NoneType": CLIENTS},
                         f"connections must end cleanly after the close handshake: {ends}")


if __name__ == "__main__":
    run_tests()
