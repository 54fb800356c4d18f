"""Shared harness for the roomgate integration tests.

Real binary, real TLS, real clients: the gateway named by $ROOMGATE_BIN (default
build/roomgate) is started per test class with a generated config and self-signed
certificate; tests talk to it with curl (HTTP/1.1, HTTP/2, SSE), the python
`websockets` client and Node's `eventsource`. Every wait is bounded.

Run the tests with Debian's /usr/bin/python3 (it has python3-websockets).
"""
import asyncio
import atexit
import base64
import copy
import ctypes
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("ROOMGATE_BIN", os.path.join(REPO, "build", "roomgate"))
NODE_DIR = os.path.join(HERE, "node")
SUBPROTOCOL = "roomgate.v1"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
# Tokens, keys and message bodies the tests hand the gateway: none may appear in any log
# line (docs/OPERATIONS.md, "Logs"); every GatewayTestCase checks its gateway's log.
LOG_SECRETS = set()


def log_secret(text):
    """Registers text as never to be logged; returns it."""
    LOG_SECRETS.add(text)
    return text


class HmacAuth:
    """An `auth` section of one HMAC key (kid "hs") and one API key, and tokens signed
    with it (python3-jwt); the key, the API key and every token are log secrets."""

    def __init__(self):
        import hashlib
        self.dir = tempfile.mkdtemp(prefix="roomgate-auth-", dir=_tmp_root)
        self.secret = log_secret(os.urandom(32).hex())
        self.api_key = log_secret("backend-" + os.urandom(16).hex())
        self.config = {"keys": [{"secret_file": self._write("hs.secret", self.secret + "\n"),
                                 "kid": "hs"}],
                       "api_keys_file": self._write(
                           "api.sha256", hashlib.sha256(self.api_key.encode()).hexdigest()
                           + "\n")}

    def _write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def token(self, sub, **claims):
        import jwt
        now = int(time.time())
        body = {"sub": sub, "iat": now, "exp": now + 600, **claims}
        return log_secret(jwt.encode(body, self.secret, algorithm="HS256",
                                     headers={"kid": "hs"}))
SECRET = "TOP-SECRET-c0ffee-outside-web-root"
INDEX_HTML = "<!doctype html><title>roomgate test</title><p>index-marker-5150</p>\n"

_tmp_root = tempfile.mkdtemp(prefix="roomgate-it-")
atexit.register(shutil.rmtree, _tmp_root, ignore_errors=True)
_cert = None
_libc = ctypes.CDLL(None, use_errno=True)


def _pdeathsig():
    _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def die_with_parent():
    """preexec_fn for long-lived children (gateway, SSE curl, node): SIGTERM them when
    the test process dies, even by SIGKILL, so that none outlives a test run. The
    signal follows the forking *thread*, so only children of the main thread get it."""
    return _pdeathsig if threading.current_thread() is threading.main_thread() else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(directory):
    """Self-signed cert for localhost/127.0.0.1; returns (cert, key)."""
    cert, key = os.path.join(directory, "dev.crt"), os.path.join(directory, "dev.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return cert, key


def shared_cert():
    global _cert
    if _cert is None:
        _cert = make_cert(_tmp_root)
    return _cert


def deep_merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


DEFAULT_ROOMS = [
    {"name": "lobby", "history": 1000, "publish": "anyone"},
    {"name": "news", "history": 100, "publish": "server"},
    {"pattern": "dm:*", "history": 200, "publish": "anyone", "idle_seconds": 300},
    # one fresh room per test: t:<anything>, so seq numbers start at 1 in every test
    {"pattern": "t:*", "history": 1000, "publish": "anyone", "idle_seconds": 300},
]


# --------------------------------------------------------------------------- gateway

class Gateway:
    """One gateway process with its own temp dir, config, web root and stderr log."""

    def __init__(self, overrides=None):
        self.dir = tempfile.mkdtemp(prefix="gw-", dir=_tmp_root)
        self.port = free_port()
        cert, key = shared_cert()
        self.web_root = os.path.join(self.dir, "web")
        os.makedirs(os.path.join(self.web_root, "sub"))
        with open(os.path.join(self.web_root, "index.html"), "w") as f:
            f.write(INDEX_HTML)
        with open(os.path.join(self.web_root, "sub", "index.html"), "w") as f:
            f.write("sub-index-marker\n")
        # outside the web root; .html so that a static server would happily serve it
        os.makedirs(os.path.join(self.dir, "outside"))
        for path in ("secret.html", "outside/page.html"):
            with open(os.path.join(self.dir, path), "w") as f:
                f.write(SECRET + "\n")
        base = {
            "listen": [{"port": self.port, "host": "127.0.0.1",
                        "tls": {"cert": cert, "key": key}}],
            "http": {"web_root": self.web_root},
            "sse": {"keepalive_seconds": 15, "retry_ms": 3000},
            "ws": {"ping_seconds": 30, "ping_timeout_seconds": 10},
            "limits": {"max_message_bytes": 4096, "max_rooms": 1000,
                       "max_rooms_per_connection": 16},
            "rooms": DEFAULT_ROOMS,
        }
        self.config = deep_merge(base, overrides or {})
        self.config_path = os.path.join(self.dir, "roomgate.json")
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.proc = None
        self.returncode = None

    @property
    def base(self):
        return f"https://127.0.0.1:{self.port}"

    @property
    def ws_url(self):
        return f"wss://127.0.0.1:{self.port}/ws"

    def start(self, timeout=10):
        if not os.access(BIN, os.X_OK):
            raise RuntimeError(f"gateway binary {BIN} missing (set ROOMGATE_BIN)")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([BIN, "--config", self.config_path], cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=self._err,
                                     stderr=self._err, preexec_fn=die_with_parent())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode} at start\n"
                                   + self.stderr())
            try:
                if http(self, "GET", "/healthz", timeout=2).status == 200:
                    return self
            except Exception:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway not healthy within {timeout}s\n" + self.stderr())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM, wait; returns the exit code (None if it had to be killed)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self.returncode = None
                self.proc = None
                self._err.close()
                return None
        self.returncode = self.proc.returncode
        self.proc = None
        self._err.close()
        return self.returncode

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_reports(self):
        text = self.stderr()
        return [m for m in SANITIZER_MARKS if m in text]

    # -- small conveniences
    def rooms(self):
        r = http(self, "GET", "/rooms")
        assert r.status == 200, f"GET /rooms -> {r.status} {r.body!r}"
        return r.json()

    def room_info(self, name):
        for room in self.rooms().get("rooms", []):
            if room.get("name") == name:
                return room
        return None

    def wait_subscribers(self, room, n, timeout=5):
        deadline = time.monotonic() + timeout
        info = None
        while time.monotonic() < deadline:
            info = self.room_info(room)
            if info is not None and info.get("subscribers") == n:
                return info
            if info is None and n == 0:  # a pattern room that never held a message
                return info              # goes with its last subscriber
            time.sleep(0.05)
        raise AssertionError(f"room {room!r}: expected {n} subscribers within {timeout}s,"
                             f" /rooms says {info}")


def stop_and_check(gw):
    """Stops gw (SIGTERM); what was wrong with it: it died before, did not exit 0, a
    sanitizer reported, a secret the tests handed it is in its log. [] when nothing."""
    was_alive = gw.proc is None or gw.alive()  # proc None: a test stopped it
    rc = gw.stop()
    reports = gw.sanitizer_reports()
    problems = []
    if not was_alive:
        problems.append(f"gateway :{gw.port} died during the tests (exit {rc})")
    elif rc != 0:
        problems.append(f"gateway :{gw.port} exit code on SIGTERM: {rc} (want 0)")
    if reports:
        problems.append(f"gateway :{gw.port}: sanitizer reports in stderr: {reports}")
    log = gw.stderr()
    leaked = sorted(s[:16] + "..." for s in LOG_SECRETS if s in log)
    if leaked:
        problems.append(f"gateway :{gw.port}: secrets in the log: {leaked}")
    return problems


class RecordsFailure:
    """Remembers in cls._failed that a test of the class failed (its teardown then
    prints the gateways' logs)."""

    _failed = False

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result is not None else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            type(self)._failed = True
        return out


class GatewayTestCase(RecordsFailure, unittest.IsolatedAsyncioTestCase):
    """Starts one gateway per class (config overrides in CONFIG); checks at teardown
    that it exits 0 on SIGTERM with no sanitizer report; prints its stderr when a test
    of the class failed."""

    CONFIG = {}
    gw = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._failed = False
        cls.gw = Gateway(cls.CONFIG).start()

    @classmethod
    def tearDownClass(cls):
        gw, cls.gw = cls.gw, None
        if gw is None:
            return
        problems = stop_and_check(gw)
        if problems or cls._failed:
            dump_stderr(gw, cls.__name__)
        if problems:
            raise AssertionError("; ".join(problems))

    async def asyncSetUp(self):
        self._clients = []
        if self.gw.proc is not None and not self.gw.alive():
            self.fail(f"gateway died in an earlier test (exit {self.gw.proc.returncode});"
                      " its stderr is printed at the end of the class")

    async def asyncTearDown(self):
        for c in self._clients:
            await c.close()
        if self.gw.proc is not None:
            self.assertTrue(self.gw.alive(), "gateway process died during this test")

    async def ws(self, subprotocols=(SUBPROTOCOL,), **kw):
        """A connected WSClient, closed after the test."""
        c = await WSClient.connect(self.gw, subprotocols=subprotocols, **kw)
        self._clients.append(c)
        return c

    def sse(self, query, http2=False, **kw):
        s = SSEStream(self.gw, query, http2=http2, **kw)
        self._clients.append(s)
        return s

    async def ahttp(self, *args, **kw):
        return await asyncio.to_thread(http, self.gw, *args, **kw)

    def assertError(self, resp, status, code):
        """HTTP error answer: status, JSON content type, {"error":{"code","message"}}."""
        self.assertEqual(resp.status, status, resp)
        self.assertTrue(resp.content_type.startswith("application/json"),
                        f"content-type {resp.content_type!r}")
        err = resp.json().get("error")
        self.assertIsInstance(err, dict, resp.body)
        self.assertEqual(err.get("code"), code, resp.body)
        self.assertIsInstance(err.get("message"), str, resp.body)
        self.assertTrue(err["message"], "empty error message")


def dump_stderr(gw, title, limit=20000):
    text = gw.stderr()
    if len(text) > limit:
        text = "...(cut)...\n" + text[-limit:]
    sys.stderr.write(f"\n===== gateway stderr ({title}, {gw.config_path}) =====\n"
                     f"{text}\n===== end of gateway stderr =====\n")


# --------------------------------------------------------------------------- HTTP

class Response:
    def __init__(self, status, version, headers, body, curl_error=""):
        self.status, self.version, self.headers, self.body = status, version, headers, body
        self.curl_error = curl_error  # curl's exit status and message when it failed

    @property
    def content_type(self):
        return self.headers.get("content-type", "")

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError(f"answer is not JSON (status {self.status}): {self.body[:300]!r}")

    def __repr__(self):
        return (f"<Response {self.status} HTTP/{self.version} {self.body[:200]!r}"
                f"{' ' + self.curl_error if self.curl_error else ''}>")


JSON_TYPE = "application/json"
CURL_DEFAULT = object()  # let curl choose the Content-Type (-d: x-www-form-urlencoded)


def http(gw, method, path, body=None, content_type=JSON_TYPE, headers=(), http2=False,
         extra=(), timeout=5):
    """One request with curl. body: bytes/str (sent as-is with --data-binary).
    content_type: a value, CURL_DEFAULT, or None to send no Content-Type at all."""
    fd, tmpl = tempfile.mkstemp(dir=_tmp_root)
    os.close(fd)
    hdr_file, body_file, data_file = tmpl + ".h", tmpl + ".b", tmpl + ".d"
    cmd = ["curl", "-sSk", "--http2" if http2 else "--http1.1", "-X", method,
           "--max-time", str(timeout), "-D", hdr_file, "-o", body_file,
           "-w", "%{http_code} %{http_version}", "-H", "Expect:"]
    for h in headers:
        cmd += ["-H", h]
    if body is not None:
        with open(data_file, "wb") as f:
            f.write(body.encode() if isinstance(body, str) else body)
        cmd += ["--data-binary", "@" + data_file]
        if content_type is None:
            cmd += ["-H", "Content-Type:"]
        elif content_type is not CURL_DEFAULT:
            cmd += ["-H", "Content-Type: " + content_type]
    cmd += list(extra) + [gw.base + path]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout + 5)
        status, _, version = p.stdout.decode().partition(" ")
        headers_out = _parse_headers(_read(hdr_file))
        error = f"(curl exit {p.returncode}: {p.stderr.decode().strip()})" if p.returncode else ""
        return Response(int(status or 0), version, headers_out, _read(body_file), error)
    finally:
        for f in (tmpl, hdr_file, body_file, data_file):
            if os.path.exists(f):
                os.unlink(f)


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _parse_headers(raw):
    """Headers of the last response block in a curl -D dump (lower-case names)."""
    headers = {}
    for line in raw.decode("latin-1").splitlines():
        line = line.strip()
        if line.startswith("HTTP/"):
            headers = {}
        elif ":" in line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    return headers


def http_version_used(gw, http2):
    """The HTTP version curl negotiated (ALPN) for GET /healthz: '1.1' or '2'."""
    return http(gw, "GET", "/healthz", http2=http2).version


# --------------------------------------------------------------------------- SSE

class SSEStream:
    """`curl -sN` reading GET /events?QUERY; a thread parses the stream into
    events {id, event, data} (queue), comments and the retry value."""

    def __init__(self, gw, query, http2=False, max_time=120, headers=()):
        fd, self.hdr_file = tempfile.mkstemp(dir=_tmp_root, suffix=".h")
        os.close(fd)
        self.url = f"{gw.base}/events?{query}" if query else f"{gw.base}/events"
        extra = []
        for h in headers:  # e.g. "Last-Event-ID: 42"
            extra += ["-H", h]
        self.proc = subprocess.Popen(
            ["curl", "-sNk", "--http2" if http2 else "--http1.1", "-D", self.hdr_file,
             "--max-time", str(max_time), "-H", "Accept: text/event-stream", *extra,
             self.url],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent())
        self.events = queue.Queue()
        self.lines = []        # every line (without EOL), in order
        self.comments = []     # (monotonic time, text) for every ':' line
        self.retry = None
        self.stream_id = None  # from the first event, `event: stream`
        self.stream = None  # that event's data: {type, stream, epoch, rooms}
        self.eof = threading.Event()
        self._started = threading.Event()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        ev = {}
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r")
            self.lines.append(line)
            self._started.set()
            if line == "":
                if ev.get("event") == "stream":  # the stream's id, sent first
                    self.stream = json.loads(ev["data"])
                    self.stream_id = self.stream["stream"]
                elif "data" in ev or "id" in ev or "event" in ev:
                    self.events.put(ev)
                ev = {}
            elif line.startswith(":"):
                self.comments.append((time.monotonic(), line[1:].strip()))
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "retry":
                    self.retry = value
                elif field == "data":
                    ev["data"] = ev["data"] + "\n" + value if "data" in ev else value
                elif field in ("id", "event"):
                    ev[field] = value
        self.eof.set()
        self._started.set()

    def wait_started(self, timeout=5):
        """Wait for the first line of the stream (the `retry:` line)."""
        if not self._started.wait(timeout):
            raise AssertionError(f"SSE {self.url}: nothing received within {timeout}s")
        if not self.lines:
            raise AssertionError(f"SSE {self.url}: stream ended without data;"
                                 f" headers {self.status_line()!r}")
        return self

    def next_event(self, timeout=5):
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"SSE {self.url}: no event within {timeout}s"
                                 f" (eof={self.eof.is_set()}, last lines {self.lines[-5:]})")

    def take(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        return [self.next_event(max(0.01, deadline - time.monotonic())) for _ in range(n)]

    def headers(self):
        return _parse_headers(_read(self.hdr_file))

    def status_line(self):
        lines = [l for l in _read(self.hdr_file).decode("latin-1").splitlines()
                 if l.startswith("HTTP/")]
        return lines[-1].strip() if lines else ""

    def alive(self):
        return self.proc.poll() is None and not self.eof.is_set()

    async def close(self):
        self.close_sync()

    def close_sync(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.eof.wait(2)  # let the reader thread see EOF before closing its pipe
        self.proc.stdout.close()


# --------------------------------------------------------------------------- WebSocket

def client_ssl():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class WSClient:
    """websockets client that sorts incoming frames into `messages` (type message)
    and `answers` (everything else); each kept as (object, raw text)."""

    def __init__(self, ws):
        self.ws = ws
        self.messages = []
        self.answers = []
        self.epoch = None  # the gateway's, from the last `joined` (join())
        self._ids = 0
        # ids double as idempotency keys for publish (docs/PROTOCOL.md): unique per client
        self._prefix = os.urandom(6).hex()

    @classmethod
    async def connect(cls, gw, subprotocols=(SUBPROTOCOL,), compression=None, **kw):
        ws = await websockets.connect(
            gw.ws_url, ssl=client_ssl(),
            subprotocols=list(subprotocols) if subprotocols else None,
            compression=compression, open_timeout=5, close_timeout=2,
            ping_interval=None, max_size=2 ** 22, **kw)
        return cls(ws)

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 3)
        except Exception:
            pass

    async def send(self, obj):
        await self.ws.send(json.dumps(obj, separators=(",", ":")))

    async def send_raw(self, data):
        """str (text frame), bytes (binary frame) or a list of str (fragments)."""
        await self.ws.send(data)

    async def _pump(self, deadline, what):
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"WS: no {what} in time; unread answers {self.answers},"
                                 f" messages {[m for m, _ in self.messages][-3:]}")
        try:
            raw = await asyncio.wait_for(self.ws.recv(), remaining)
        except asyncio.TimeoutError:
            return
        except websockets.ConnectionClosed as e:
            raise AssertionError(f"WS closed while waiting for {what}: code {e.code}"
                                 f" reason {e.reason!r}")
        if not isinstance(raw, str):
            raise AssertionError(f"gateway sent a binary frame: {raw[:100]!r}")
        try:
            obj = json.loads(raw)
        except ValueError:
            raise AssertionError(f"gateway sent non-JSON text: {raw[:200]!r}")
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise AssertionError(f"gateway frame without type: {raw[:200]!r}")
        (self.messages if obj["type"] == "message" else self.answers).append((obj, raw))

    async def answer(self, timeout=5):
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.answers:
            await self._pump(deadline, "answer")
        return self.answers.pop(0)[0]

    async def message_raw(self, timeout=5):
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.messages:
            await self._pump(deadline, "message")
        return self.messages.pop(0)

    async def message(self, timeout=5):
        return (await self.message_raw(timeout))[0]

    async def take(self, n, timeout=10):
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.messages) < n:
            await self._pump(deadline, f"{n} messages (have {len(self.messages)})")
        out, self.messages = self.messages[:n], self.messages[n:]
        return [m for m, _ in out]

    async def request(self, type_, timeout=5, **fields):
        """Send {type, id, **fields}; return the answer, checking that it echoes id."""
        if "id" not in fields:
            self._ids += 1
            fields["id"] = f"{self._prefix}-{self._ids}"
        await self.send({"type": type_, **fields})
        ans = await self.answer(timeout)
        if ans.get("id") != fields["id"]:
            raise AssertionError(f"answer {ans} does not echo id {fields['id']!r}")
        return ans

    async def join(self, room):
        """Joins room (live only); returns the room's seq, keeps the gateway's epoch."""
        ans = await self.request("join", room=room)
        if (ans.get("type") != "joined" or ans.get("room") != room
                or not is_epoch(ans.get("epoch"))):
            raise AssertionError(f"join {room!r} answered {ans}")
        self.epoch = ans["epoch"]
        return ans["seq"]

    async def publish(self, room, data):
        ans = await self.request("publish", room=room, data=data)
        if ans.get("type") != "ack" or ans.get("room") != room:
            raise AssertionError(f"publish to {room!r} answered {ans}")
        return ans["seq"]

    async def ping(self):
        ans = await self.request("ping")
        if ans.get("type") != "pong":
            raise AssertionError(f"ping answered {ans}")

    async def assert_quiet(self):
        """Round-trip a ping; nothing else may have arrived before the pong."""
        await self.ping()
        if self.answers or self.messages:
            raise AssertionError(f"unexpected frames: answers {self.answers},"
                                 f" messages {self.messages}")


def expect_stream_event(s, timeout=5):
    """An SSE stream (SSEStream) starts `retry: N`, then `event: stream` with the
    stream's id, the epoch and each room's cursor (docs/PROTOCOL.md; SSEStream keeps
    that event out of `events`, in `stream_id`). Checks both, in that order, and
    returns the id."""
    deadline = time.monotonic() + timeout
    while s.stream_id is None and not s.eof.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    sid = s.stream_id
    if sid is None:
        raise AssertionError(f"SSE {s.url}: no `event: stream` within {timeout}s"
                             f" (eof={s.eof.is_set()}, lines {s.lines[:6]})")
    head = s.lines[:5]
    try:
        data = json.loads(head[3][len("data: "):]) if len(head) > 3 else {}
    except ValueError:
        data = {}
    if (head[:3] != [f"retry: {s.retry}", "", "event: stream"] or head[4:] != [""]
            or not head[3].startswith("data: ")
            or set(data) != {"type", "stream", "epoch", "rooms"}
            or data["type"] != "stream" or data["stream"] != sid
            or not EPOCH_RE.match(data["epoch"]) or not isinstance(data["rooms"], dict)
            or len(sid) != 32 or any(ch not in "0123456789abcdef" for ch in sid)):
        raise AssertionError(f"SSE {s.url}: stream does not start with retry and"
                             f" `event: stream`: {head}")
    return sid


# --------------------------------------------------------------------------- epochs

# Each start of the gateway has an epoch (docs/PROTOCOL.md, "Epochs"): `joined.epoch`,
# `reset.epoch` and the "EPOCH/" prefix of every SSE event id.
EPOCH_RE = re.compile(r"^[0-9a-v]{8}$")


def is_epoch(value):
    return isinstance(value, str) and EPOCH_RE.match(value) is not None


def other_epoch(epoch):
    """A well-formed epoch that is not epoch: a cursor's of an earlier start."""
    return ("1" if epoch[0] == "0" else "0") + epoch[1:]


def split_event_id(id_):
    """An SSE event id "EPOCH/CURSOR" as (EPOCH, CURSOR); (None, id_) for an id without
    "EPOCH/" (the form before epochs). AssertionError for a malformed epoch."""
    if "/" not in id_:
        return None, id_
    epoch, _, cursor = id_.partition("/")
    if not is_epoch(epoch):
        raise AssertionError(f"SSE id {id_!r}: bad epoch {epoch!r}")
    return epoch, cursor


def event_epoch(id_):
    """The epoch of an SSE event id "EPOCH/...", which must have one."""
    epoch, _ = split_event_id(id_)
    if epoch is None:
        raise AssertionError(f"SSE id {id_!r} has no EPOCH/ prefix")
    return epoch


def event_seq(id_):
    """The seq of a one-room SSE event id "EPOCH/SEQ" (or a bare "SEQ"), as an int."""
    _, cursor = split_event_id(id_)
    if not cursor.isdigit():
        raise AssertionError(f"SSE id {id_!r}: not EPOCH/SEQ")
    return int(cursor)


def event_cursors(id_):
    """{ROOM: SEQ} of a several-room SSE event id "EPOCH/ROOM=SEQ,ROOM=SEQ,..." (or one
    without "EPOCH/"), in the id's order."""
    _, cursor = split_event_id(id_)
    out = {}
    for part in cursor.split(","):
        room, eq, seq = part.rpartition("=")
        if not eq or not room or not seq.isdigit() or room in out:
            raise AssertionError(f"SSE id {id_!r}: not EPOCH/ROOM=SEQ,...")
        out[room] = int(seq)
    return out


def stream_epoch(events, epoch=None):
    """The one epoch every event id of events carries (events without an id, such as
    gap or reset, are skipped); it must be epoch when that is given."""
    epochs = {event_epoch(e["id"]) for e in events if "id" in e}
    if epoch is not None:
        epochs.add(epoch)
    if len(epochs) != 1:
        raise AssertionError(f"SSE ids of one stream name epochs {sorted(epochs)}:"
                             f" {[e.get('id') for e in events]}")
    return epochs.pop()


def without_epoch(frame):
    """frame (a `joined` or `reset`) without its "epoch", which must be an epoch."""
    if not is_epoch(frame.get("epoch")):
        raise AssertionError(f"no epoch (8 of 0-9 a-v) in {frame}")
    return {k: v for k, v in frame.items() if k != "epoch"}


# --------------------------------------------------------------------------- raw sockets

def raw_tls(gw, rcvbuf=None, timeout=10):
    """A blocking TLS socket to the gateway. rcvbuf: SO_RCVBUF set before connect, so
    that a client that stops reading blocks the gateway's writes early."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", gw.port))
    return client_ssl().wrap_socket(sock, server_hostname="localhost")


def ws_frame(text, opcode=0x1):
    """A masked client frame (text by default)."""
    payload = text.encode() if isinstance(text, str) else text
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawWS:
    """A WebSocket client on a raw blocking TLS socket: nothing reads, and nothing
    answers the gateway's pings, unless the test does. For stalled and dead peers."""

    def __init__(self, gw, rcvbuf=None, timeout=10):
        self.sock = raw_tls(gw, rcvbuf, timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n"
                           f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk or len(data) > 65536:
                raise AssertionError(f"raw WS handshake: {data[:300]!r}")
            data += chunk
        head, _, self.buf = data.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise AssertionError(f"raw WS handshake refused: {head[:300]!r}")

    def send(self, obj):
        self.sock.sendall(ws_frame(json.dumps(obj, separators=(",", ":"))))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def frame(self, timeout=10):
        """The next (opcode, payload); raises EOFError at the end of the stream and
        socket.timeout when nothing complete arrives in time."""
        self.sock.settimeout(timeout)
        self._need(2)
        op, n, off = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return op, payload

    def json_frame(self, timeout=10):
        """The next text frame as an object (pings are answered on the way)."""
        while True:
            op, payload = self.frame(timeout)
            if op == 0x9:
                self.sock.sendall(ws_frame(payload, opcode=0xA))
                continue
            if op != 0x1:
                raise AssertionError(f"raw WS: opcode {op:#x} {payload[:100]!r}")
            return json.loads(payload)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


async def reload_gateway(gw, expect, timeout=10):
    """Sends the gateway SIGHUP (a reload) and returns what its log says from then on,
    once that holds expect."""
    mark = len(gw.stderr())
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while expect not in gw.stderr()[mark:]:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {expect!r} in the log after SIGHUP:\n"
                                 + gw.stderr()[mark:])
        await asyncio.sleep(0.05)
    return gw.stderr()[mark:]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def sanitized(gw):
    """True for an AddressSanitizer build (its RSS says little about ours)."""
    with open(f"/proc/{gw.proc.pid}/maps") as f:
        return "libasan" in f.read()


class TCPProxy:
    """Plain TCP forwarding from a loopback port to the gateway's (TLS stays end to
    end). drop_all() cuts every current connection (both sides) while new ones are
    still accepted; hold() parks new connections unforwarded until release()."""

    def __init__(self, port):
        self.target = port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs = []      # (client, upstream) being forwarded
        self.parked = []     # clients held back
        self.held = False
        self.accepted = 0    # connections accepted so far
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                if self.held:
                    self.parked.append(c)
                    continue
            self._forward(c)

    def _forward(self, c):
        try:
            u = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            u.settimeout(None)
        except OSError:
            c.close()
            return
        with self.lock:
            self.pairs.append((c, u))
        for a, b in ((c, u), (u, c)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drop_all(self):
        """Cuts every forwarded connection; returns how many."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        return len(pairs)

    def hold(self):
        with self.lock:
            self.held = True

    def release(self):
        with self.lock:
            self.held = False
            parked, self.parked = self.parked, []
        for c in parked:
            self._forward(c)
        return len(parked)

    def close(self):
        self.closed = True
        self.lsock.close()
        self.drop_all()
        with self.lock:
            parked, self.parked = self.parked, []
        for c in parked:
            c.close()


# --------------------------------------------------------------------------- node

def node_ready(package="eventsource"):
    """(True, '') if node and the npm packages (package among them) are usable, else
    (False, reason)."""
    if not shutil.which("node"):
        return False, "node not on PATH"
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", package)):
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                           capture_output=True, timeout=120)
        if r.returncode != 0:
            return False, "npm install failed: " + r.stderr.decode()[-500:]
    return True, ""


def run_tests():
    """unittest.main() with verbose output; exit status non-zero on failure."""
    unittest.main(verbosity=2)
