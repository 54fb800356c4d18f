"""Shared pieces of the attack suite (tests/attack/): the integration harness (real
binary, real TLS, loopback), raw hostile clients, and a good client whose latency is
measured while an attack runs, so that each test shows both that the gateway holds
and what the attack costs everybody else.

Each test_*.py here replays one class of the attack probe of issue 10 and is one ctest
test (label attack) on the release and the sanitizer build."""
import asyncio
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))

from harness import (GatewayTestCase, RawWS, client_ssl, http, raw_tls,  # noqa: E402,F401
                     run_tests, rss_kb, sanitized, ws_frame)


class GoodClient:
    """A WebSocket client in its own room that publishes and waits for its own message,
    back to back, the whole time an attack runs: the round trip a chat user sees.
    Fails loudly when it is disconnected or an answer goes missing."""

    def __init__(self, test, room):
        self.test, self.room = test, room
        self.rtts = []
        self._task = None
        self._stop = False

    async def start(self):
        self.ws = await self.test.ws()
        await self.ws.join(self.room)
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0.2)

    async def _run(self):
        k = 0
        while not self._stop:
            k += 1
            t0 = time.monotonic()
            seq = await self.ws.publish(self.room, {"k": k})
            m = await self.ws.message(timeout=10)
            if m.get("seq") != seq:
                raise AssertionError(f"good client: got {m}, wanted seq {seq}")
            self.rtts.append(time.monotonic() - t0)
            await asyncio.sleep(0.01)

    async def stop(self):
        """Stops the probe; returns (count, p50 ms, p99 ms) and prints them."""
        self._stop = True
        await asyncio.wait_for(self._task, 15)
        r = sorted(self.rtts)
        if not r:
            raise AssertionError("good client: no round trip completed")
        p50 = statistics.median(r) * 1000
        p99 = r[min(len(r) - 1, int(len(r) * 0.99))] * 1000
        print(f"good client during the attack: {len(r)} round trips, p50 {p50:.1f} ms,"
              f" p99 {p99:.1f} ms, max {r[-1] * 1000:.1f} ms")
        return len(r), p50, p99


def raw_ws(gw, rcvbuf=None):
    return RawWS(gw, rcvbuf)


def frames(objs):
    """Many client frames as one bytes object: one write, one loop pass."""
    import json
    return b"".join(ws_frame(json.dumps(o, separators=(",", ":"))) for o in objs)


def read_frames(ws, want, timeout=20, stop=None):
    """Reads (opcode, payload) frames from a RawWS until `want` text frames arrived or
    stop(frame) is true; answers pings. Returns the list of (opcode, payload)."""
    out = []
    deadline = time.monotonic() + timeout
    texts = 0
    while texts < want and time.monotonic() < deadline:
        try:
            op, payload = ws.frame(timeout=max(0.1, deadline - time.monotonic()))
        except (socket.timeout, TimeoutError):
            break
        except (EOFError, OSError):
            out.append((None, b"EOF"))
            break
        if op == 0x9:
            ws.sock.sendall(ws_frame(payload, opcode=0xA))
            continue
        out.append((op, payload))
        if op == 0x8 or (stop and stop((op, payload))):
            break
        texts += op == 0x1
    return out
