"""A subscriber that stops reading: it costs the gateway a bounded amount of memory,
every other subscriber keeps getting every message, and when it reads again it is
told it lagged (WebSocket close 4008 "lagged"; SSE `event: lagged`, then the stream
ends). Raw TLS sockets play the stalled clients, so nothing reads on their behalf."""
import asyncio
import ssl
import struct
import time
import unittest

from harness import (GatewayTestCase, RawWS, event_seq, raw_tls, rss_kb, sanitized,
                     stream_epoch)

HISTORY = 8
COUNT = 400
PAYLOAD = "x" * 60000  # 400 x 60 KB = 24 MB: far more than loopback socket buffers hold


def read_until(s, marker, limit=1 << 16):
    data = b""
    while marker not in data:
        chunk = s.recv(4096)
        if not chunk or len(data) > limit:
            raise AssertionError(f"no {marker!r} in {data[:300]!r}")
        data += chunk
    return data


class LagTest(GatewayTestCase):
    # the immediate write path (no coalescing window); the other tests use the default
    CONFIG = {"limits": {"max_message_bytes": 65536}, "delivery": {"coalesce_us": 0},
              "rooms": [{"name": "slow", "history": HISTORY}]}

    async def test_stalled_subscribers_lag_out(self):
        gw = self.gw
        # the stalled WebSocket client: joins, then reads nothing
        ws_raw = RawWS(gw)
        ws_raw.send({"type": "join", "room": "slow"})
        # the stalled SSE client
        sse_raw = raw_tls(gw)
        sse_raw.sendall(b"GET /events?room=slow HTTP/1.1\r\nHost: localhost\r\n"
                        b"Accept: text/event-stream\r\n\r\n")
        self.assertIn(b" 200 ", read_until(sse_raw, b"\r\n\r\n"))
        gw.wait_subscribers("slow", 2)

        reader = await self.ws()
        await reader.join("slow")
        sse = self.sse("room=slow")
        sse.wait_started()
        publisher = await self.ws()
        await publisher.join("slow")

        msgs = []

        async def consume():  # a reader that keeps up
            while len(msgs) < COUNT:
                msgs.extend(await reader.take(1, timeout=30))

        consumer = asyncio.create_task(consume())
        base_rss = rss_kb(gw.proc.pid)
        peak = base_rss
        seqs = []
        t0 = time.monotonic()
        for i in range(COUNT):
            seqs.append(await publisher.publish("slow", {"i": i, "pad": PAYLOAD}))
            publisher.messages.clear()
            if i % 50 == 0:
                peak = max(peak, rss_kb(gw.proc.pid))
        self.assertEqual(seqs, list(range(1, COUNT + 1)))
        print(f"published {COUNT} in {time.monotonic() - t0:.1f}s")

        # every reader got every message, in order
        await asyncio.wait_for(consumer, 60)
        self.assertEqual([m["seq"] for m in msgs], seqs)
        print(f"reader done at {time.monotonic() - t0:.1f}s")
        events = sse.take(COUNT, timeout=60)
        print(f"SSE reader done at {time.monotonic() - t0:.1f}s")
        self.assertEqual([event_seq(e["id"]) for e in events], seqs)
        stream_epoch(events, reader.epoch)
        peak = max(peak, rss_kb(gw.proc.pid))

        # the stalled ones: a few messages, then the verdict
        close = None
        while close is None:
            op, payload = ws_raw.frame(timeout=30)
            if op == 0x8:
                close = payload
        print(f"stalled WS closed at {time.monotonic() - t0:.1f}s")
        self.assertIsNotNone(close, "no close frame for the stalled WebSocket")
        self.assertEqual(struct.unpack("!H", close[:2])[0], 4008, close)
        self.assertEqual(close[2:], b"lagged")

        data = b""
        while True:
            try:
                chunk = sse_raw.recv(65536)
            except (ssl.SSLError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        self.assertTrue(data.endswith(b'event: lagged\ndata: {"room":"slow"}\n\n'),
                        f"SSE: {len(data)} bytes, {data.count(b'event: message')} events,"
                        f" ending {data[-120:]!r}")
        ws_raw.close()
        sse_raw.close()

        # bounded: the ring (8 x 16 KB) and what lws holds for two stalled sockets,
        # not the 9.6 MB that flowed past them
        growth_mb = (peak - base_rss) / 1024
        print(f"RSS: base {base_rss} KB, peak {peak} KB, growth {growth_mb:.1f} MB "
              f"for {COUNT} x {len(PAYLOAD)} B past 2 stalled clients")
        if sanitized(gw):
            print("SKIP RSS bound: AddressSanitizer's quarantine keeps freed memory resident")
        else:
            self.assertLess(growth_mb, 8, "memory grew with the backlog of stalled clients")
        gw.wait_subscribers("slow", 3)  # reader, SSE reader and publisher remain


if __name__ == "__main__":
    unittest.main()
