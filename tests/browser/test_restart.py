"""The gateway restarts under browser pages (docs/PROTOCOL.md, "Epochs"): an
EventSource reconnects by itself and is never refused (it used to get 400 for its
Last-Event-ID, beyond the new epoch's last seq, and closed for good); a WebSocket page
that reconnects with join {since, epoch} is told `reset` and gets the room from its
start. Every message published after the restart reaches both pages once, in order."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chromium import BrowserTestCase, require_browser  # noqa: E402
from harness import Gateway, http, run_tests  # noqa: E402

require_browser("test_restart")

ROOM = "t:restart"

SSE_PAGE = """async (room) => {
  window.got = []; window.resets = []; window.opens = 0;
  const es = new EventSource('/events?room=' + room);
  window.es = es;
  es.onopen = () => { window.opens++; };
  es.onmessage = (e) => window.got.push(JSON.parse(e.data).data);
  es.addEventListener('reset', (e) => window.resets.push(JSON.parse(e.data).epoch));
  return true;
}"""

# A WebSocket client as a page would write one: keeps the last seq and epoch it saw
# and rejoins with them whenever the socket closes.
WS_PAGE = """async (room) => {
  window.got = []; window.resets = []; window.opens = 0;
  let seq = 0, epoch = null;
  const connect = () => {
    const ws = new WebSocket(`wss://${location.host}/ws`, 'roomgate.v1');
    ws.onopen = () => {
      window.opens++;
      const join = {type: 'join', room, since: seq};
      if (epoch) join.epoch = epoch;
      ws.send(JSON.stringify(join));
    };
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === 'joined') epoch = m.epoch;
      if (m.type === 'reset') { window.resets.push(m.epoch); epoch = m.epoch; seq = 0; }
      if (m.type === 'message') { window.got.push(m.data); seq = m.seq; }
    };
    ws.onclose = () => setTimeout(connect, 200);
  };
  connect();
  return true;
}"""


class RestartUnderPages(BrowserTestCase):
    def publish(self, gw, data):
        r = http(gw, "POST", f"/rooms/{ROOM}/messages", f'"{data}"')
        self.assertEqual(r.status, 201, r)

    def check_restart(self, *flags, sse_resumes=True):
        gw = Gateway({"sse": {"retry_ms": 300}}).start()
        try:
            browser = self.chromium(*flags)
            sse = browser.page(gw.base + "/")
            ws = browser.page(gw.base + "/")
            sse.eval(SSE_PAGE, ROOM)
            ws.eval(WS_PAGE, ROOM)
            gw.wait_subscribers(ROOM, 2)
            self.publish(gw, "before")
            for p in (sse, ws):
                p.wait("() => window.got.length === 1")
            self.assertEqual(gw.stop(), 0, gw.stderr())
            time.sleep(0.5)  # both pages see the gateway gone and start reconnecting
            gw.start()
            # published at once, before the pages are back: they must still get it
            self.publish(gw, "after-1")
            resuming = (sse, ws) if sse_resumes else (ws,)
            for p in resuming:
                p.wait("() => window.got.length >= 2 && window.resets.length >= 1",
                       timeout=15)
            if not sse_resumes:
                sse.wait("() => window.opens === 2", timeout=15)
            self.publish(gw, "after-2")
            for p in resuming:
                p.wait("() => window.got.length >= 3")
            if not sse_resumes:
                sse.wait("() => window.got.includes('after-2')")
            time.sleep(0.5)  # a duplicate would arrive meanwhile
            if not sse_resumes:
                got = sse.eval("() => ({got: window.got, resets: window.resets})")
                self.assertEqual(got["got"][0], "before", got)
                self.assertEqual(got["got"][-1], "after-2", got)
                self.assertEqual(len(got["got"]), len(set(got["got"])), got)
            for name, p in (("sse", sse), ("ws", ws)) if sse_resumes else (("ws", ws),):
                with self.subTest(page=name):
                    got = p.eval("() => ({got: window.got, resets: window.resets, "
                                 "opens: window.opens})")
                    self.assertEqual(got["got"], ["before", "after-1", "after-2"], got)
                    self.assertEqual(len(got["resets"]), 1, got)
                    self.assertRegex(got["resets"][0], r"^[0-9a-v]{8}$")
                    self.assertEqual(got["opens"], 2, got)
            self.assertEqual(sse.eval("() => window.es.readyState"), 1, "EventSource open")
        finally:
            gw.stop()
        self.assertEqual(gw.sanitizer_reports(), [])

    def test_restart_http11(self):
        """Over HTTP/1.1 EventSource sends its Last-Event-ID: the old epoch's."""
        self.check_restart("--disable-http2")

    def test_restart_http2(self):
        """The same over HTTP/2: the page's connection, its EventSource stream and its
        WebSocket (RFC 8441) all on one TLS connection. The EventSource's
        Last-Event-ID reaches the gateway there too (lws 4.1.6 dropped it until
        patches/lws/0110, and the stream came back live): both pages resume exactly."""
        self.check_restart()


if __name__ == "__main__":
    run_tests()
