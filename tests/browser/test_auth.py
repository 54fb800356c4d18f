"""web/roomgate.js with short-lived tokens, in Chromium (docs/PROTOCOL.md, "Expiry and
refresh"): given a token function, a WebSocket page refreshes its token with `auth` before
each one expires and is never closed; an SSE page's stream ends with `expired` at each
expiry and is reopened with the next token, resuming where it ended. Every message
published meanwhile reaches both pages once, in order. A page with a refused token and
no function to get another stops, with the reason."""
import hashlib
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chromium import BrowserTestCase, require_browser  # noqa: E402
from harness import REPO, Gateway, http, run_tests  # noqa: E402

import jwt  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402

require_browser("test_auth")

KEY = ed25519.Ed25519PrivateKey.generate()
API_KEY = "browser-test-" + os.urandom(8).hex()
ROOM = "members"
LIFETIME = 4  # seconds each token lives

# A page on roomgate.js whose token function hands out, of the tokens the test made
# (exp, token), the first with at least 2 s to live, as a login service would mint a
# fresh one; it records what the client saw.
PAGE = """async ({transport, tokens, room}) => {
  const { Roomgate } = await import('/roomgate.js');
  window.got = []; window.errors = []; window.calls = 0; window.states = [];
  const rg = new Roomgate({ transport, minDelay: 100, maxDelay: 500,
    token: async () => {
      window.calls++;
      return tokens.find(([exp]) => exp - Date.now() / 1000 > 2)[1];
    } });
  window.rg = rg;
  rg.on('message', (m) => window.got.push(m.data));
  rg.on('error', (e) => window.errors.push(e.code));
  rg.on('state', (s) => window.states.push(s.state));
  rg.join(room).then(() => { window.joined = true; }, (e) => window.errors.push('join:' + e.code));
  return true;
}"""

STATIC = """async ({token, room}) => {
  const { Roomgate } = await import('/roomgate.js');
  window.errors = [];
  const rg = new Roomgate({ transport: 'websocket', token });
  window.rg = rg;
  rg.on('error', (e) => window.errors.push(e.code));
  rg.join(room).catch((e) => window.errors.push('join:' + e.code));
  return true;
}"""


def token(sub, exp):
    return jwt.encode({"sub": sub, "exp": int(exp)}, KEY, algorithm="EdDSA")


class TokenRefresh(BrowserTestCase):
    def gateway(self):
        d = tempfile.mkdtemp(prefix="rg-browser-auth-")
        pub = os.path.join(d, "pub.pem")
        with open(pub, "wb") as f:
            f.write(KEY.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        keys = os.path.join(d, "keys.sha256")
        with open(keys, "w") as f:
            f.write(hashlib.sha256(API_KEY.encode()).hexdigest() + "\n")
        gw = Gateway({
            "http": {"web_root": os.path.join(REPO, "web")},
            "auth": {"keys": [{"file": pub}], "api_keys_file": keys, "leeway_seconds": 0,
                     "expiry_grace_seconds": 2},
            "rooms": [{"name": ROOM, "subscribe": "authenticated", "history": 1000}],
        }).start()
        self.addCleanup(gw.stop)
        return gw

    def wait_subscribers(self, gw, n, timeout=10):
        """GET /rooms as a backend: the room is not listed to anonymous callers."""
        deadline = time.monotonic() + timeout
        while True:
            r = http(gw, "GET", "/rooms", headers=[f"Authorization: Bearer {API_KEY}"])
            subs = {x["name"]: x["subscribers"] for x in r.json()["rooms"]}.get(ROOM)
            if subs == n:
                return
            self.assertLess(time.monotonic(), deadline, f"{ROOM}: {subs} subscribers")
            time.sleep(0.1)

    def publish(self, gw, data):
        r = http(gw, "POST", f"/rooms/{ROOM}/messages", f'"{data}"',
                 headers=[f"Authorization: Bearer {API_KEY}"])
        self.assertEqual(r.status, 201, r)

    def test_refresh_over_websocket_and_sse(self):
        gw = self.gateway()
        browser = self.chromium()
        now = time.time()
        pages, handed = {}, []
        for transport, sub in (("websocket", "ann"), ("sse", "bob")):
            exps = [int(now) + LIFETIME * (i + 1) for i in range(12)]
            tokens = [(exp, token(sub, exp)) for exp in exps]
            handed += [t for _, t in tokens]
            p = browser.page(gw.base + "/")
            self.assertEqual(p.status, 200)
            p.eval(PAGE, {"transport": transport, "tokens": tokens, "room": ROOM})
            p.wait("() => window.joined === true")
            pages[transport] = p
        self.wait_subscribers(gw, 2)
        sent = []
        # publish through three token lifetimes
        t_end = time.monotonic() + 3 * LIFETIME
        while time.monotonic() < t_end:
            sent.append(f"m{len(sent)}")
            self.publish(gw, sent[-1])
            time.sleep(0.4)
        for name, p in pages.items():
            with self.subTest(page=name):
                p.wait(f"() => window.got.length >= {len(sent)}", timeout=15)
                time.sleep(0.5)  # a duplicate would arrive meanwhile
                v = p.eval("() => ({got: window.got, errors: window.errors, "
                           "calls: window.calls, states: window.states, "
                           "state: window.rg.state})")
                self.assertEqual(v["got"], sent, v)
                self.assertGreaterEqual(v["calls"], 3, v)  # refreshed across expiries
                self.assertEqual(v["state"], "open", v)
                self.assertNotIn("unauthorized", v["errors"], f"{v}\n{gw.stderr()[-3000:]}")
        # the WebSocket page refreshed in place: one connection, never reconnected
        ws = pages["websocket"].eval("() => window.states")
        self.assertNotIn("reconnecting", ws, ws)
        # tokens travel in URLs (?token=): none may reach the log
        log = gw.stderr()
        for tok in handed:
            self.assertNotIn(tok.split(".")[2], log)

    def test_refused_token_stops_the_client(self):
        gw = self.gateway()
        p = self.chromium().page(gw.base + "/")
        p.eval(STATIC, {"token": token("eve", time.time() - 60), "room": ROOM})
        p.wait("() => window.rg.state === 'closed'", timeout=10)
        errors = p.eval("() => window.errors")
        self.assertIn("unauthorized", errors, errors)
        self.assertIn("expired", gw.stderr())


if __name__ == "__main__":
    run_tests()
