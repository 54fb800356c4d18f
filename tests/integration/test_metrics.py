"""GET /metrics (docs/OPERATIONS.md, "Metrics"): the Prometheus text format, checked by
Debian's promtool on a live scrape, and counters that move by exactly what a scripted
session did: connections, publishes and deliveries by transport, errors by code,
refusals by limit."""
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import time

from harness import GatewayTestCase, RawWS, http, raw_tls, run_tests

LINE = re.compile(r'^(roomgate_\w+)(\{[^}]*\})? ([0-9.e+-]+)$')


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
        v = float(m.group(3))
        out[m.group(1) + (m.group(2) or "")] = int(v) if v.is_integer() else v
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
                'roomgate_connections_opened_total{transport="ws",tls="true",http="1.1"}': 2,
                'roomgate_connections_opened_total{transport="sse",tls="true",http="1.1"}': 1,
                'roomgate_received_bytes_total{transport="http"}': 3,  # "0", "1", "2"
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
        for key in ('roomgate_sent_bytes_total{transport="ws"}',
                    'roomgate_received_bytes_total{transport="ws"}',
                    "roomgate_write_bytes_count", "roomgate_loop_pass_seconds_count",
                    'roomgate_tcp_connections_accepted_total{tls="true"}'):
            self.assertGreater(after[key], before.get(key, 0), key)
        self.assertGreater(after["roomgate_loop_pass_seconds_sum"], 0)
        self.assertGreater(after["roomgate_process_resident_memory_bytes"], 1 << 20)
        self.assertGreater(after["roomgate_process_open_fds"], 3)
        # one gateway on its own: no Redis to be ready for
        self.assertNotIn("roomgate_cluster_ready", after)
        self.assertEqual(after["roomgate_cluster_outages_total"], 0)
        self.assertGreater(after["roomgate_memory_budget_used_bytes"], 0)
        await a.close()
        st.close_sync()
        await self.wait_for({'roomgate_connections_open{transport="ws"}': 1,
                             'roomgate_connections_open{transport="sse"}': 0})


    async def test_handshake_failures_by_reason(self):
        """A connection that ends before any request: its TLS handshake unfinished, or
        finished with nothing asked; an upgrade to another path."""
        before, _ = await asyncio.to_thread(scrape, self.gw)
        with socket.create_connection(("127.0.0.1", self.gw.port)) as s:
            s.sendall(b"GET / HTTP/1.1\r\n\r\n")  # plain HTTP to a TLS port
            s.settimeout(5)
            try:
                s.recv(100)  # the gateway closes it
            except ConnectionResetError:
                pass
        raw_tls(self.gw).close()
        r = await self.ahttp("GET", "/elsewhere", headers=["Upgrade: websocket",
                             "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="])
        self.assertNotEqual(r.status, 101, r)
        key = 'roomgate_handshake_failures_total{reason="%s"}'
        await self.wait_for({key % k: before.get(key % k, 0) + 1
                             for k in ("tls", "no_request", "upgrade")})


    async def test_alerts_and_dashboard_name_live_metrics(self):
        """deploy/: the alert rules pass promtool, and every metric they and the Grafana
        dashboard name is one a live scrape has."""
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        rules = os.path.join(root, "deploy", "prometheus", "roomgate-alerts.yml")
        out = subprocess.run(["promtool", "check", "rules", rules], capture_output=True,
                             timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        with open(os.path.join(root, "deploy", "grafana", "roomgate-dashboard.json")) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        self.assertGreaterEqual(len(exprs), 12)
        with open(rules) as f:
            text = f.read() + "\n".join(exprs)
        now, _ = await asyncio.to_thread(scrape, self.gw)
        live = {k.split("{")[0] for k in now}
        named = set(re.findall(r"roomgate_[a-z_]+", text))
        self.assertGreaterEqual(len(named), 15)
        self.assertEqual(named - live, set(), "named but not exported")


async def gw_wait_subscribers(gw, room, n):
    await asyncio.to_thread(gw.wait_subscribers, room, n)


class MetricsLagTest(GatewayTestCase):
    """A subscriber that stops reading is counted lagged, once."""
    CONFIG = {"limits": {"max_message_bytes": 65536, "max_pending_bytes": 262144},
              "rooms": [{"name": "slow", "history": 4}]}

    async def test_a_stalled_subscriber(self):
        before, _ = await asyncio.to_thread(scrape, self.gw)
        stalled = await asyncio.to_thread(RawWS, self.gw, 4096)
        try:
            stalled.send({"type": "join", "room": "slow"})
            await asyncio.to_thread(self.gw.wait_subscribers, "slow", 1)
            pub = await self.ws()
            await pub.join("slow")
            for i in range(120):  # 7 MB: past socket buffers and max_pending_bytes
                await pub.publish("slow", "x" * 60000)
            after = await MetricsTest.wait_for(self, {
                "roomgate_lagged_total": before.get("roomgate_lagged_total", 0) + 1})
            self.assertEqual(after['roomgate_publishes_total{transport="ws"}'],
                             before.get('roomgate_publishes_total{transport="ws"}', 0) + 120)
        finally:
            stalled.close()


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
        before = r.body.decode()
        r = await self.ahttp("GET", "/metrics", headers=["Authorization: Bearer wrong-key"])
        self.assertError(r, 401, "unauthorized")
        r = await self.ahttp("GET", "/metrics", headers=["Authorization: Bearer metrics-key"])
        key = 'roomgate_auth_failures_total{reason="malformed"} '

        def value(text):
            return int(next(x for x in text.splitlines() if x.startswith(key)).split()[-1])
        self.assertEqual(value(r.body.decode()), value(before) + 1)


if __name__ == "__main__":
    run_tests()
