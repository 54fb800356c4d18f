"""One room, every kind of subscriber, publishes from HTTP and WS alternately:
everyone sees the identical sequence of (seq, data)."""
import asyncio
import json
import os
import subprocess
import sys

from harness import NODE_DIR, GatewayTestCase, die_with_parent, node_ready, run_tests

N = 200
ROOM = "t:mixed"


def stop_node(proc, *files):
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)
    for f in files:
        f.close()


class MixedTest(GatewayTestCase):

    def start_node(self):
        ok, why = node_ready()
        if not ok:
            sys.stderr.write(f"\n*** SKIP eventsource subscriber: {why} ***\n")
            return None
        out = open(os.path.join(self.gw.dir, "es.out"), "w+")
        err = open(os.path.join(self.gw.dir, "es.err"), "w+")
        proc = subprocess.Popen(
            ["node", "es_client.mjs", f"{self.gw.base}/events?room={ROOM}", str(N), "60"],
            cwd=NODE_DIR, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            env={**os.environ, "NODE_TLS_REJECT_UNAUTHORIZED": "0"},
            preexec_fn=die_with_parent())
        self.addCleanup(stop_node, proc, out, err)
        return proc, out, err

    async def test_all_subscribers_same_sequence(self):
        node = self.start_node()
        ws = [await self.ws() for _ in range(3)]
        for c in ws:
            self.assertEqual(await c.join(ROOM), 0)
        sse = [self.sse(f"room={ROOM}", http2=h2) for h2 in (False, True)]
        for s in sse:
            await asyncio.to_thread(s.wait_started)
        subscribers = 5 + (node is not None)
        await asyncio.to_thread(self.gw.wait_subscribers, ROOM, subscribers, 20)

        expected = []
        for i in range(1, N + 1):
            data = {"i": i, "via": "ws" if i % 2 == 0 else "http", "pad": "p" * (i % 17)}
            if i % 2:
                r = await self.ahttp("POST", f"/rooms/{ROOM}/messages", json.dumps(data),
                                     http2=(i % 4 == 1))
                self.assertEqual(r.status, 201, r)
                seq = r.json()["seq"]
            else:
                seq = await ws[0].publish(ROOM, data)
            self.assertEqual(seq, i, "publish answer seq")
            expected.append((i, data))

        for k, c in enumerate(ws):
            got = [(m["seq"], m["data"]) for m in await c.take(N, timeout=20)]
            self.assertEqual(got, expected, f"WS subscriber {k}")
            await c.assert_quiet()
        ids = [f"{ws[0].epoch}/{i}" for i in range(1, N + 1)]  # the joined epoch
        for s, name in zip(sse, ("SSE h1", "SSE h2")):
            events = await asyncio.to_thread(s.take, N, 20)
            got = [(json.loads(e["data"])["seq"], json.loads(e["data"])["data"])
                   for e in events]
            self.assertEqual(got, expected, name)
            self.assertEqual([e["id"] for e in events], ids, f"{name}: EPOCH/SEQ")
        if node is not None:
            proc, out, err = node
            try:
                rc = await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                rc = None
            out.seek(0)
            err.seek(0)
            lines = [json.loads(line) for line in out.read().splitlines() if line]
            self.assertEqual(rc, 0, f"es_client exit; stderr: {err.read()[-2000:]}")
            got = [(json.loads(x["data"])["seq"], json.loads(x["data"])["data"]) for x in lines]
            self.assertEqual(got, expected, "eventsource subscriber")
            self.assertEqual([x["id"] for x in lines], ids, "eventsource: lastEventId")


class MixedCoalescedTest(MixedTest):
    """The same through a 1 ms write window (delivery.coalesce_us), where wakes wait in
    the server's pending list."""
    CONFIG = {"delivery": {"coalesce_us": 1000}}


class WindowLeaveTest(GatewayTestCase):
    """Subscribers that go while their wake waits in a 100 ms write window: the pending
    list must forget them (under ASan a forgotten one is a use after free)."""
    CONFIG = {"delivery": {"coalesce_us": 100000}}

    async def test_leaving_inside_the_window(self):
        for i in range(20):
            sub = await self.ws()
            await sub.join(ROOM)
            # HTTP answers do not wait for the window; the subscriber's wake does.
            r = await self.ahttp("POST", f"/rooms/{ROOM}/messages", json.dumps({"i": i}))
            self.assertEqual(r.status, 201, r)
            sub.ws.transport.abort()
        stayed = await self.ws()
        seq = await stayed.join(ROOM)
        r = await self.ahttp("POST", f"/rooms/{ROOM}/messages", '{"last":true}')
        self.assertEqual((r.status, r.json()["seq"]), (201, seq + 1), r)
        got = await stayed.take(1, timeout=5)
        self.assertEqual([(m["seq"], m["data"]) for m in got], [(seq + 1, {"last": True})])

if __name__ == "__main__":
    run_tests()
