"""Issue 10 item 1: a session's answer queue overflowing crashed the gateway (NULL
dereference) when presence events piled up for a member faster than one loop pass
could write them: one member of a presence room while two connections each send 100
join+leave pairs in one write (150 here, to land within one loop pass for sure); or 1,000 ordinary clients joining the room at the same
moment, as after a restart. Now answers are bounded in bytes (limits.max_pending_bytes),
shared between members, and a member that keeps up is never judged slow."""
import asyncio
import json
import resource
import time
from concurrent.futures import ThreadPoolExecutor

from attack import GatewayTestCase, GoodClient, frames, raw_ws, read_frames, run_tests

# 1,000 clients and the gateway's side of them need more than the default 1,024 fds
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(_hard, 8192), _hard))

ROOMS = [{"name": "lobby", "history": 1000, "presence": True},
         {"pattern": "t:*", "history": 1000}]


class PresenceFloodTest(GatewayTestCase):
    # the raw clients answer no pings while they wait for the others to connect
    # a thousand clients from one address: past limits.max_connections_per_address's
    # default, which tests/integration/test_limits.py covers
    CONFIG = {"rooms": ROOMS, "ws": {"ping_seconds": 600, "ping_timeout_seconds": 60},
              "limits": {"max_connections_per_address": 0}}

    async def test_join_leave_burst_reaches_a_reading_member(self):
        gw = self.gw
        member = raw_ws(gw)
        self.addCleanup(member.close)
        member.send({"type": "join", "room": "lobby", "id": "m"})
        self.assertEqual(member.json_frame()["type"], "joined")
        good = GoodClient(self, "t:good")
        await good.start()
        attackers = [raw_ws(gw) for _ in range(2)]
        for a in attackers:
            self.addCleanup(a.close)
        # one write each: read and handled within one loop pass, before the member's
        # next write turn
        burst = frames([{"type": t, "room": "lobby"} for _ in range(150)
                        for t in ("join", "leave")])
        for a in attackers:
            a.sock.sendall(burst)
        got = await asyncio.to_thread(read_frames, member, 600, 30)
        texts = [json.loads(p) for op, p in got if op == 0x1]
        self.assertNotIn(0x8, [op for op, _ in got], f"member closed: {got[-1:]}")
        self.assertEqual(len(texts), 600, f"member got {len(texts)} of 600 presence events")
        self.assertTrue(all(t["type"] == "presence" for t in texts))
        for a in attackers:
            answers = await asyncio.to_thread(read_frames, a, 300, 30)
            self.assertEqual(sum(op == 0x1 for op, _ in answers), 300)
        await good.stop()
        self.assertTrue(gw.alive())

    async def test_thousand_clients_join_at_once(self):
        gw = self.gw
        n = 1000
        t0 = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            clients = await asyncio.to_thread(lambda: list(pool.map(raw_ws, [gw] * n)))
        for c in clients:
            self.addCleanup(c.close)
        print(f"\n{n} TLS WebSocket connections in {time.monotonic() - t0:.1f} s")
        join = frames([{"type": "join", "room": "lobby"}])
        good = GoodClient(self, "t:good2")
        await good.start()
        t1 = time.monotonic()
        for c in clients:  # as fast as the loop goes: within a few loop passes
            c.sock.sendall(join)
        await asyncio.to_thread(gw.wait_subscribers, "lobby", n, 60)
        print(f"{n} joins accepted in {time.monotonic() - t1:.1f} s")
        # then one more, by name: every client's last presence event
        marker = raw_ws(gw)
        self.addCleanup(marker.close)
        marker.send({"type": "join", "room": "lobby", "name": "marker"})

        def heard(c):
            got = read_frames(c, 10 ** 6, 60, stop=lambda f: b'"user":"marker"' in f[1])
            texts = [json.loads(p) for op, p in got if op == 0x1]
            if not texts or texts[-1].get("user") != "marker":
                raise AssertionError(f"no marker join, ended with {got[-1:]}")
            users = [t["user"] for t in texts[1:-1] if t["type"] == "presence"
                     and t["event"] == "join"]
            if texts[0]["type"] != "joined" or len(users) != len(texts) - 2 \
                    or len(set(users)) != len(users):
                raise AssertionError(f"unexpected frames: {texts[:3]}")
            return len(users)

        counts = await asyncio.to_thread(lambda: [heard(c) for c in clients])
        # each client heard of exactly those that joined after it, once, and no one
        # was judged slow
        self.assertEqual(sorted(counts), list(range(n)))
        _, p50, p99 = await good.stop()
        self.assertTrue(gw.alive())
        info = gw.room_info("lobby")
        self.assertEqual(info["subscribers"], n + 1, info)


if __name__ == "__main__":
    run_tests()
