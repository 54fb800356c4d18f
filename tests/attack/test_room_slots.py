"""Issue 10 item 5: one connection joined and left 10,000 dm:* rooms in 0.2 s, and for
the next idle_seconds (300) every other client's new DM join got limit_exceeded. Now a
pattern room that never held a message goes with its last subscriber, and at
limits.max_rooms the room idle the longest makes way: only rooms with subscribers
count against the limit."""
import asyncio

from attack import GatewayTestCase, GoodClient, frames, raw_ws, read_frames, run_tests


class RoomSlotsTest(GatewayTestCase):
    # the churn below is what limits.room_creation_rate_* now refuses past 120 rooms a
    # minute (tests/integration/test_limits.py); lifted here, so that what is checked is
    # that the rooms made hold no slots
    CONFIG = {"limits": {"max_rooms": 1000, "room_creation_rate_per_connection": 0,
                         "room_creation_rate_per_address": 0}}

    def live_rooms(self):
        return len(self.gw.rooms()["rooms"])

    async def test_join_leave_churn_holds_no_slots(self):
        gw = self.gw
        base = self.live_rooms()
        good = GoodClient(self, "t:good-slots")
        await good.start()
        a = raw_ws(gw)
        self.addCleanup(a.close)
        n = 10000
        for start in range(0, n, 500):  # 20 writes of 500 join+leave pairs
            a.sock.sendall(frames([{"type": t, "room": f"dm:x{i}"}
                                   for i in range(start, start + 500)
                                   for t in ("join", "leave")]))
            got = await asyncio.to_thread(read_frames, a, 1000, 30)
            self.assertEqual(sum(op == 0x1 and b'"error"' not in p for op, p in got), 1000,
                             [p for op, p in got if b'"error"' in p][:2])
        self.assertLessEqual(self.live_rooms(), base + 1)  # t:good-slots
        other = await self.ws()
        await other.join("dm:alice-bob")
        await good.stop()

    async def test_rooms_with_history_make_way_oldest_first(self):
        # 1,200 DM rooms with a message each, through the HTTP API, past max_rooms
        # (1,000): the oldest idle ones go, a new DM join is never refused
        async def publish(i):
            r = await self.ahttp("POST", f"/rooms/dm:h{i}/messages", '{"i":1}')
            self.assertEqual(r.status, 201, r)
        for start in range(0, 1200, 50):
            await asyncio.gather(*(publish(i) for i in range(start, start + 50)))
        self.assertLessEqual(self.live_rooms(), 1000)
        names = {r["name"] for r in self.gw.rooms()["rooms"]}
        self.assertIn("dm:h1199", names)
        self.assertNotIn("dm:h0", names)
        c = await self.ws()
        await c.join("dm:carol-dave")
        self.assertEqual(await c.publish("dm:carol-dave", "hi"), 1)


if __name__ == "__main__":
    run_tests()
