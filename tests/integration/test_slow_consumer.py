"""A slow consumer among many (docs/PROTOCOL.md "Delivery guarantees" and "Closing";
CONFIG.md rooms[].history and on_lag): one raw TLS WebSocket client joins a room with
history H = 50 and then reads nothing while 20 x H = 1000 messages of 4 KB flow to 100
readers (curl SSE streams and python WebSocket clients). Every reader gets every
message, in order, once; the gateway's memory stays bounded (the ring and per-connection
buffers, not the backlog); and the stalled client gets the room's on_lag policy when it
reads again: WS close 4008 "lagged" (disconnect, the default), or a `gap` notice and
then the rest, on an open connection (skip)."""
import asyncio
import json
import struct
import sys
import time

import websockets

from harness import (DEFAULT_ROOMS, GatewayTestCase, RawWS, SSEStream, expect_stream_event,
                     rss_kb, run_tests, sanitized, without_epoch)

H = 50
COUNT = 20 * H
PAD = "x" * 4000          # data {"i": k, "pad": PAD}: a 4 KB message
WINDOW = H // 2           # the publisher stays at most this far ahead of the slowest reader
ROOM = "slow"
# a stalled client's receive buffer: small, so the gateway's writes to it block early
STALLED_RCVBUF = 16384
# stalled clients: if the gateway kept a backlog per stalled client (4 MB each), the
# RSS bound below could not miss it
STALLED = 3


class CountingSSE(SSEStream):
    """An SSEStream that keeps no events (100 readers x 1000 x 4 KB would be 400 MB of
    Python strings): each message event is checked as it arrives (id = EPOCH/SEQ with
    the gateway's epoch, room, data) and only its seq is kept; other events go to
    `others`."""

    def __init__(self, gw, query, epoch, http2=False):
        self.epoch = epoch
        self.seqs = []
        self.others = []
        self.problems = []
        super().__init__(gw, query, http2=http2, max_time=180)

    def _reader(self):
        ev = {}
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r")
            if len(self.lines) < 10:
                self.lines.append(line)
            self._started.set()
            if line == "":
                if ev.get("event") == "stream":
                    self.stream_id = json.loads(ev["data"])["stream"]
                elif ev.get("event") == "message":
                    m = json.loads(ev["data"])
                    seq = m.get("seq")
                    if (ev.get("id") != f"{self.epoch}/{seq}" or m.get("room") != ROOM
                            or m.get("data") != {"i": seq, "pad": PAD}):
                        self.problems.append(f"id {ev.get('id')!r}: {ev['data'][:200]}")
                    self.seqs.append(seq)
                elif ev:
                    self.others.append(ev)
                ev = {}
            elif line.startswith(":"):
                pass
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "retry":
                    self.retry = value
                elif field in ("id", "event", "data"):
                    ev[field] = value
        self.eof.set()
        self._started.set()


class WSReader:
    """A WSClient read by a task that checks and counts its messages."""

    def __init__(self, client):
        self.c = client
        self.seqs = []
        self.problems = []
        self.task = asyncio.create_task(self._run())

    async def _run(self):
        while len(self.seqs) < self.want:
            try:
                raw = await self.c.ws.recv()
            except websockets.ConnectionClosed as e:
                self.problems.append(f"closed: {e.code} {e.reason!r}")
                return
            m = json.loads(raw)
            if m.get("type") != "message":
                self.problems.append(raw[:200])
                continue
            if m.get("room") != ROOM or m.get("data") != {"i": m.get("seq"), "pad": PAD}:
                self.problems.append(raw[:200])
            self.seqs.append(m["seq"])

    want = COUNT + 1


def kb(n):
    return f"{n / 1024:.1f} MB"


class SlowConsumerBase(GatewayTestCase):
    ON_LAG = None
    SSE_READERS = 90
    WS_READERS = 10
    CONFIG = {}

    @classmethod
    def config(cls, on_lag):
        room = {"name": ROOM, "history": H}
        if on_lag:
            room["on_lag"] = on_lag
        # pings far apart: the stalled client answers none, and must not be closed
        # for that during the run
        return {"limits": {"max_message_bytes": 8192},
                "ws": {"ping_seconds": 600, "ping_timeout_seconds": 60},
                "rooms": DEFAULT_ROOMS + [room]}

    async def run_flow(self):
        gw = self.gw
        # starting 100 curl processes blocks the loop for a moment; that is expected
        asyncio.get_running_loop().slow_callback_duration = 10
        t_start = time.monotonic()
        stalled = []
        for _ in range(STALLED):
            st = await asyncio.to_thread(RawWS, gw, STALLED_RCVBUF)
            self.addCleanup(st.close)
            await asyncio.to_thread(st.send, {"type": "join", "room": ROOM, "id": "s"})
            joined = await asyncio.to_thread(st.json_frame)
            self.assertEqual(without_epoch(joined),
                             {"type": "joined", "room": ROOM, "seq": 0, "id": "s"})
            stalled.append(st)
        # from here on the stalled clients read nothing until the flow is over

        sse = []
        for k in range(self.SSE_READERS):
            s = CountingSSE(gw, f"room={ROOM}", joined["epoch"], http2=(k % 3 == 2))
            self._clients.append(s)
            sse.append(s)
        for s in sse:
            await asyncio.to_thread(expect_stream_event, s, 20)
        ws = []
        for _ in range(self.WS_READERS):
            c = await self.ws()
            await c.join(ROOM)
            ws.append(WSReader(c))
        pub = await self.ws()
        await pub.join(ROOM)
        n_conns = STALLED + self.SSE_READERS + self.WS_READERS + 1
        await asyncio.to_thread(gw.wait_subscribers, ROOM, n_conns, 30)
        print(f"\n{self.SSE_READERS} SSE + {self.WS_READERS} WS readers, a publisher and"
              f" {STALLED} stalled clients connected in {time.monotonic() - t_start:.1f}s")

        def progress():
            return min([len(s.seqs) for s in sse] + [len(r.seqs) for r in ws])

        base = rss_kb(gw.proc.pid)
        peak = base
        t0 = time.monotonic()
        for k in range(1, COUNT + 1):
            deadline = time.monotonic() + 30
            while progress() < k - 1 - WINDOW:
                if time.monotonic() > deadline:
                    self.fail(f"readers stuck at {progress()} of {k - 1} for 30 s")
                await asyncio.sleep(0.002)
            self.assertEqual(await pub.publish(ROOM, {"i": k, "pad": PAD}), k)
            pub.messages.clear()
            if k % 25 == 0:
                peak = max(peak, rss_kb(gw.proc.pid))
        t_pub = time.monotonic() - t0
        deadline = time.monotonic() + 60
        while progress() < COUNT and time.monotonic() < deadline:
            peak = max(peak, rss_kb(gw.proc.pid))
            await asyncio.sleep(0.05)
        peak = max(peak, rss_kb(gw.proc.pid))
        print(f"{COUNT} x {len(PAD)} B published in {t_pub:.1f}s, all delivered after"
              f" {time.monotonic() - t0:.1f}s")

        want = list(range(1, COUNT + 1))
        for k, s in enumerate(sse):
            self.assertEqual(s.problems, [], f"SSE reader {k}: bad events")
            self.assertEqual(s.others, [], f"SSE reader {k}: unexpected events")
            self.assertEqual(s.seqs, want, f"SSE reader {k} (http2={k % 3 == 2}):"
                                           f" {len(s.seqs)} messages")
        for k, r in enumerate(ws):
            self.assertEqual(r.problems, [], f"WS reader {k}: bad frames")
            self.assertEqual(r.seqs, want, f"WS reader {k}: {len(r.seqs)} messages")

        # bounded memory: what the gateway may hold beyond its base is the ring (H
        # messages, each stored as a WS frame and an SSE event), the TLS record buffers
        # of each connection while it is being written to (OpenSSL: ~17 KB write +
        # ~17 KB read, released when idle), one pending partial write per blocked
        # stalled connection (at most one write buffer, 64 KB), plus 2 MB of allocator
        # slack. Not the 4 MB backlog of each stalled client, nor anything per message.
        msg_bytes = 2 * (len(PAD) + 200) + 256
        budget_kb = (H * msg_bytes + n_conns * 36 * 1024 + STALLED * 64 * 1024) // 1024 \
            + 2 * 1024
        growth = peak - base
        print(f"RSS: base {base} KB, peak {peak} KB, growth {growth} KB; budget {budget_kb} KB"
              f" = ring {H} x {msg_bytes} B + {n_conns} connections x 36 KB"
              f" + {STALLED} x 64 KB + 2 MB slack")
        if sanitized(gw):
            sys.stderr.write("\n*** SKIP RSS bound: AddressSanitizer build (its quarantine"
                             " keeps freed memory resident) ***\n")
        else:
            self.assertLess(growth, budget_kb,
                            f"gateway RSS grew {kb(growth)} (base {kb(base)}, peak"
                            f" {kb(peak)}); budget {kb(budget_kb)}")
        return stalled, pub, ws, sse

    def read_stalled(self, stalled, stop_after_seq=None, timeout=20):
        """Everything the stalled client gets when it finally reads: a list of
        ("message", seq) / ("gap", from, to) / ("close", code, reason) / ("eof",)."""
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                op, payload = stalled.frame(timeout=max(0.1, deadline - time.monotonic()))
            except EOFError:
                out.append(("eof",))
                return out
            except OSError as e:  # reset, or TLS torn down
                out.append(("eof", repr(e)))
                return out
            if op == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                out.append(("close", code, payload[2:]))
                return out
            if op == 0x9:
                continue
            if op != 0x1:
                out.append(("opcode", op))
                continue
            m = json.loads(payload)
            if m.get("type") == "message":
                if m.get("data") != {"i": m.get("seq"), "pad": PAD}:
                    out.append(("bad", payload[:100]))
                out.append(("message", m["seq"]))
                if m["seq"] == stop_after_seq:
                    return out
            elif m.get("type") == "gap":
                out.append(("gap", m.get("room"), m.get("from"), m.get("to")))
            else:
                out.append(("other", m))
        self.fail(f"the stalled client read nothing conclusive within {timeout}s:"
                  f" {out[:3]} ... {out[-3:]}")


class SlowConsumerDisconnectTest(SlowConsumerBase):
    CONFIG = SlowConsumerBase.config(None)  # on_lag: disconnect, the default

    async def test_stalled_client_lags_out_others_get_everything(self):
        stalled, pub, ws, sse = await self.run_flow()
        for st in stalled:
            got = await asyncio.to_thread(self.read_stalled, st)
            seqs = [x[1] for x in got if x[0] == "message"]
            print(f"stalled client: {len(seqs)} messages buffered, then {got[-1][:2]}")
            self.assertEqual(got[:-1], [("message", k) for k in range(1, len(seqs) + 1)],
                             "what was buffered for it: seqs 1..k in order, nothing else")
            self.assertLess(len(seqs), COUNT - H, "it did fall behind")
            self.assertEqual(got[-1], ("close", 4008, b"lagged"), "then close 4008 lagged")
        await asyncio.to_thread(self.gw.wait_subscribers, ROOM, len(ws) + len(sse) + 1, 10)
        # the others carry on
        self.assertEqual(await pub.publish(ROOM, {"i": COUNT + 1, "pad": PAD}), COUNT + 1)
        for r in ws:
            await asyncio.wait_for(r.task, 10)
            self.assertEqual(r.seqs[-1], COUNT + 1)


class SlowConsumerSkipTest(SlowConsumerBase):
    CONFIG = SlowConsumerBase.config("skip")
    SSE_READERS = 30
    WS_READERS = 10

    async def test_stalled_client_gets_gap_and_continues(self):
        stalled, pub, ws, sse = await self.run_flow()
        for st in stalled:
            await self.check_skipped(st)
        # still open: live traffic and a round trip
        self.assertEqual(await pub.publish(ROOM, {"i": COUNT + 1, "pad": PAD}), COUNT + 1)
        for st in stalled:
            self.assertEqual(await asyncio.to_thread(self.read_stalled, st, COUNT + 1),
                             [("message", COUNT + 1)])
            await asyncio.to_thread(st.send, {"type": "ping", "id": "alive"})
            self.assertEqual(await asyncio.to_thread(st.json_frame),
                             {"type": "pong", "id": "alive"})
        info = await asyncio.to_thread(self.gw.room_info, ROOM)
        self.assertEqual(info["subscribers"], len(ws) + len(sse) + 1 + STALLED, info)
        for r in ws:
            await asyncio.wait_for(r.task, 10)
            self.assertEqual(r.seqs[-1], COUNT + 1)

    async def check_skipped(self, stalled):
        got = await asyncio.to_thread(self.read_stalled, stalled, COUNT)
        self.assertNotIn(got[-1][0], ("close", "eof"), f"connection closed: {got[-3:]}")
        # messages and gaps together cover 1..COUNT exactly once, in order
        covered, gaps = [], []
        for x in got:
            if x[0] == "message":
                covered.append(x[1])
            elif x[0] == "gap":
                self.assertEqual(x[1], ROOM, x)
                gaps.append((x[2], x[3]))
                covered.extend(range(x[2], x[3] + 1))
            else:
                self.fail(f"unexpected from the stalled client: {x}")
        buffered = next(i for i, x in enumerate(got) if x[0] != "message")
        print(f"stalled client: {buffered} messages buffered, gaps {gaps}, then"
              f" {len(got) - buffered - len(gaps)} messages")
        self.assertEqual(covered, list(range(1, COUNT + 1)),
                         "messages and gap notices account for every seq once, in order")
        self.assertGreaterEqual(len(gaps), 1, "it was told about a gap")
        self.assertEqual(got[buffered][0], "gap", "the gap notice comes before what follows")
        # where the last gap ends depends on when the kernel let the client's buffer
        # drain; what must hold is that nothing after it is missing (covered, above)


if __name__ == "__main__":
    run_tests()
