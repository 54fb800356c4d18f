"""A page on another origin, in Chromium: when the gateway lists that origin in
http.allowed_origins, its WebSocket, fetch (GET and POST) and EventSource all work;
when it does not, all three fail, and a no-cors POST labelled
application/x-www-form-urlencoded does not land in the room. The other origins are
other gateways on other ports (an origin is scheme, host and port)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chromium import BrowserTestCase, require_browser  # noqa: E402
from harness import Gateway, http, run_tests  # noqa: E402

require_browser("test_origins")

# Everything a page elsewhere might try against the gateway at base, in room.
TRY_ALL = """async ({base, room}) => {
  const out = {};
  out.ws = await new Promise((resolve) => {
    const ws = new WebSocket(base.replace('https:', 'wss:') + '/ws', 'roomgate.v1');
    ws.onopen = () => {
      ws.onmessage = (e) => { const m = JSON.parse(e.data);
                              if (m.type === 'pong') { ws.close(); resolve('pong'); } };
      ws.send('{"type":"ping"}');
    };
    ws.onerror = () => resolve('error');
    setTimeout(() => resolve('timeout'), 5000);
  });
  try {
    const r = await fetch(base + '/rooms/' + room + '/messages', {method: 'POST',
      headers: {'content-type': 'application/json', 'idempotency-key': 'k1'},
      body: JSON.stringify({from: location.origin})});
    out.post = r.status;
  } catch (e) { out.post = 'blocked'; }
  try {
    const r = await fetch(base + '/rooms/' + room + '/messages');
    out.get = (await r.json()).messages.length;
  } catch (e) { out.get = 'blocked'; }
  await fetch(base + '/rooms/' + room + '/messages', {method: 'POST', mode: 'no-cors',
    headers: {'content-type': 'application/x-www-form-urlencoded'},
    body: '"no-cors"'}).catch(() => {});
  out.sse = await new Promise((resolve) => {
    const es = new EventSource(base + '/events?room=' + room);
    es.onopen = () => fetch(base + '/rooms/' + room + '/messages', {method: 'POST',
      headers: {'content-type': 'application/json'}, body: '"live"'});
    es.onmessage = () => { es.close(); resolve('message'); };
    es.onerror = () => { es.close(); resolve('error'); };
    setTimeout(() => { es.close(); resolve('timeout'); }, 5000);
  });
  return out;
}"""


class OriginsInChromium(BrowserTestCase):
    @classmethod
    def setUpClass(cls):
        cls.listed = Gateway().start()
        cls.other = Gateway().start()
        cls.gw = Gateway({"http": {"allowed_origins": [cls.listed.base]}}).start()

    @classmethod
    def tearDownClass(cls):
        for gw in (cls.gw, cls.listed, cls.other):
            rc = gw.stop()
            if rc != 0 or gw.sanitizer_reports():
                sys.stderr.write(gw.stderr())
            assert rc == 0 and not gw.sanitizer_reports(), f"exit {rc}"

    def messages(self, room):
        return [m["data"] for m in http(self.gw, "GET", f"/rooms/{room}/messages")
                .json()["messages"]]

    def test_listed_origin_allowed(self):
        page = self.chromium().page(self.listed.base + "/")
        r = page.eval(TRY_ALL, {"base": self.gw.base, "room": "t:listed"}, timeout=40)
        self.assertEqual(r, {"ws": "pong", "post": 201, "get": 1, "sse": "message"}, r)
        self.assertEqual(self.messages("t:listed"), [{"from": self.listed.base}, "no-cors", "live"])

    def test_other_origin_refused(self):
        page = self.chromium().page(self.other.base + "/")
        r = page.eval(TRY_ALL, {"base": self.gw.base, "room": "t:other"}, timeout=40)
        self.assertEqual(r, {"ws": "error", "post": "blocked", "get": "blocked",
                             "sse": "error"}, r)
        self.assertEqual(self.messages("t:other"), [], "a page elsewhere published")


if __name__ == "__main__":
    run_tests()
