"""Issue 10 item 17: a black-holed HTTP/1.1 SSE member (its network gone without a FIN
or RST) was still counted, and in presence, after 120 s: the keepalive comment went
into a socket buffer that TCP retransmits for many minutes. Now written data may stay
unacknowledged only ws.ping_timeout_seconds (TCP_USER_TIMEOUT), so the stream ends
within sse.keepalive_seconds + ws.ping_timeout_seconds, as WebSocket connections end
by their pings.

The black hole is real: the test runs in a network namespace of its own (unshare -n,
loopback only) where tc holds back every packet to and from the member's port, while the
gateway and the other clients go on over the same loopback."""
import asyncio
import os
import shutil
import subprocess
import sys
import time

if os.environ.get("RG_NETNS") != "1":
    why = None
    if os.geteuid() != 0:
        why = "needs root for a network namespace and tc"
    elif not (shutil.which("unshare") and shutil.which("tc") and shutil.which("ip")):
        why = "needs unshare (util-linux), tc and ip (iproute2)"
    if why:
        print(f"\n*** SKIP test_half_open: {why} ***\n", file=sys.stderr)
        sys.exit(77)
    os.execvp("unshare", ["unshare", "-n", "env", "RG_NETNS=1", sys.executable,
                          os.path.abspath(__file__)] + sys.argv[1:])

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

from attack import GatewayTestCase, raw_tls, raw_ws, run_tests  # noqa: E402

KEEPALIVE, PING, TIMEOUT = 2, 30, 2


def black_hole(port):
    """Every packet from or to this local port is held from now on: queued behind an
    8 bit/s shaper, never delivered in the test's time and never refused, so TCP on
    both ends sees only silence (a qdisc that drops would tell the sender)."""
    cmds = [
        "qdisc add dev lo root handle 1: htb default 10",
        "class add dev lo parent 1: classid 1:10 htb rate 10gbit",
        "class add dev lo parent 1: classid 1:20 htb rate 8bit ceil 8bit",
        "qdisc add dev lo parent 1:20 handle 20: pfifo limit 100000",
        f"filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport {port} 0xffff flowid 1:20",
        f"filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport {port} 0xffff flowid 1:20",
    ]
    for c in cmds:
        subprocess.run(["tc"] + c.split(), check=True, capture_output=True)


class HalfOpenTest(GatewayTestCase):
    CONFIG = {"sse": {"keepalive_seconds": KEEPALIVE},
              "ws": {"ping_seconds": PING, "ping_timeout_seconds": TIMEOUT},
              "rooms": [{"name": "lobby", "history": 100, "presence": True},
                        {"pattern": "t:*", "history": 100}]}

    async def test_black_holed_sse_member_is_dropped(self):
        gw = self.gw
        s = raw_tls(gw)
        self.addCleanup(s.close)
        s.sendall(b"GET /events?room=lobby HTTP/1.1\r\nHost: localhost\r\n"
                  b"Accept: text/event-stream\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        self.assertIn(b" 200 ", head.split(b"\r\n")[0])
        member = await self.ws()  # a WebSocket member that stays reachable
        await member.join("lobby")
        await asyncio.to_thread(gw.wait_subscribers, "lobby", 2, 5)
        port = s.getsockname()[1]
        black_hole(port)
        t0 = time.monotonic()
        limit = KEEPALIVE + TIMEOUT + 8  # + TCP's retransmission granularity and slack
        gone = None
        while time.monotonic() - t0 < max(limit, 25):
            if (await asyncio.to_thread(gw.room_info, "lobby"))["subscribers"] == 1:
                gone = time.monotonic() - t0
                break
            await asyncio.sleep(0.2)
        print(f"\nblack-holed SSE member dropped after "
              f"{'%.1f s' % gone if gone is not None else 'more than 25 s'}")
        self.assertIsNotNone(gone, "a black-holed SSE stream was still counted after 25 s")
        self.assertLess(gone, limit)
        # the reachable member heard it leave
        deadline = time.monotonic() + 5
        events = []
        while time.monotonic() < deadline:
            a = await member.answer(timeout=5)
            events.append(a)
            if a.get("type") == "presence" and a.get("event") == "leave":
                break
        self.assertEqual(events[-1].get("event"), "leave", events)


if __name__ == "__main__":
    run_tests()
