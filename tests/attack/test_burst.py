"""Issue 10 item 3: a burst larger than a room's history disconnected every reader
(4008 "lagged" after 0 of 201 messages), because lag was judged by ring position when
the readers' write turn came, one loop pass after the burst. Now a reader is lagged only
when it is owed more than limits.max_pending_bytes: readers that keep up get every
message of any burst, over WebSocket and SSE."""
import asyncio
import json

from attack import GatewayTestCase, GoodClient, frames, raw_ws, read_frames, run_tests
from harness import SSEStream, event_seq, expect_stream_event, stream_epoch, without_epoch


def messages(got):
    out = []
    for op, p in got:
        if op == 0x1:
            m = json.loads(p)
            if m.get("type") == "message":
                out.append(m["seq"])
    return out


class BurstTest(GatewayTestCase):
    def member(self, room):
        c = raw_ws(self.gw)
        self.addCleanup(c.close)
        c.send({"type": "join", "room": room})
        joined = c.json_frame()
        self.assertEqual(without_epoch(joined)["type"], "joined", joined)
        self.epoch = joined["epoch"]
        return c

    async def burst(self, room, writers, per_writer, readers_ws=3):
        gw = self.gw
        readers = [self.member(room) for _ in range(readers_ws)]
        sse = SSEStream(gw, f"room={room}")
        self._clients.append(sse)
        await asyncio.to_thread(expect_stream_event, sse, 10)
        pubs = [self.member(room) for _ in range(writers)]
        await asyncio.to_thread(gw.wait_subscribers, room, readers_ws + 1 + writers, 10)
        good = GoodClient(self, "t:good-" + room)
        await good.start()
        total = writers * per_writer
        for p in pubs:  # one write each
            p.sock.sendall(frames([{"type": "publish", "room": room, "data": {"i": i}}
                                   for i in range(per_writer)]))
        for k, r in enumerate(readers):
            got = await asyncio.to_thread(read_frames, r, total, 60)
            self.assertNotIn(0x8, [op for op, _ in got], f"reader {k} closed: {got[-1:]}")
            self.assertEqual(messages(got), list(range(1, total + 1)), f"reader {k}")
        events = await asyncio.to_thread(sse.take, total, 60)
        self.assertEqual([event_seq(e["id"]) for e in events], list(range(1, total + 1)))
        stream_epoch(events, self.epoch)
        self.assertNotIn("lagged", [e.get("event") for e in events])
        await good.stop()

    async def test_one_write_larger_than_the_history(self):
        # dm:* keeps 200 messages; one write of 201 publishes
        await self.burst("dm:burst", 1, 201)

    async def test_ten_writers_of_250(self):
        # t:* keeps 1,000; ten writes of 250 land in the same loop passes
        await self.burst("t:burst", 10, 250)


if __name__ == "__main__":
    run_tests()
