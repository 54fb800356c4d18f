"""The chat page (web/index.html) on the client library (web/roomgate.js), served by the
gateway from the repository's web/, in Chromium: one page on WebSocket and one forced
to Server-Sent Events + fetch in the same room, each seeing the other's messages and
presence; user text shown as text; both pages through a restart of the gateway, over
HTTP/2 and with HTTP/2 off: they reconnect on their own, show the notice, and every
message published after the restart reaches both once, in order."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chromium import BrowserTestCase, require_browser  # noqa: E402
from harness import REPO, Gateway, http, run_tests  # noqa: E402

require_browser("test_chat")

ROOMS = [
    {"name": "lobby", "history": 1000, "publish": "anyone", "presence": True},
    {"pattern": "t:*", "history": 1000, "publish": "anyone", "idle_seconds": 300,
     "presence": True},
]
XSS = "<img src=x onerror=alert(1)>"

# What a page shows: its connection and, for one room, the texts, authors and seqs of
# its messages, its notices and who is present.
VIEW = """(room) => {
  const st = document.getElementById('status');
  const p = document.querySelector(`section.room[data-room="${room}"]`);
  const all = (sel) => p ? [...p.querySelectorAll(sel)].map((e) => e.textContent) : [];
  return {
    state: st.dataset.state, transport: st.dataset.transport, status: st.textContent,
    texts: all('.messages li:not(.notice) .text'),
    authors: all('.messages li:not(.notice) .author'),
    seqs: p ? [...p.querySelectorAll('.messages li[data-seq]')].map((e) => +e.dataset.seq) : [],
    notices: all('.messages li.notice'),
    present: all('.presence li'),
    imgs: document.querySelectorAll('.messages img').length,
    alerted: !!window.alerted,
  };
}"""

# Types text into the room's message field and submits the form, as a user would.
SAY = """({room, text}) => {
  const p = document.querySelector(`section.room[data-room="${room}"]`);
  const input = p.querySelector('form.send input');
  input.focus();
  input.value = text;
  p.querySelector('form.send').requestSubmit();
  return true;
}"""


class ChatPage(BrowserTestCase):
    def gateway(self):
        gw = Gateway({"http": {"web_root": os.path.join(REPO, "web")},
                      "rooms": ROOMS}).start()
        self.addCleanup(gw.stop)
        return gw

    def open_pages(self, gw, room, *flags):
        browser = self.chromium(*flags)
        ws = browser.page(f"{gw.base}/?name=ann&room={room}")
        sse = browser.page(f"{gw.base}/?name=bob&transport=sse&room={room}")
        for p in (ws, sse):
            self.assertEqual(p.status, 200)
            p.eval("() => { window.alert = () => { window.alerted = true; }; return true; }")
        gw.wait_subscribers(room, 2)
        return ws, sse

    def view(self, page, room):
        return page.eval(VIEW, room)

    def wait_view(self, page, room, cond, timeout=10):
        """Waits until cond(view) holds in the page; the view."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.view(page, room)
            if cond(v):
                return v
            if time.monotonic() > deadline:
                self.fail(f"page {page.n}: condition not met within {timeout} s: {v}")
            time.sleep(0.1)

    def test_websocket_and_sse_pages_talk(self):
        gw = self.gateway()
        room = "t:talk"
        ws, sse = self.open_pages(gw, room)
        v = self.wait_view(ws, room, lambda v: "bob" in v["present"])
        self.assertEqual((v["state"], v["transport"]), ("open", "websocket"), v)
        self.assertIn("ann (you)", v["present"], v)
        v = self.wait_view(sse, room, lambda v: "ann" in v["present"])
        self.assertEqual((v["state"], v["transport"]), ("open", "sse"), v)
        self.assertEqual(v["status"], "Connected over Server-Sent Events")

        ws.eval(SAY, {"room": room, "text": "hello from a WebSocket"})
        sse.eval(SAY, {"room": room, "text": "hello from an EventSource"})
        sse.eval(SAY, {"room": room, "text": XSS})
        want = ["hello from a WebSocket", "hello from an EventSource", XSS]
        for p in (ws, sse):
            v = self.wait_view(p, room, lambda v: len(v["texts"]) >= 3)
            self.assertEqual(sorted(v["texts"]), sorted(want), v)
            self.assertEqual(v["seqs"], [1, 2, 3], v)
            self.assertEqual(sorted(v["authors"]), ["ann", "bob", "bob"], v)
            # the markup is shown as the characters it is, never made into an element
            self.assertEqual(v["imgs"], 0, v)
            self.assertFalse(v["alerted"], v)
        # both pages show the same order: the room's
        self.assertEqual(self.view(ws, room)["texts"], self.view(sse, room)["texts"])
        r = http(gw, "GET", f"/rooms/{room}/messages")
        self.assertEqual([m["data"]["text"] for m in r.json()["messages"]],
                         self.view(ws, room)["texts"])

        # a page that arrives later sees the latest messages, then live ones
        late = ws.browser.page(f"{gw.base}/?name=cy&transport=sse&room={room}")
        self.wait_view(late, room, lambda v: len(v["texts"]) == 3)
        ws.eval(SAY, {"room": room, "text": "after cy came"})
        v = self.wait_view(late, room, lambda v: len(v["texts"]) == 4)
        self.assertEqual(v["seqs"], [1, 2, 3, 4], v)
        self.wait_view(ws, room, lambda v: "cy" in v["present"])

    def test_falls_back_to_sse_when_websocket_fails(self):
        """A WebSocket that never opens (as behind a proxy that does not upgrade,
        played here by a WebSocket constructor whose sockets fail) makes the library
        use SSE + fetch; the user connects and talks through the page's own forms."""
        gw = self.gateway()
        room = "t:fallback"
        page = self.chromium().page(f"{gw.base}/")
        page.eval("""() => {
          window.wsTried = 0;
          window.WebSocket = class {
            constructor() { window.wsTried++; setTimeout(() => this.onclose?.({code: 1006}), 20); }
            send() { throw new Error('not open'); }
            close() {}
          };
          return true;
        }""")
        page.eval("""(room) => {
          document.getElementById('name').value = 'eve';
          document.getElementById('connect').requestSubmit();
          document.getElementById('room-name').value = room;
          document.getElementById('join-other').requestSubmit();
          return true;
        }""", room)
        v = self.wait_view(page, room, lambda v: v["state"] == "open" and v["present"])
        self.assertEqual((v["transport"], v["present"]), ("sse", ["eve (you)"]), v)
        self.assertEqual(page.eval("() => window.wsTried"), 1)
        page.eval(SAY, {"room": room, "text": "over fetch"})
        http(gw, "POST", f"/rooms/{room}/messages", '{"name":"api","text":"over SSE"}')
        v = self.wait_view(page, room, lambda v: len(v["texts"]) == 2)
        self.assertEqual(v["texts"], ["over fetch", "over SSE"], v)

    def check_restart(self, *flags):
        gw = self.gateway()
        room = "t:restart"
        ws, sse = self.open_pages(gw, room, *flags)
        for p in (ws, sse):
            self.wait_view(p, room, lambda v: v["state"] == "open" and len(v["present"]) == 2)
        ws.eval(SAY, {"room": room, "text": "before"})
        for p in (ws, sse):
            self.wait_view(p, room, lambda v: v["texts"] == ["before"])

        self.assertEqual(gw.stop(), 0, gw.stderr())
        for p in (ws, sse):
            self.wait_view(p, room, lambda v: v["state"] == "reconnecting")
        gw.start()
        # published at once, before the pages are back: they must still get it
        self.assertEqual(http(gw, "POST", f"/rooms/{room}/messages",
                              '{"name":"api","text":"after-1"}').status, 201)
        for p in (ws, sse):
            v = self.wait_view(p, room, lambda v: "after-1" in v["texts"], timeout=20)
            self.assertEqual(v["state"], "open", v)
            self.assertEqual(len(v["notices"]), 1, v)
            self.assertIn("restarted", v["notices"][0], v)
        ws.eval(SAY, {"room": room, "text": "after-2"})
        self.wait_view(sse, room, lambda v: "after-2" in v["texts"])
        sse.eval(SAY, {"room": room, "text": "after-3"})
        want = ["before", "after-1", "after-2", "after-3"]
        for p in (ws, sse):
            self.wait_view(p, room, lambda v: len(v["texts"]) >= 4)
        time.sleep(0.5)  # a duplicate would arrive meanwhile
        views = {name: self.view(p, room) for name, p in (("ws", ws), ("sse", sse))}
        for name, v in views.items():
            with self.subTest(page=name):
                self.assertEqual(v["texts"], want, v)
                self.assertEqual(v["seqs"], [1, 1, 2, 3], v)  # seqs restart in the new epoch
                self.assertEqual(v["transport"], {"ws": "websocket", "sse": "sse"}[name], v)
        r = http(gw, "GET", f"/rooms/{room}/messages").json()
        self.assertEqual([m["data"]["text"] for m in r["messages"]], want[1:])
        self.assertEqual(gw.stop(), 0, gw.stderr())
        self.assertEqual(gw.sanitizer_reports(), [])

    def test_restart_http2(self):
        """Over HTTP/2 the library resumes its stream itself (last_event_id in the
        URL), since lws 4.1.6 drops the Last-Event-ID header there."""
        self.check_restart()

    def test_restart_http11(self):
        self.check_restart("--disable-http2")


if __name__ == "__main__":
    run_tests()
