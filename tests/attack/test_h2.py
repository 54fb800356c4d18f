"""HTTP/2 defects of libwebsockets 4.1.6 (issue 10, items 7-12), fixed by patches/lws/01xx:
each test drives the real gateway over TLS with a raw HTTP/2 client (frames by hand,
HPACK by Debian's python3-hpack, which python3-h2 brings) and fails on an unpatched lws.

  7  a CONTINUATION flood ends with GOAWAY ENHANCE_YOUR_CALM and a close, log quiet
  8  several POSTs whose DATA arrive in one read all succeed, SSE on the connection too
  9  8,300 streams on one connection: the connection window stays bounded
  10 a :path with a query, repeated as an HPACK dynamic-table index, keeps its query
  11 a peer's zero window is respected; no DATA frame exceeds its MAX_FRAME_SIZE
  12 streams over SETTINGS_MAX_CONCURRENT_STREAMS get REFUSED_STREAM, the others go on;
     rapid reset never ends in a bare TCP close
  and (issue 12) a request of 100 headers is refused, and a known header with an empty
  value followed by the same header is served, without harm to the gateway; custom
  headers (Idempotency-Key, Last-Event-ID) survive HPACK indexing; table shrinks free
  what they drop; huge HPACK integers end only their connection

The hostile tests measure a good client's latency (GET /healthz on its own HTTP/2
connection) while they hammer, and print it. Loopback only; every loop is bounded.
"""
import json
import socket
import ssl
import struct
import sys
import threading
import time

import hpack

import attack  # noqa: F401  (puts tests/integration, the harness, on the path)
from harness import GatewayTestCase, run_tests

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS, S_INITIAL_WINDOW_SIZE, \
    S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = range(1, 7)
E_NO_ERROR, E_PROTOCOL, E_FLOW_CONTROL, E_CANCEL, E_REFUSED_STREAM, E_CALM = \
    0x0, 0x1, 0x3, 0x8, 0x7, 0xB
MAX_WINDOW = 2 ** 31 - 1
DEFAULT_MAX_FRAME = 16384


def frame(ftype, flags, sid, payload=b""):
    return (struct.pack("!I", len(payload))[1:] + bytes([ftype, flags])
            + struct.pack("!I", sid & 0x7FFFFFFF) + payload)


def log(msg):
    sys.stderr.write(f"    [h2] {msg}\n")
    sys.stderr.flush()


class Stream:
    def __init__(self, sid, window):
        self.sid = sid
        self.headers = None   # [(name, value)] of the response
        self.data = bytearray()
        self.ended = False
        self.reset = None     # RST_STREAM error code from the server
        self.window = window  # what we may send on it (the server's grant)

    @property
    def status(self):
        for k, v in self.headers or ():
            if k == ":status":
                return int(v)
        return None

    @property
    def done(self):
        return self.ended or self.reset is not None

    def json(self):
        return json.loads(bytes(self.data))


class H2:
    """A raw HTTP/2 client on a blocking TLS socket. settings: our SETTINGS
    ({id: value}). auto_window: give back, with WINDOW_UPDATE, the credit of every DATA
    frame as it arrives (connection and stream); off, the client never opens a window
    but by window_update()."""

    def __init__(self, gw, settings=None, auto_window=True, timeout=10):
        raw = socket.create_connection(("127.0.0.1", gw.port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        if self.sock.selected_alpn_protocol() != "h2":
            raise AssertionError("the gateway did not choose h2 by ALPN")
        self.enc, self.dec = hpack.Encoder(), hpack.Decoder()
        self.auto_window = auto_window
        self.streams = {}
        self.next_sid = 1
        self.buf = b""
        self.eof = False
        self.goaway = None           # (last_sid, code, debug text)
        self.server_settings = {}
        self.settings_acked = False
        self.initial_window = 65535  # the server's SETTINGS_INITIAL_WINDOW_SIZE
        self.conn_window = 65535     # what we may send on the connection
        self.max_conn_window = self.conn_window
        self.window_error = None     # a WINDOW_UPDATE that took a window past 2^31-1
        self.max_frame = 0           # the longest frame payload received
        self._block = None           # (sid, flags, bytes) while CONTINUATION is due
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0, b"".join(
            struct.pack("!HI", k, v) for k, v in (settings or {}).items())))
        if not self.wait(lambda: self.settings_acked and self.server_settings, 5):
            raise AssertionError("no SETTINGS exchange with the gateway")

    # ---------------------------------------------------------------- sending
    def send(self, data):
        self.sock.sendall(data)

    def new_sid(self):
        sid = self.next_sid
        self.next_sid += 2
        self.streams[sid] = Stream(sid, self.initial_window)
        return sid

    def header_block(self, method, path, headers=(), never_index=False):
        """HPACK-encoded request headers. By default the encoder indexes every header
        (a repeated one goes out as a one-byte dynamic-table index, as browsers do)."""
        hdrs = [(":method", method), (":scheme", "https"), (":authority", "localhost"),
                (":path", path)] + list(headers)
        if never_index:
            hdrs = [hpack.NeverIndexedHeaderTuple(k, v) for k, v in hdrs]
        return self.enc.encode(hdrs)

    def request(self, method, path, body=None, headers=(), send=True, block=None):
        """Starts a request: its stream id, or (sid, bytes) with send=False."""
        sid = self.new_sid()
        hs = list(headers)
        if body is not None:
            hs += [("content-type", "application/json"), ("content-length", str(len(body)))]
        if block is None:
            block = self.header_block(method, path, hs)
        out = frame(HEADERS, END_HEADERS | (END_STREAM if body is None else 0), sid, block)
        if body is not None:
            out += frame(DATA, END_STREAM, sid, body)
        if send:
            self.send(out)
            return sid
        return sid, out

    def window_update(self, sid, inc):
        self.send(frame(WINDOW_UPDATE, 0, sid, struct.pack("!I", inc)))

    # ---------------------------------------------------------------- receiving
    def _read(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            chunk = self.sock.recv(262144)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except (OSError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _frames(self):
        out = []
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                break
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload, self.buf = self.buf[9:9 + length], self.buf[9 + length:]
            self.max_frame = max(self.max_frame, length)
            out.append(self._on_frame(ftype, flags, sid, payload))
        out = b"".join(out)
        if out and not self.eof:
            try:
                self.send(out)
            except OSError:
                self.eof = True

    def _stream(self, sid):
        if sid not in self.streams:
            self.streams[sid] = Stream(sid, self.initial_window)
        return self.streams[sid]

    def _on_frame(self, ftype, flags, sid, payload):
        if ftype == SETTINGS:
            if flags & ACK:
                self.settings_acked = True
                return b""
            for i in range(0, len(payload), 6):
                k, v = struct.unpack("!HI", payload[i:i + 6])
                self.server_settings[k] = v
                if k == S_INITIAL_WINDOW_SIZE:
                    for s in self.streams.values():
                        s.window += v - self.initial_window
                    self.initial_window = v
            return frame(SETTINGS, ACK, 0)
        if ftype == PING:
            return b"" if flags & ACK else frame(PING, ACK, 0, payload)
        if ftype == GOAWAY:
            last, code = struct.unpack("!II", payload[:8])
            self.goaway = (last & 0x7FFFFFFF, code, payload[8:])
        elif ftype == WINDOW_UPDATE:
            inc = struct.unpack("!I", payload)[0] & 0x7FFFFFFF
            if sid == 0:
                self.conn_window += inc
                self.max_conn_window = max(self.max_conn_window, self.conn_window)
                if self.conn_window > MAX_WINDOW and self.window_error is None:
                    self.window_error = ("connection", self.conn_window)
            else:
                s = self._stream(sid)
                s.window += inc
                if s.window > MAX_WINDOW and self.window_error is None:
                    self.window_error = (sid, s.window)
        elif ftype == RST_STREAM:
            self._stream(sid).reset = struct.unpack("!I", payload)[0]
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                body = payload
                if flags & PADDED:
                    body = body[1:len(body) - payload[0]]
                if flags & PRIORITY_FLAG:
                    body = body[5:]
                self._block = (sid, flags, body)
            else:
                s0, f0, b0 = self._block
                self._block = (s0, f0, b0 + payload)
            if flags & END_HEADERS:
                s0, f0, block = self._block
                self._block = None
                hdrs = [(k if isinstance(k, str) else k.decode(),
                         v if isinstance(v, str) else v.decode("latin-1"))
                        for k, v in self.dec.decode(block)]
                s = self._stream(s0)
                if s.status is None:
                    s.headers = hdrs
                if f0 & END_STREAM:
                    s.ended = True
        elif ftype == DATA:
            s = self._stream(sid)
            body = payload
            if flags & PADDED:
                body = body[1:len(body) - payload[0]]
            s.data += body
            if flags & END_STREAM:
                s.ended = True
            if self.auto_window and payload:
                out = frame(WINDOW_UPDATE, 0, 0, struct.pack("!I", len(payload)))
                if not s.done:
                    out += frame(WINDOW_UPDATE, 0, sid, struct.pack("!I", len(payload)))
                return out
        return b""

    def pump(self, timeout=0.05):
        """Reads what arrives within timeout (then whatever is already there)."""
        if self.eof:
            return False
        if self._read(timeout):
            while self._read(0.001):
                pass
        self._frames()
        return not self.eof

    def wait(self, pred, timeout=5):
        """Pumps until pred(), EOF or timeout; returns pred()."""
        deadline = time.monotonic() + timeout
        while not pred() and not self.eof and time.monotonic() < deadline:
            self.pump(min(0.1, max(0.001, deadline - time.monotonic())))
        self._frames()
        return pred()

    def response(self, sid, timeout=5):
        s = self.streams[sid]
        self.wait(lambda: s.done or self.goaway is not None, timeout)
        return s

    def closed_within(self, timeout):
        """Reads until EOF; True if the gateway closed within timeout."""
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self.pump(0.1)
        return self.eof

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def messages_in(data):
    """The `event: message` events in SSE bytes."""
    return bytes(data).count(b"event: message\n")


class GoodClient:
    """A well-behaved client beside a hostile one: GET /healthz in a loop on its own
    HTTP/2 connection (a new one if it is lost), timing each; stop() returns a summary
    and the failures."""

    def __init__(self, gw):
        self.gw = gw
        self.times, self.failures = [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        c = None
        while not self._stop.is_set() and len(self.times) + len(self.failures) < 100000:
            try:
                if c is None or c.eof or c.goaway:
                    c = H2(self.gw)
                t0 = time.monotonic()
                s = c.response(c.request("GET", "/healthz"), timeout=5)
                if s.status == 200:
                    self.times.append(time.monotonic() - t0)
                else:
                    self.failures.append(f"status {s.status} reset {s.reset}")
                c.streams.pop(s.sid, None)
            except Exception as e:  # noqa: BLE001 - recorded, reported by stop()
                self.failures.append(repr(e))
                c = None
            time.sleep(0.002)
        if c:
            c.close()

    def run_for(self, seconds):
        """Alone, for a baseline: runs seconds, then stop()."""
        time.sleep(seconds)
        return self.stop()

    def stop(self):
        self._stop.set()
        self._thread.join(15)
        t = sorted(self.times) or [0.0]
        summary = (f"good client: {len(self.times)} requests, p50 {t[len(t) // 2] * 1e3:.2f} ms,"
                   f" p99 {t[int(len(t) * 0.99)] * 1e3:.2f} ms, max {t[-1] * 1e3:.2f} ms,"
                   f" {len(self.failures)} failed")
        return summary, self.failures


class H2DefectsTest(GatewayTestCase):
    def client(self, **kw):
        c = H2(self.gw, **kw)
        self.addCleanup(c.close)
        return c

    def publish(self, room, n, size=64):
        """n messages into room over their own HTTP/2 connection; their seqs."""
        c = self.client()
        seqs = []
        for i in range(n):
            body = json.dumps({"i": i, "pad": "p" * size}).encode()
            s = c.response(c.request("POST", f"/rooms/{room}/messages", body=body))
            self.assertEqual(s.status, 201, f"publish {i}: {s.status} {bytes(s.data)!r}")
            seqs.append(s.json()["seq"])
        c.close()
        return seqs

    def log_lines(self):
        """The gateway's log lines but access lines: a request answered has one (the
        good client's), and what a flood makes it write is the rest."""
        return sum(1 for x in self.gw.stderr().splitlines() if "] access " not in x)

    def healthz_with(self, extra, before=b""):
        """A new connection's GET /healthz with raw HPACK bytes after its header block
        (and before it): (client, stream id)."""
        c = self.client()
        sid = c.new_sid()
        c.send(frame(HEADERS, END_HEADERS | END_STREAM, sid,
                     before + c.header_block("GET", "/healthz") + extra))
        return c, sid

    def good_healthz(self):
        """A good client's GET /healthz on a connection of its own: (status, ms)."""
        t0 = time.monotonic()
        good = self.client()
        s = good.response(good.request("GET", "/healthz"), timeout=5)
        return s.status, (time.monotonic() - t0) * 1000

    # ------------------------------------------------------------------ item 7
    def continuation_flood(self, limit=10000):
        """One connection: a header block that never ends. Returns (frames sent,
        GOAWAY, closed within 5 s)."""
        c = H2(self.gw)
        try:
            sid = c.new_sid()
            c.send(frame(HEADERS, 0, sid, c.header_block("GET", "/healthz")))
            # literal header without indexing, new name: x-a: bbbbbbbb (12 bytes)
            cont = frame(CONTINUATION, 0, sid, b"\x00\x03x-a\x08" + b"b" * 8)
            sent = 0
            while sent < limit and not c.eof and c.goaway is None:
                try:
                    c.send(cont * 250)
                except OSError:
                    break
                sent += 250
                c.pump(0.001)
            return sent, c.goaway, c.closed_within(5)
        finally:
            c.close()

    async def test_continuation_flood_goaway_and_close(self):
        """A header block that never ends (HEADERS without END_HEADERS, then
        CONTINUATION frames) is cut off at the header budget with GOAWAY
        ENHANCE_YOUR_CALM and a close, and the gateway logs next to nothing; floods
        on one connection after another for 2 s leave a good client served. Unpatched:
        one ERROR line per frame and the connection is never closed."""
        base, _ = GoodClient(self.gw).run_for(1.0)
        lines0 = self.log_lines()
        good = GoodClient(self.gw)
        t0, floods, frames = time.monotonic(), 0, 0
        while time.monotonic() - t0 < 2.0 and floods < 100:
            sent, goaway, closed = self.continuation_flood()
            floods += 1
            frames += sent
            self.assertIsNotNone(goaway, f"no GOAWAY after {sent} CONTINUATION frames")
            self.assertEqual(goaway[1], E_CALM, goaway)
            self.assertTrue(closed, "the connection was not closed after the GOAWAY")
            self.assertLess(sent, 10000)
        summary, failures = good.stop()
        lines = self.log_lines() - lines0
        log(f"item 7: {floods} flooding connections, {frames} CONTINUATION frames"
            f" ({frames * 21} bytes) in {time.monotonic() - t0:.2f} s, each ended by"
            f" GOAWAY ENHANCE_YOUR_CALM and a close; gateway log lines {lines};"
            f" alone: {base}; during: {summary}")
        self.assertLess(lines, 20, self.gw.stderr()[-2000:])
        self.assertEqual(failures, [])

    # ------------------------------------------------------------------ item 8
    async def test_concurrent_posts_in_one_read(self):
        """Three POSTs whose HEADERS and DATA arrive in one write, beside an SSE
        stream on the same connection: all three are stored and streamed. Unpatched:
        GOAWAY PROTOCOL_ERROR ("More rx than content_length told"), every stream
        dies."""
        c = self.client()
        sse = c.request("GET", "/events?room=t:posts")
        self.assertTrue(c.wait(lambda: c.streams[sse].status == 200, 5), "SSE not started")
        out, sids = b"", []
        for i in range(3):
            sid, data = c.request("POST", "/rooms/t:posts/messages",
                                  body=json.dumps({"i": i}).encode(), send=False)
            out += data
            sids.append(sid)
        c.send(out)
        for sid in sids:
            s = c.response(sid)
            self.assertEqual(s.status, 201, f"POST on stream {sid}: {s.status}"
                             f" {bytes(s.data)!r} reset {s.reset} GOAWAY {c.goaway}")
        self.assertEqual(sorted(c.streams[sid].json()["seq"] for sid in sids), [1, 2, 3])
        self.assertTrue(c.wait(lambda: messages_in(c.streams[sse].data) == 3, 5),
                        f"SSE got {messages_in(c.streams[sse].data)} of 3 messages")
        self.assertIsNone(c.goaway)

    # ------------------------------------------------------------------ item 9
    async def test_connection_window_stays_bounded(self):
        """8,300 requests on one connection (more than the 8,191 streams after which
        an unpatched lws pushes the connection window past 2^31-1, which the client
        must refuse): all answered, and the connection window the gateway grants
        stays bounded."""
        c = self.client()
        total, batch, ok, t0 = 8300, 20, 0, time.monotonic()
        while ok < total and c.goaway is None and not c.eof and c.window_error is None:
            out, sids = [], []
            for _ in range(min(batch, total - ok)):
                sid, data = c.request("GET", "/healthz", send=False)
                out.append(data)
                sids.append(sid)
            c.send(b"".join(out))
            if not c.wait(lambda: all(c.streams[s].done for s in sids), 10):
                break
            for s in sids:
                if c.streams.pop(s).status == 200:
                    ok += 1
            if time.monotonic() - t0 > 120:
                break
        log(f"item 9: {ok} of {total} requests on one connection in"
            f" {time.monotonic() - t0:.1f} s; largest connection window granted"
            f" {c.max_conn_window}; window error {c.window_error}; GOAWAY {c.goaway}")
        self.assertIsNone(c.window_error, "a WINDOW_UPDATE took a window past 2^31-1")
        self.assertEqual(ok, total, f"GOAWAY {c.goaway}, eof {c.eof}")
        self.assertLessEqual(c.max_conn_window, 2 ** 25)

    # ------------------------------------------------------------------ item 10
    async def test_indexed_path_keeps_query(self):
        """The same GET with a query, three times on one connection: the second and
        third go out as a one-byte HPACK dynamic-table index for :path (as browsers
        send a repeated header) and must be answered like the first, query
        included. Unpatched: 403 from the second on."""
        self.publish("t:idx", 3)
        c = self.client()
        for path in ("/rooms/t:idx/messages?since=1&limit=1",
                     "/rooms/t%3Aidx/messages?limit=1&since=1",
                     "/rooms/t:idx/./messages?since=2&limit=5"):
            want = 2 if "since=1" in path else 3
            blocks = []
            for i in range(3):
                block = c.header_block("GET", path)
                blocks.append(block)
                s = c.response(c.request("GET", path, block=block))
                self.assertEqual(s.status, 200, f"{path} #{i + 1}: {s.status}"
                                 f" {bytes(s.data)[:100]!r}")
                msgs = s.json()["messages"]
                self.assertEqual([m["seq"] for m in msgs][:1], [want], f"{path} #{i + 1}")
                if "limit=1" in path:
                    self.assertEqual(len(msgs), 1, f"{path} #{i + 1}: limit not applied")
            # the repeats really were dynamic-table indexes, not literals
            self.assertLess(len(blocks[1]), 8, blocks[1])
        # and the never-indexed literal form still works beside them
        path = "/rooms/t:idx/messages?since=1&limit=1"
        s = c.response(c.request("GET", path,
                                 block=c.header_block("GET", path, never_index=True)))
        self.assertEqual(s.status, 200)

    # ------------------------------------------------------------------ item 11
    async def test_zero_window_is_respected(self):
        """A client that sets SETTINGS_INITIAL_WINDOW_SIZE 0 and never opens the
        window gets no DATA on its SSE stream, however much is published; opened a
        little, it gets no more than it allowed; and no DATA frame is larger than the
        16,384 bytes of SETTINGS_MAX_FRAME_SIZE. Unpatched: 600 KB past a zero window,
        in 64 KB frames."""
        lines0 = len(self.gw.stderr().splitlines())
        c = self.client(settings={S_INITIAL_WINDOW_SIZE: 0}, auto_window=False)
        sse = c.request("GET", "/events?room=t:zero")
        self.assertTrue(c.wait(lambda: c.streams[sse].status == 200, 5), "SSE not started")
        self.gw.wait_subscribers("t:zero", 1)
        n = 40
        self.publish("t:zero", n, size=2000)
        c.wait(lambda: False, 1.0)
        s = c.streams[sse]
        log(f"item 11: {len(s.data)} bytes on a zero-window stream after {n} publishes"
            f" of ~2 KB; largest frame {c.max_frame}")
        self.assertEqual(len(s.data), 0, "DATA sent past a zero stream window")
        c.window_update(sse, 10000)
        c.wait(lambda: False, 1.0)
        self.assertGreater(len(s.data), 0, "nothing sent once the window opened")
        self.assertLessEqual(len(s.data), 10000, "DATA sent past the stream window")
        # the connection window (65,535) is the limit now
        c.window_update(sse, 1000000)
        c.wait(lambda: False, 1.0)
        self.assertLessEqual(len(s.data), 65535, "DATA sent past the connection window")
        c.window_update(0, 1000000)
        self.assertTrue(c.wait(lambda: messages_in(s.data) == n, 5),
                        f"{messages_in(s.data)} of {n} messages once the windows opened")
        self.assertLessEqual(c.max_frame, DEFAULT_MAX_FRAME)
        self.assertIsNone(c.goaway)
        new = self.gw.stderr().splitlines()[lines0:]
        self.assertEqual([x for x in new if " ERROR: " in x], [])

    async def test_small_window_answer_arrives_whole(self):
        """An API answer larger than the client's stream window (100 bytes) comes in
        frames within the window as the client gives credit back, complete, and its
        stream ends. Unpatched: one frame past the window."""
        self.publish("t:small", 20, size=100)
        c = self.client(settings={S_INITIAL_WINDOW_SIZE: 100})
        s = c.response(c.request("GET", "/rooms/t:small/messages?since=0&limit=20"), 10)
        log(f"item 11: a {len(s.data)}-byte answer through a 100-byte window, largest"
            f" frame {c.max_frame}")
        self.assertEqual(s.status, 200, f"reset {s.reset} GOAWAY {c.goaway}")
        self.assertTrue(s.ended)
        self.assertGreater(len(s.data), 1000)
        self.assertEqual(len(s.json()["messages"]), 20)
        self.assertLessEqual(c.max_frame, 100)

    # ------------------------------------------------------------------ item 12
    async def test_streams_over_the_limit_are_refused(self):
        """The gateway advertises SETTINGS_MAX_CONCURRENT_STREAMS; streams opened past
        it get RST_STREAM REFUSED_STREAM while those within go on; a stream the client
        resets frees its slot. Unpatched: a bare TCP close kills every stream."""
        c = self.client()
        limit = c.server_settings.get(S_MAX_CONCURRENT_STREAMS)
        self.assertIsNotNone(limit, "no SETTINGS_MAX_CONCURRENT_STREAMS advertised")
        self.assertTrue(1 <= limit <= 1000, limit)
        # never-indexed header blocks: this test is about the stream limit, not
        # about a repeated :path with a query (test_indexed_path_keeps_query)
        sse = c.header_block("GET", "/events?room=t:many", never_index=True)
        out, open_ = [], []
        for _ in range(limit):
            sid, data = c.request("GET", "/events?room=t:many", send=False, block=sse)
            out.append(data)
            open_.append(sid)
        c.send(b"".join(out))
        self.assertTrue(c.wait(lambda: all(c.streams[s].status == 200 for s in open_), 10),
                        f"{sum(c.streams[s].status == 200 for s in open_)} of {limit}"
                        f" streams started; GOAWAY {c.goaway} eof {c.eof}")
        out, extra = [], []
        for _ in range(2):
            sid, data = c.request("GET", "/events?room=t:many", send=False, block=sse)
            out.append(data)
            extra.append(sid)
        # two POSTs whose body is still arriving when they are refused: its DATA
        # frames are ignored, not a connection error
        body = json.dumps({"pad": "p" * 3000}).encode()
        post = c.header_block("POST", "/rooms/t:many/messages",
                              [("content-type", "application/json"),
                               ("content-length", str(len(body)))], never_index=True)
        for _ in range(2):
            sid, data = c.request("POST", "/rooms/t:many/messages", body=body, send=False,
                                  block=post)
            out.append(data[:-(9 + len(body))] + frame(DATA, 0, sid, body[:1000]))
            extra.append(sid)
        c.send(b"".join(out))
        time.sleep(0.1)
        c.send(b"".join(frame(DATA, END_STREAM, sid, body[1000:]) for sid in extra[2:]))
        refused = c.wait(lambda: all(c.streams[s].done for s in extra), 5)
        log(f"item 12: limit {limit}; {len(extra)} streams over it:"
            f" {[c.streams[s].reset for s in extra]}; GOAWAY {c.goaway}; eof {c.eof}")
        self.assertFalse(c.eof, "the gateway closed the connection")
        self.assertTrue(refused)
        self.assertEqual([c.streams[s].reset for s in extra], [E_REFUSED_STREAM] * 4)
        self.assertIsNone(c.goaway)
        self.publish("t:many", 1)
        self.assertTrue(c.wait(lambda: all(messages_in(c.streams[s].data) == 1
                                           for s in open_), 5),
                        "the streams within the limit did not all get the message")
        # a reset stream frees its slot
        c.send(frame(RST_STREAM, 0, open_[0], struct.pack("!I", E_CANCEL)))
        self.gw.wait_subscribers("t:many", limit - 1)
        s = c.response(c.request("GET", "/healthz"))
        self.assertEqual(s.status, 200, f"reset {s.reset}")

    def rapid_reset(self, pairs=3000):
        """One connection: pairs requests, each reset at once (50 pairs a write).
        Returns (pairs sent, GOAWAY, EOF, status of a request after them or None)."""
        c = H2(self.gw)
        try:
            sent = 0
            while sent < pairs and not c.eof and c.goaway is None:
                out = []
                for _ in range(50):
                    sid, data = c.request("GET", "/rooms/t:rr/messages", send=False)
                    out.append(data + frame(RST_STREAM, 0, sid,
                                            struct.pack("!I", E_CANCEL)))
                try:
                    c.send(b"".join(out))
                except OSError:
                    break
                sent += 50
                c.pump(0.001)
                for sid in [s for s, st in c.streams.items() if st.done]:
                    del c.streams[sid]
            last = None
            if not c.eof and c.goaway is None:
                last = c.response(c.request("GET", "/healthz"), 5).status
            return sent, c.goaway, c.eof, last
        finally:
            c.close()

    async def test_rapid_reset(self):
        """Requests each reset at once (HEADERS + RST_STREAM CANCEL), 3,000 a
        connection, on connection after connection for 2 s: each connection goes on
        serving, or is ended with a GOAWAY carrying an error code, never by a bare
        TCP close; a good client beside them is served throughout. Unpatched: a bare
        close after ~700 streams."""
        base, _ = GoodClient(self.gw).run_for(1.0)
        good = GoodClient(self.gw)
        t0, conns, resets, outcomes = time.monotonic(), 0, 0, {}
        while time.monotonic() - t0 < 2.0 and conns < 20:
            sent, goaway, eof, last = self.rapid_reset()
            conns += 1
            resets += sent
            self.assertFalse(eof and goaway is None, f"bare TCP close after {sent} resets")
            if goaway is None:
                self.assertEqual(last, 200)
                outcome = "served a request after them"
            else:
                self.assertNotEqual(goaway[1], E_NO_ERROR)
                outcome = f"GOAWAY {goaway[1]:#x}"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        summary, failures = good.stop()
        log(f"item 12: {conns} connections, {resets} rapid resets in"
            f" {time.monotonic() - t0:.2f} s: {outcomes}; alone: {base}; during: {summary}")
        self.assertEqual(failures, [])

    # ------------------------------------------------------------- issue 12
    async def test_table_shrink_frees_what_it_drops(self):
        """300 indexed headers, then a dynamic-table size update to fewer slots than
        entries, on connection after connection: every request is served, and nothing
        stays behind. Unpatched (0112), every such shrink leaked the values of the
        entries it dropped, without bound across connections (an ASan build grew by
        200 MB in 300 connections). The check is the sanitizer suite's: LeakSanitizer
        reports the leak when the class's gateway exits. RSS is printed only: on a
        busy machine it moved by 35 MB in this test with no leak at all."""
        shrink = (b"\x40\x01a\x01b" * 300 + b"\x3f\xb9\x04"     # 300 x a: b, size 600
                  + b"\x3f\xe1\x1f" + b"\x00\x06accept\x03*/*")  # size 4096, a header

        def rss():
            with open(f"/proc/{self.gw.proc.pid}/status") as f:
                return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS"))

        before = rss()
        for _ in range(300):
            c = H2(self.gw)
            sid = c.new_sid()
            c.send(frame(HEADERS, END_HEADERS | END_STREAM, sid,
                         c.header_block("GET", "/healthz") + shrink))
            self.assertEqual(c.response(sid).status, 200)
            c.close()
        log(f"300 connections, each 300 entries then a shrink: RSS {rss() - before:+} kB")

    async def test_huge_hpack_integers(self):
        """A table size update past 2^31, and integers of more than 4 extra bytes, end
        their connection and nothing else (unpatched, 0112: the size arrived negative
        and asked realloc for ~2^64 bytes, which ends a sanitizer build; the integer
        shifted past 32 bits)."""
        for name, extra in {"table size 2^31": b"\x3f\xe1\xff\xff\xff\x07",
                            "a 6-byte index": b"\xff" + b"\xff" * 5 + b"\x01",
                            "a 6-byte length": b"\x00\x7f" + b"\xff" * 5 + b"\x01a"}.items():
            with self.subTest(name=name):
                c, _ = self.healthz_with(b"", before=extra)
                c.pump(0.5)
                self.assertEqual(self.good_healthz()[0], 200)
                self.assertTrue(self.gw.alive())

    async def test_empty_known_header_then_the_same_again(self):
        """A header lws knows, with a literal name and an empty value, then the same
        header again (from the static table, or as a literal): the request is served
        and so is everyone else. Unpatched (0111), the empty value left its fragment
        open, the second header was linked onto itself, and 42 bytes sent the event
        loop round that loop for ever: the whole gateway stopped serving."""
        blocks = {
            "accept: (empty), then accept by static index": b"\x00\x06accept\x00\x93",
            "accept: (empty), then accept: */*": b"\x00\x06accept\x00\x00\x06accept\x03*/*",
            "cookie: (empty), then cookie by index": b"\x00\x06cookie\x00\x0f\x11\x03a=b",
            "accept: (empty) with indexing, then by dynamic index": b"\x40\x06accept\x00\xbe",
        }
        for name, extra in blocks.items():
            with self.subTest(headers=name):
                c, sid = self.healthz_with(extra)
                s = c.response(sid, timeout=5)
                good, took = self.good_healthz()
                log(f"{name}: {s.status}; a good client's /healthz after it: {good} in"
                    f" {took:.1f} ms")
                self.assertEqual(s.status, 200)
                self.assertEqual(good, 200)
                self.assertLess(took, 1000)

    async def test_custom_headers_on_one_connection(self):
        """Idempotency-Key and Last-Event-ID, headers lws has no token for, reach the
        gateway on HTTP/2 (patches/lws/0110), also when a request repeats them on the
        same connection and HPACK sends them as dynamic-table indexes, as browsers
        do: the second publish with the key is a duplicate, the second stream resumes
        from its id."""
        room = "t:h2custom"
        c = self.client()
        answers = []
        for body in (b'"a"', b'"a"', b'"b"'):
            s = c.response(c.request("POST", f"/rooms/{room}/messages", body=body,
                                     headers=[("idempotency-key", "k-1")]))
            answers.append((s.status, s.json()))
        self.assertEqual(answers[0], (201, {"room": room, "seq": 1}))
        self.assertEqual(answers[1], (200, {"room": room, "seq": 1, "duplicate": True}))
        self.assertEqual(answers[2][0], 409, answers)
        for body in (b'"2"', b'"3"'):
            c.response(c.request("POST", f"/rooms/{room}/messages", body=body))
        epoch = None
        for _ in range(2):  # the second request's last-event-id is a table index
            sid = c.request("GET", f"/events?room={room}",
                            headers=[("last-event-id", "1")])
            def seqs():
                return [json.loads(ln[6:])["seq"] for ln in
                        bytes(c.streams[sid].data).decode().split("\n")
                        if ln.startswith('data: {"type":"message"')]
            t0 = time.monotonic()
            while time.monotonic() - t0 < 5 and seqs() != [2, 3]:
                c.pump(0.05)
            self.assertEqual(seqs(), [2, 3], bytes(c.streams[sid].data)[:300])
            self.assertEqual(c.streams[sid].status, 200)
            ids = [ln for ln in bytes(c.streams[sid].data).decode().split("\n")
                   if ln.startswith("id: ")]
            epoch = epoch or ids[0][4:].split("/")[0]
            self.assertEqual(ids, [f"id: {epoch}/2", f"id: {epoch}/3"])

    async def test_many_headers_in_one_request(self):
        """One request of 100 headers (literal names: known ones such as accept,
        unknown ones, and known ones by HPACK index) is refused, and the gateway goes
        on: GOAWAY ENHANCE_YOUR_CALM or a failed stream, never more. Unpatched, the
        literal-name known headers wrote past lws's header-fragment table and sent
        the event loop into an endless loop: the whole gateway stopped serving."""
        blocks = {
            "literal known names": b"\x00\x06accept\x03*/*" * 100,
            "literal unknown names": b"".join(
                b"\x00\x04x-%02d\x01x" % i for i in range(100)),
            "indexed known names": b"\x0f\x04\x03*/*" * 100,  # static index 19: accept
            "a few": b"\x00\x06accept\x03*/*" * 10,
        }
        for name, extra in blocks.items():
            with self.subTest(headers=name):
                c, sid = self.healthz_with(extra)
                c.pump(0.5)
                good, took = self.good_healthz()
                st = c.streams[sid]
                log(f"{name}: GOAWAY {c.goaway}, stream status {st.status} reset "
                    f"{st.reset}, eof {c.eof}; a good client's /healthz "
                    f"after it: {good} in {took:.1f} ms")
                self.assertEqual(good, 200)
                self.assertLess(took, 1000)
                self.assertTrue(self.gw.alive())
                if name in ("a few", "literal unknown names"):  # unknown ones are dropped
                    self.assertEqual(c.response(sid).status, 200)
                else:  # refused: the connection ends, with GOAWAY when it can be sent
                    self.assertTrue(c.eof or c.goaway is not None)
                    if c.goaway is not None:
                        self.assertEqual(c.goaway[1], E_CALM, c.goaway)


if __name__ == "__main__":
    run_tests()
