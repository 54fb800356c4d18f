"""The chat WebSocket from a browser page the gateway serves: over HTTP/2 as an RFC 8441
extended CONNECT on the page's own connection (Chromium's first choice), opened at once
(it used to be refused, and Chromium fell back to HTTP/1.1 after 5 s), and over
HTTP/1.1 when Chromium has HTTP/2 disabled."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chromium import BrowserTestCase, require_browser  # noqa: E402
from harness import Gateway, run_tests  # noqa: E402

require_browser("test_websocket")

# Opens the socket, joins ROOM, publishes one message and waits for it to come back.
ROUND_TRIP = """async (room) => {
  const t0 = performance.now();
  const ws = new WebSocket(`wss://${location.host}/ws`, 'roomgate.v1');
  const got = [];
  const opened = await new Promise((resolve) => {
    ws.onopen = () => resolve(performance.now() - t0);
    ws.onerror = () => resolve(-1);
  });
  if (opened < 0) return {opened, error: 'no socket'};
  const back = new Promise((resolve) => {
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      got.push(m.type);
      if (m.type === 'message') resolve(m.data);
    };
    setTimeout(() => resolve(null), 5000);
  });
  ws.send(JSON.stringify({type: 'join', room}));
  ws.send(JSON.stringify({type: 'publish', room, data: {text: 'hello from the page'}}));
  const data = await back;
  ws.close(1000);
  return {opened, protocol: ws.protocol, data, got,
          page: performance.getEntriesByType('navigation')[0].nextHopProtocol};
}"""


# Publishes N messages from the page and collects them back; then sends a message past
# limits.max_message_bytes (4096 in the test config) and a ping: the answers.
BURST_AND_LIMIT = """async ({room, n}) => {
  const ws = new WebSocket(`wss://${location.host}/ws`, 'roomgate.v1');
  await new Promise((r) => { ws.onopen = r; });
  const seqs = [];
  const all = new Promise((resolve) => {
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === 'message') seqs.push(m.seq);
      if (seqs.length === n) resolve();
    };
    setTimeout(resolve, 10000);
  });
  ws.send(JSON.stringify({type: 'join', room}));
  for (let i = 0; i < n; i++)
    ws.send(JSON.stringify({type: 'publish', room, data: {i, pad: 'x'.repeat(1000)}}));
  await all;
  const answers = [];
  const pong = new Promise((resolve) => {
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      answers.push(m.type === 'error' ? m.code : m.type);
      if (m.type === 'pong') resolve();
    };
    setTimeout(resolve, 5000);
  });
  ws.send('{"type":"publish","room":"' + room + '","data":"' + 'y'.repeat(5000) + '"}');
  ws.send('{"type":"ping"}');
  await pong;
  return {seqs, answers, open: ws.readyState === WebSocket.OPEN};
}"""

# A socket that reports how it was closed.
OPEN_AND_WATCH = """async () => {
  window.closes = [];
  const ws = new WebSocket(`wss://${location.host}/ws`, 'roomgate.v1');
  ws.onclose = (e) => window.closes.push(e.code);
  await new Promise((r) => { ws.onopen = r; });
  ws.send(JSON.stringify({type: 'join', room: 'lobby'}));
  return true;
}"""


class WebSocketFromBrowser(BrowserTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gw = Gateway().start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        reports = cls.gw.sanitizer_reports()
        if rc != 0 or reports:
            sys.stderr.write(cls.gw.stderr())
        assert rc == 0 and not reports, f"gateway exit {rc}, sanitizer reports {reports}"

    def test_http2_extended_connect(self):
        page = self.chromium().page(self.gw.base + "/")
        self.assertEqual(page.status, 200)
        r = page.eval(ROUND_TRIP, "t:h2")
        print(f"WebSocket over HTTP/2: open after {r['opened']:.1f} ms", file=sys.stderr)
        self.assertEqual(r["page"], "h2", r)
        self.assertEqual(r["data"], {"text": "hello from the page"}, r)
        self.assertEqual(r["protocol"], "roomgate.v1", r)
        self.assertLess(r["opened"], 300, r)
        hs = page.websockets()
        self.assertEqual([h["status"] for h in hs], [200],
                         f"one handshake, answered as RFC 8441 does (200, not 101): {hs}")

    def test_http2_order_and_limits(self):
        """Over HTTP/2 as over HTTP/1.1: 300 messages of 1 KB back in seq order, and a
        message past limits.max_message_bytes answered too_large, the socket open."""
        page = self.chromium().page(self.gw.base + "/")
        r = page.eval(BURST_AND_LIMIT, {"room": "t:h2burst", "n": 300})
        self.assertEqual(r["seqs"], list(range(1, 301)), r)
        self.assertEqual(r["answers"], ["too_large", "pong"], r)
        self.assertTrue(r["open"], r)
        self.assertEqual([h["status"] for h in page.websockets()], [200])

    def test_http11_when_http2_is_off(self):
        page = self.chromium("--disable-http2").page(self.gw.base + "/")
        r = page.eval(ROUND_TRIP, "t:h1")
        print(f"WebSocket over HTTP/1.1: open after {r['opened']:.1f} ms", file=sys.stderr)
        self.assertEqual(r["page"], "http/1.1", r)
        self.assertEqual(r["data"], {"text": "hello from the page"}, r)
        self.assertLess(r["opened"], 300, r)
        self.assertEqual([h["status"] for h in page.websockets()], [101])


class ShutdownFromBrowser(BrowserTestCase):
    def test_sigterm_closes_http2_websocket_1001(self):
        gw = Gateway().start()
        try:
            page = self.chromium().page(gw.base + "/")
            page.eval(OPEN_AND_WATCH)
            gw.wait_subscribers("lobby", 1)
            self.assertEqual(gw.stop(), 0, gw.stderr())
            self.assertEqual(page.wait("() => window.closes.length && window.closes"), [1001])
            self.assertEqual([h["status"] for h in page.websockets()], [200])
        finally:
            gw.stop()
        self.assertEqual(gw.sanitizer_reports(), [])


if __name__ == "__main__":
    run_tests()
