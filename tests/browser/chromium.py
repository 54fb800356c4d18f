"""Headless Chromium (Debian's chromium, driven by npm playwright-core through
tests/integration/node/chromium_bridge.mjs) for the browser tests.

Chromium(name, *flags) starts one browser; .page(url) opens a page in it; a Page runs
JavaScript (eval, wait), saves screenshots and keeps its console. Every test saves a
screenshot under OUT (the build's test-output/browser/); a failing one also keeps the
page's console there (BrowserTestCase)."""
import json
import os
import queue
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
from harness import BIN, NODE_DIR, die_with_parent, node_ready  # noqa: E402

BRIDGE = os.path.join(NODE_DIR, "chromium_bridge.mjs")
CHROMIUM = os.environ.get("RG_CHROMIUM", "/usr/bin/chromium")
OUT = os.environ.get("RG_TEST_OUT",
                     os.path.join(os.path.dirname(os.path.abspath(BIN)), "test-output",
                                  "browser"))


def browser_ready():
    """(True, '') when Chromium and playwright-core are installed, else (False, why)."""
    if not os.access(CHROMIUM, os.X_OK):
        return False, f"{CHROMIUM} missing (scripts/deps.sh --test installs chromium)"
    return node_ready("playwright-core")


def require_browser(test):
    """Exits 77 (ctest's skip), saying why loudly, when there is no browser to test."""
    ok, why = browser_ready()
    if not ok:
        print(f"\n*** SKIP {test}: {why} ***\n", file=sys.stderr)
        sys.exit(77)


class BridgeError(Exception):
    pass


class Page:
    def __init__(self, browser, n, status):
        self.browser, self.n, self.status = browser, n, status

    def eval(self, js, arg=None, timeout=30):
        """Runs the function whose source is js in the page with arg; its value."""
        return self.browser.call("eval", page=self.n, js=js, arg=arg, _timeout=timeout)["value"]

    def wait(self, js, arg=None, timeout=10):
        """Polls js(arg) in the page until it is truthy; that value."""
        return self.browser.call("wait", page=self.n, js=js, arg=arg,
                                 timeout=timeout * 1000, _timeout=timeout + 10)["value"]

    def screenshot(self, name):
        os.makedirs(OUT, exist_ok=True)
        path = os.path.join(OUT, name + ".png")
        self.browser.call("screenshot", page=self.n, path=path)
        return path

    def console(self):
        return self.browser.call("console", page=self.n)["lines"]

    def websockets(self):
        """The page's WebSocket handshakes: [{url, status}], 200 on HTTP/2, 101 on 1.1."""
        return self.browser.call("websockets", page=self.n)["handshakes"]


class Chromium:
    def __init__(self, *flags):
        self.flags = flags
        self.pages = []
        self._id = 0
        os.makedirs(OUT, exist_ok=True)
        self._err = open(os.path.join(OUT, "bridge.log"), "ab")
        self.proc = subprocess.Popen(["node", BRIDGE, *flags], cwd=NODE_DIR,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True, bufsize=1,
                                     preexec_fn=die_with_parent())
        self._lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def call(self, op, _timeout=30, **kw):
        self._id += 1
        self.proc.stdin.write(json.dumps({"id": self._id, "op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        while True:
            try:
                line = self._lines.get(timeout=_timeout)
            except queue.Empty:
                raise BridgeError(f"{op}: no answer from the browser in {_timeout} s")
            if line is None:
                raise BridgeError(f"{op}: the browser bridge exited "
                                  f"(see {os.path.join(OUT, 'bridge.log')})")
            msg = json.loads(line)
            if msg.get("id") != self._id:
                continue
            if not msg.get("ok"):
                raise BridgeError(f"{op}: {msg.get('error')}")
            return msg

    def page(self, url):
        r = self.call("page", url=url)
        p = Page(self, r["page"], r["status"])
        self.pages.append(p)
        return p

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("close", _timeout=15)
            except BridgeError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._err.close()


class BrowserTestCase(unittest.TestCase):
    """Closes every browser a test opened; saves each page's screenshot as
    CLASS.TEST-BP.png (browser B, page P), and on failure its console as
    CLASS.TEST-BP.console.txt.
    A test module calls require_browser() first."""

    def setUp(self):
        self.browsers = []

    def chromium(self, *flags):
        b = Chromium(*flags)
        self.browsers.append(b)
        return b

    def _outcome_failed(self):
        res = self._outcome.result
        return any(t is self for t, _ in res.failures + res.errors)

    def tearDown(self):
        failed = self._outcome_failed() if hasattr(self, "_outcome") else False
        name = ".".join(self.id().split(".")[-2:])  # Class.test: unique across files
        for bi, b in enumerate(self.browsers):
            for p in b.pages:
                tag = f"{name}-{bi}{p.n}"
                try:
                    path = p.screenshot(tag)
                    print(f"screenshot: {path}", file=sys.stderr)
                    if failed:
                        with open(os.path.join(OUT, tag + ".console.txt"), "w") as f:
                            f.write("\n".join(p.console()) + "\n")
                except BridgeError as e:
                    print(f"screenshot {tag}: {e}", file=sys.stderr)
            b.close()
