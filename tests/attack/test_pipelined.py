"""Issue 10 item 4: 257 pipelined requests from a client reading as fast as it can got
close 4008 and none of the 256 queued answers (300 and more: EOF, no close frame); the
answer queue counted items, not bytes (250 unread `history` answers held ~13 MB); and
unsolicited PONGs kept a non-reading connection open past the ping timeout. Now a client
that asks faster than it reads is paused (not read) until its answers drain: every
request is answered, the gateway holds at most about 64 KB of answers for it, and a
paused client that reads nothing is closed by the ping timeout whatever it sends."""
import asyncio
import json
import socket
import time

from attack import (GatewayTestCase, GoodClient, frames, raw_ws, read_frames, rss_kb,
                    run_tests, sanitized, ws_frame)


class PipelinedTest(GatewayTestCase):
    CONFIG = {"ws": {"ping_seconds": 1, "ping_timeout_seconds": 2}}

    async def fill(self, room):
        """30 messages of 3 KB: each history answer is about max_message_bytes."""
        pub = await self.ws()
        await pub.join(room)
        for i in range(30):
            await pub.publish(room, {"pad": "x" * 3000, "i": i})

    async def test_reading_client_gets_every_answer(self):
        gw = self.gw
        c = raw_ws(gw)
        self.addCleanup(c.close)
        good = GoodClient(self, "t:good-pipe")
        await good.start()
        for n in (257, 300, 2000):
            c.sock.sendall(frames([{"type": "ping", "id": str(i)} for i in range(n)]))
            got = await asyncio.to_thread(read_frames, c, n, 30)
            ids = [json.loads(p).get("id") for op, p in got if op == 0x1]
            self.assertEqual(ids, [str(i) for i in range(n)], f"{n} pipelined pings")
        await good.stop()

    async def test_history_requests_from_a_reader(self):
        gw = self.gw
        await self.fill("t:hist")
        c = raw_ws(gw)
        self.addCleanup(c.close)
        n = 300
        c.sock.sendall(frames([{"type": "history", "room": "t:hist", "id": str(i)}
                               for i in range(n)]))
        got = await asyncio.to_thread(read_frames, c, n, 60)
        answers = [json.loads(p) for op, p in got if op == 0x1]
        self.assertEqual([a["id"] for a in answers], [str(i) for i in range(n)])
        self.assertTrue(all(a["type"] == "history" for a in answers))

    async def test_non_reader_is_bounded_and_closed(self):
        gw = self.gw
        await self.fill("t:hist2")
        good = GoodClient(self, "t:good-stall")
        await good.start()
        c = raw_ws(gw, rcvbuf=16384)
        self.addCleanup(c.close)
        base = rss_kb(gw.proc.pid)
        # 20,000 history answers of ~4 KB: 80 MB if the gateway held them, and 1.3 MB
        # of requests, more than the socket buffers between the two hold
        req = frames([{"type": "history", "room": "t:hist2", "id": str(i)}
                      for i in range(20000)])
        c.sock.setblocking(False)
        sent = 0
        t0 = time.monotonic()
        closed = None
        pong = ws_frame(b"", opcode=0xA)
        while time.monotonic() - t0 < 12:
            try:
                if sent < len(req):
                    sent += c.sock.send(req[sent:sent + 16384])
                else:
                    c.sock.send(pong)  # unsolicited PONGs, never reading
            except (BlockingIOError, socket.timeout):
                pass
            except OSError as e:
                closed = time.monotonic() - t0
                print(f"\nnon-reader closed after {closed:.1f} s ({e!r}),"
                      f" {sent} of {len(req)} request bytes taken")
                break
            await asyncio.sleep(0.2)
        peak = rss_kb(gw.proc.pid)
        self.assertIsNotNone(closed, "a paused client that reads nothing stayed open 12 s")
        self.assertLess(sent, len(req), "the gateway kept reading a client that does not read")
        growth = (peak - base) / 1024
        print(f"RSS growth while it was open: {growth:.1f} MB")
        if not sanitized(gw):
            self.assertLess(growth, 4, "answers for a non-reader were not bounded")
        await good.stop()


if __name__ == "__main__":
    run_tests()
