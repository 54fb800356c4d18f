"""GET /metrics (docs/OPERATIONS.md, "Metrics"): the Prometheus text format, checked by
Debian's promtool on a live scrape, and counters that move by exactly what a scripted
session did: connections, publishes and deliveries by transport, errors by code,
refusals by limit."""
import asyncio
import re
import shutil
import subprocess
import time

from harness import GatewayTestCase, http, run_tests

LINE = re.compile(r'^(roomgate_\w+)(\{[^}]*\})? (\d+)$')


def scrape(gw):
    r = http(gw, "GET", "/metrics")
    assert r.status == 200, r
    assert r.headers.get("content-type", "").startswith("text/plain; version=0.0.4"), r.headers
    out = {}
    for line in r.body.decode().splitlines():
        if line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, f"not a sample line: {line!r}"
        out[m.group(1) + (m.group(2) or "")] = int(m.group(3))
    return out, r.body


class MetricsTest(GatewayTestCase):
    CONFIG = {"limits": {"publish_rate_per_connection": 2, "publish_rate_per_address": 0}}

    async def test_promtool_checks_a_live_scrape(self):
        promtool = shutil.which("promtool")
        if not promtool:
            self.fail("promtool missing: scripts/deps.sh --test installs Debian's prometheus")
        c = await self.ws()
        await c.join("t:prom")
        await c.publish("t:prom", 1)
        _, body = await asyncio.to_thread(scrape, self.gw)
        out = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                             timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(out.stdout + out.stderr, b"", "promtool has remarks")

    async def wait_for(self, want, timeout=5):
        """Scrapes until every key of want has its value (deliveries are written a loop
        pass after the publish); the last scrape."""
        deadline = time.monotonic() + timeout
        while True:
            now, _ = await asyncio.to_thread(scrape, self.gw)
            diff = {k: (now.get(k), v) for k, v in want.items() if now.get(k) != v}
            if not diff:
                return now
            if time.monotonic() > deadline:
                self.fail(f"metrics (got, want): {diff}")
            await asyncio.sleep(0.05)

    async def test_counters_move_exactly(self):
        gw = self.gw
        before, _ = await asyncio.to_thread(scrape, gw)

        def want(**delta):
            return {k: before.get(k, 0) + v for k, v in delta.items()}

        a, b = await self.ws(), await self.ws()
        for c in (a, b):
            await c.join("t:count")
        st = self.sse("room=t:count")
        st.wait_started()
        await gw_wait_subscribers(gw, "t:count", 3)
        for i in range(2):
            await a.publish("t:count", i)
        over = await a.request("publish", room="t:count", data=9)  # past 2 a second
        self.assertEqual(over.get("code"), "rate_limited", over)
        for i in range(3):
            self.assertEqual(http(gw, "POST", "/rooms/t:count/messages", body=str(i)).status,
                             201)
        await a.send_raw("{nope")  # bad_json
        self.assertEqual((await a.answer())["code"], "bad_json")
        self.assertEqual(http(gw, "GET", "/nope").status, 404)
        st.take(5)
        after = await self.wait_for({
            **want(**{
                'roomgate_connections_opened_total{transport="ws"}': 2,
                'roomgate_connections_opened_total{transport="sse"}': 1,
                'roomgate_publishes_total{transport="ws"}': 2,
                'roomgate_publishes_total{transport="http"}': 3,
                # 5 messages to each of a, b and the stream
                'roomgate_deliveries_total{transport="ws"}': 10,
                'roomgate_deliveries_total{transport="sse"}': 5,
                'roomgate_errors_total{code="bad_json"}': 1,
                'roomgate_errors_total{code="rate_limited"}': 1,
                'roomgate_errors_total{code="not_found"}': 1,
                'roomgate_refusals_total{limit="publish_rate"}': 1,
            }),
            'roomgate_connections_open{transport="ws"}': 2,
            'roomgate_connections_open{transport="sse"}': 1,
        })
        self.assertGreaterEqual(after["roomgate_subscribers"], 3)
        self.assertGreater(after['roomgate_sent_bytes_total{transport="ws"}'],
                           before.get('roomgate_sent_bytes_total{transport="ws"}', 0))
        self.assertGreater(after["roomgate_process_resident_memory_bytes"], 1 << 20)
        self.assertGreater(after["roomgate_process_open_fds"], 3)
        self.assertGreater(after["roomgate_memory_budget_used_bytes"], 0)
        await a.close()
        st.close_sync()
        await self.wait_for({'roomgate_connections_open{transport="ws"}': 1,
                             'roomgate_connections_open{transport="sse"}': 0})


async def gw_wait_subscribers(gw, room, n):
    await asyncio.to_thread(gw.wait_subscribers, room, n)


class MetricsAuthTest(GatewayTestCase):
    """With an auth section, /metrics is a backend's: an API key opens it."""

    @classmethod
    def setUpClass(cls):
        import hashlib
        import os
        import tempfile
        keys = os.path.join(tempfile.mkdtemp(prefix="rg-metrics-"), "keys")
        with open(keys, "w") as f:
            f.write(hashlib.sha256(b"metrics-key").hexdigest() + "\n")
        cls.CONFIG = {"auth": {"api_keys_file": keys}}
        super().setUpClass()

    async def test_backends_only(self):
        r = await self.ahttp("GET", "/metrics")
        self.assertError(r, 401, "unauthorized")
        r = await self.ahttp("GET", "/metrics", headers=["Authorization: Bearer metrics-key"])
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"roomgate_rooms ", r.body)


if __name__ == "__main__":
    run_tests()
