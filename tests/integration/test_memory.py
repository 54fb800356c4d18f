"""The memory budget (docs/CONFIG.md limits.memory_mb, rooms[].history_bytes;
docs/OPERATIONS.md "Sizing").

The flood of issue 14, against a 256 MiB budget: one client joins a pattern room,
publishes 64 KB messages into it, leaves, and takes the next room. Rooms left behind
hold their history until they are idle for idle_seconds; past the budget the least
recently used of them are dropped instead, so the flood goes on and the process stays
within the budget plus a fixed overhead. Flooders that stay in their rooms hold memory
that cannot be dropped: then a publish that would grow a room is answered
`overloaded`, new connections are refused (WebSocket close 1013, SSE 503) and /readyz
answers 503, while a chat room whose history is full goes on, at its latency. When the
flooders go, their rooms are dropped and the gateway takes new work again."""
import asyncio
import json
import time

import websockets

from harness import (GatewayTestCase, WSClient, http, rss_kb, run_tests, sanitized,
                     SSEStream)

BUDGET_MB = 256
# What the process holds besides the budget: the binary, lws and OpenSSL, the loop,
# the allocator's slack, the test's few connections (docs/OPERATIONS.md, "Sizing").
OVERHEAD_MB = 32
BIG = "x" * 64000  # with the envelope, just under max_message_bytes
FLOOD_HISTORY_BYTES = 4 << 20  # a flood room keeps 4 MiB (about 8 MiB of memory)


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def publish_burst(c, room, n):
    """n publishes of BIG to room without waiting in between; the answers, in order.
    The client is joined, so its own messages come back too: they are read and
    dropped."""
    for i in range(n):
        await c.send({"type": "publish", "room": room, "data": BIG, "id": f"{room}-{i}"})
    answers = []
    deadline = time.monotonic() + 60
    while len(answers) < n:
        raw = await asyncio.wait_for(c.ws.recv(), max(0.1, deadline - time.monotonic()))
        obj = json.loads(raw)
        if obj["type"] != "message":
            answers.append(obj)
    return answers


class Chatter:
    """A good client in `chat` (history full): publishes a small message every 20 ms
    and times each until it comes back."""

    def __init__(self, c):
        self.c = c
        self.rtts = []
        self.errors = []
        self.stop = False

    async def run(self):
        i = 0
        while not self.stop:
            i += 1
            t0 = time.monotonic()
            ans = await self.c.request("publish", room="chat", data={"n": i})
            if ans["type"] != "ack":
                self.errors.append(ans)
            else:
                m = await self.c.message(timeout=10)
                self.rtts.append(time.monotonic() - t0)
                assert m["data"] == {"n": i}, m
            await asyncio.sleep(0.02)

    def p(self, q):
        xs = sorted(self.rtts)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


class FloodTest(GatewayTestCase):
    CONFIG = {
        "limits": {"memory_mb": BUDGET_MB, "max_message_bytes": 65536,
                   "max_rooms_per_connection": 16, "max_rooms": 10000,
                   "publish_rate_per_connection": 0, "publish_rate_per_address": 0},
        "rooms": [
            {"name": "chat", "history": 20},
            {"pattern": "flood:*", "history": 200, "history_bytes": FLOOD_HISTORY_BYTES,
             "idle_seconds": 3600},
        ],
    }

    def readyz(self):
        r = http(self.gw, "GET", "/readyz")
        return r.status, r.json()

    async def chatter(self):
        c = await self.ws()
        await c.join("chat")
        for i in range(20):  # a chat room in use: its history is full
            await c.publish("chat", {"fill": i})
        await c.take(20)
        ch = Chatter(c)
        for _ in range(25):  # its latency on a quiet gateway
            i = len(ch.rtts)
            t0 = time.monotonic()
            await c.publish("chat", {"n": -1})
            await c.message()
            ch.rtts.append(time.monotonic() - t0)
        base = ch.p(0.5)
        ch.rtts = []
        return ch, base

    async def test_flood(self):
        gw = self.gw
        status, body = self.readyz()
        self.assertEqual((status, body["status"]), (200, "ready"))
        self.assertEqual(body["memory_limit"], BUDGET_MB << 20)
        start_rss = rss_kb(gw.proc.pid) / 1024

        ch, base_ms = await self.chatter()
        chat_task = asyncio.create_task(ch.run())

        # 1. the leaving flood: 48 rooms of 64 x 64 KB (about 400 MiB stored in all)
        f = await self.ws()
        t0 = time.monotonic()
        for r in range(48):
            room = f"flood:{r}"
            await f.join(room)
            answers = await publish_burst(f, room, 64)
            bad = [a for a in answers if a["type"] != "ack"]
            self.assertEqual(bad, [], f"room {r}: idle rooms could have made way")
            self.assertEqual((await f.request("leave", room=room))["type"], "left")
        flood_s = time.monotonic() - t0
        status, body = self.readyz()
        self.assertLessEqual(body["memory_used"], (BUDGET_MB + 1) << 20, body)
        self.assertIn("memory: ", gw.stderr())
        # the oldest rooms made way; the newest are still there
        rooms = {r["name"] for r in gw.rooms()["rooms"]}
        self.assertNotIn("flood:0", rooms)
        self.assertIn("flood:47", rooms)

        # 2. flooders that stay: 4 connections x 16 rooms x 8 MiB cannot be dropped
        holders = [await self.ws() for _ in range(4)]  # connected while there is room
        refused = 0
        for h, c in enumerate(holders):
            for r in range(16):
                room = f"flood:h{h}-{r}"
                ans = await c.request("join", room=room)
                if ans["type"] == "error":
                    self.assertEqual(ans["code"], "overloaded", ans)
                    refused += 1
                    continue
                for a in await publish_burst(c, room, 64):
                    if a["type"] == "error":
                        self.assertEqual(a["code"], "overloaded", a)
                        refused += 1
        self.assertGreater(refused, 0, "flooders that hold their rooms were never refused")
        status, body = self.readyz()
        self.assertEqual((status, body["status"]), (503, "overloaded"), body)
        self.assertLessEqual(body["memory_used"], (BUDGET_MB + 1) << 20, body)
        # a new connection is told why and closed with 1013; a new stream gets 503
        late = await WSClient.connect(gw)
        ans = await late.answer()
        self.assertEqual((ans["type"], ans["code"]), ("error", "overloaded"), ans)
        with self.assertRaises(websockets.ConnectionClosed) as cm:
            await asyncio.wait_for(late.ws.recv(), 5)
        self.assertEqual(cm.exception.rcvd.code, 1013)
        st = SSEStream(gw, "room=chat")
        deadline = time.monotonic() + 5
        while not st.status_line() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.assertIn(" 503", st.status_line())
        st.close_sync()
        r = http(gw, "POST", "/rooms/flood:new/messages", body=json.dumps({"a": 1}))
        self.assertError(r, 503, "overloaded")

        ch.stop = True
        await chat_task
        self.assertEqual(ch.errors, [], "the chat room (history full) was refused")
        self.assertGreater(len(ch.rtts), 20)
        p50, p99 = ch.p(0.5), ch.p(0.99)

        # 3. the flooders go: their rooms are dropped at the next tick
        for c in holders + [f]:
            await c.close()
        deadline = time.monotonic() + 10
        while self.readyz()[0] != 200:
            self.assertLess(time.monotonic(), deadline, "still overloaded: " +
                            json.dumps(self.readyz()[1]))
            await asyncio.sleep(0.2)
        again = await self.ws()
        await again.join("flood:after")
        await again.publish("flood:after", "ok")
        self.assertIn("memory: within the budget again", gw.stderr())

        peak = peak_rss_mb(gw.proc.pid)
        print(f"\nflood: {48 * 64 * 64000 / 2**20:.0f} MiB published in {flood_s:.1f} s; "
              f"RSS at start {start_rss:.1f} MiB, peak {peak:.1f} MiB "
              f"(budget {BUDGET_MB} + overhead {OVERHEAD_MB}); chat latency p50 "
              f"{base_ms:.1f} ms quiet, p50 {p50:.1f} / p99 {p99:.1f} ms during the "
              f"floods ({len(ch.rtts)} messages)", flush=True)
        if sanitized(gw):
            print("SKIP the RSS bound: an AddressSanitizer build's RSS is its shadow "
                  "memory and quarantine, not the gateway's", flush=True)
        else:
            self.assertLess(peak, BUDGET_MB + OVERHEAD_MB)
            # the good client keeps its latency: no worse than a loaded machine's tail
            self.assertLess(p50, max(50.0, 10 * base_ms))


if __name__ == "__main__":
    run_tests()
