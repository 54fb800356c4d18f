"""HTTP/1.1 robustness (issue 10, items 2 and 14), over TLS with raw sockets.

- A closed SSE stream, or bytes pipelined behind GET /events, must not make the gateway
  spin (lws 4.1.6 did not read a connection in LRS_DOING_TRANSACTION: the EOF stayed
  readable, epoll level-triggered; patches/lws/0201, 0202). The gateway's CPU time is
  read from /proc/PID/stat while nothing else happens.
- Requests pipelined on one connection are all answered, or the connection is closed
  after an answer that says so; the gateway never spins (patches/lws/0203, 0204: lws
  4.1.6 spun forever on a request with a body pipelined behind a completed one).
- A request line or header block larger than lws's header table gets 414 / 431, not a
  bare close (patches/lws/0210).
- A request whose body length is ambiguous (RFC 9112 6.3) gets 400: a
  Transfer-Encoding with a Content-Length, a Transfer-Encoding whose last coding is not
  chunked, a repeated or non-numeric Content-Length. lws 4.1.6 frames such a body by
  the first Content-Length it saw.
"""
import asyncio
import os
import re
import socket
import ssl
import time

import attack  # noqa: F401  (puts tests/integration, the harness, on the path)
from harness import GatewayTestCase, http, raw_tls, run_tests

TICK = os.sysconf("SC_CLK_TCK")
SPIN_LIMIT = 0.3  # CPU-s the gateway may use in a quiet 2 s window (a spin uses ~2)


def cpu_seconds(pid):
    """utime + stime of the process, in seconds (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_over(pid, seconds):
    c0 = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - c0


def read_until(s, pred, timeout):
    """Reads from s until pred(data) or EOF or timeout; (data, eof)."""
    data, eof = b"", False
    deadline = time.monotonic() + timeout
    while not pred(data):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except (socket.timeout, TimeoutError):
            break
        except (ConnectionError, ssl.SSLError):
            eof = True
            break
        if not chunk:
            eof = True
            break
        data += chunk
    return data, eof


def send_all(s, data):
    """sendall that tolerates the server closing early (it may answer and close before
    it read everything)."""
    try:
        s.sendall(data)
    except (ConnectionError, ssl.SSLError, OSError):
        pass


def statuses(data):
    return [int(x) for x in re.findall(rb"HTTP/1\.[01] (\d{3})[ \r]", data)]


def sse_request(room, extra=b""):
    return (b"GET /events?room=" + room.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
            b"Accept: text/event-stream\r\n\r\n" + extra)


BODY = b'{"t":1}'
REQ = {
    "get": b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "rooms": b"GET /rooms HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "post": (b"POST /rooms/t:h1pipe/messages HTTP/1.1\r\nHost: localhost\r\n"
             b"Content-Type: application/json\r\nContent-Length: 7\r\n\r\n" + BODY),
}
WANT = {"get": 200, "rooms": 200, "post": 201}


class SSESpinTest(GatewayTestCase):
    CONFIG = {"sse": {"keepalive_seconds": 15}}

    def open_streams(self, room, n):
        socks = []
        for _ in range(n):
            s = raw_tls(self.gw, timeout=5)
            s.sendall(sse_request(room))
            data, _ = read_until(s, lambda d: b"event: stream" in d, 5)
            self.assertIn(b" 200 ", data.split(b"\r\n", 1)[0], data[:200])
            self.assertIn(b"event: stream", data, data[:300])
            socks.append(s)
        return socks

    async def test_closed_streams_do_not_spin(self):
        """20 HTTP/1.1 SSE streams closed by their clients (a closed tab): the gateway
        notices at once and stays idle (unpatched lws: ~3 CPU-s in 3 s until the next
        keepalive write failed, 15 s later)."""
        await asyncio.to_thread(self.closed_streams_do_not_spin)

    def closed_streams_do_not_spin(self):
        room = "t:h1closed"
        socks = self.open_streams(room, 20)
        self.gw.wait_subscribers(room, 20)
        for s in socks:
            s.close()
        time.sleep(0.3)
        used = cpu_over(self.gw.proc.pid, 2.0)
        self.assertLess(used, SPIN_LIMIT,
                        f"gateway used {used:.2f} CPU-s in 2 s after 20 SSE clients left")
        self.gw.wait_subscribers(room, 0, timeout=3)
        self.assertEqual(http(self.gw, "GET", "/healthz", timeout=5).status, 200)

    async def test_bytes_pipelined_after_events_do_not_spin(self):
        """Anything pipelined behind GET /events (which never completes) ends that
        connection; the gateway does not spin while it stays open (unpatched: 100% of a
        core for as long as the client kept it open)."""
        await asyncio.to_thread(self.bytes_pipelined_after_events_do_not_spin)

    def bytes_pipelined_after_events_do_not_spin(self):
        room = "t:h1piped"
        socks = []
        for _ in range(5):
            s = raw_tls(self.gw, timeout=5)
            s.sendall(sse_request(room, REQ["get"]))
            socks.append(s)
        time.sleep(0.3)
        used = cpu_over(self.gw.proc.pid, 2.0)
        self.assertLess(used, SPIN_LIMIT,
                        f"gateway used {used:.2f} CPU-s in 2 s with 5 pipelined SSE requests")
        for s in socks:
            data, eof = read_until(s, lambda d: False, 2)
            self.assertTrue(eof, f"the stream with bytes pipelined behind it stayed open"
                                 f" ({data[:100]!r})")
            s.close()
        self.gw.wait_subscribers(room, 0, timeout=3)
        self.assertEqual(http(self.gw, "GET", "/healthz", timeout=5).status, 200)


class PipelineSpinTest(GatewayTestCase):
    async def test_pipelined_requests(self):
        """Requests pipelined in one write are answered in order: all of them while
        the connection is kept alive, and if an answer closes the connection it says
        `connection: close`. The gateway never spins, during or after (unpatched lws
        spun forever, deaf to everything, on a request with a body behind a completed
        one, which is why HTTP/1.1 API answers closed their connection)."""
        await asyncio.to_thread(self.pipelined_requests)

    def pipelined_requests(self):
        cases = ("get+get+get", "get+post", "post+post", "post+get",
                 "rooms+post+get+post", "post+post+post+post")
        for case in cases:
            with self.subTest(case=case):
                names = case.split("+")
                s = raw_tls(self.gw, timeout=5)
                c0 = cpu_seconds(self.gw.proc.pid)
                send_all(s, b"".join(REQ[n] for n in names))
                data, eof = read_until(s, lambda d: len(statuses(d)) >= len(names), 5)
                used = cpu_seconds(self.gw.proc.pid) - c0
                s.close()
                got = statuses(data)
                self.assertTrue(got, f"no answer at all: {data[:200]!r}")
                self.assertEqual(got, [WANT[n] for n in names][:len(got)], data[:600])
                if len(got) < len(names):
                    # the last answer must have announced the close
                    last = data[data.rfind(b"HTTP/1."):]
                    self.assertIn(b"connection: close", last.lower(),
                                  f"{len(got)} of {len(names)} answered, then "
                                  f"{'EOF' if eof else 'nothing'}: {data[-300:]!r}")
                self.assertLess(used, 1.0, f"{used:.2f} CPU-s for {case}")
                time.sleep(0.2)
                used = cpu_over(self.gw.proc.pid, 0.5)
                self.assertLess(used, SPIN_LIMIT / 2,
                                f"{used:.2f} CPU-s in 0.5 s after {case} was closed")
                self.assertEqual(http(self.gw, "GET", "/healthz", timeout=5).status, 200)


class OversizedTest(GatewayTestCase):
    def ask(self, request):
        s = raw_tls(self.gw, timeout=5)
        send_all(s, request)
        data, _ = read_until(s, lambda d: False, 5)
        s.close()
        return data

    async def test_oversized_request_line_and_headers(self):
        """Larger than lws's 4096-byte header table: 414 while in the request line, 431
        in the headers, then the connection closes (unpatched: a bare close)."""
        await asyncio.to_thread(self.oversized_request_line_and_headers)

    def oversized_request_line_and_headers(self):
        many_args = b"&".join(b"a%d=1" % i for i in range(200))
        cases = {
            "uri 8 KB": (b"GET /healthz?" + b"a" * 8000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            "path 64 KB": (b"GET /" + b"a" * 65000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            "200 url args": (b"GET /healthz?" + many_args + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                             414),
            "header 8 KB": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000
                            + b"\r\n\r\n", 431),
            "headers 64 KB": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                              + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 60) for i in range(1000))
                              + b"\r\n", 431),
            "200 known headers": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                  + b"Accept: */*\r\n" * 200 + b"\r\n", 431),
        }
        for name, (request, want) in cases.items():
            with self.subTest(case=name):
                data = self.ask(request)
                self.assertEqual(statuses(data)[:1], [want], f"{name}: {data[:200]!r}")
        # just below the limit still works
        data = self.ask(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n")
        self.assertEqual(statuses(data)[:1], [200], data[:200])


class FramingTest(GatewayTestCase):
    def ask(self, request):
        s = raw_tls(self.gw, timeout=5)
        send_all(s, request)
        data, _ = read_until(s, lambda d: b"\r\n\r\n" in d and statuses(d), 5)
        s.close()
        return data

    async def test_ambiguous_body_length_400(self):
        """RFC 9112 6.3: these get 400 (unpatched: 201, the body framed by the first
        Content-Length lws saw), on the API, on /events and on static files alike."""
        await asyncio.to_thread(self.ambiguous_body_length_400)

    def ambiguous_body_length_400(self):
        def post(headers, body=BODY):
            return (b"POST /rooms/t:h1frame/messages HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Type: application/json\r\n" + headers + b"\r\n" + body)
        chunked = b"7\r\n" + BODY + b"\r\n0\r\n\r\n"
        cases = {
            "two different Content-Length": post(b"Content-Length: 7\r\nContent-Length: 8\r\n"),
            "Content-Length twice": post(b"Content-Length: 7\r\nContent-Length: 7\r\n"),
            "Content-Length list": post(b"Content-Length: 7, 7\r\n"),
            "Content-Length not a number": post(b"Content-Length: 7x\r\n"),
            "negative Content-Length": post(b"Content-Length: -7\r\n"),
            "chunked + Content-Length": post(b"Transfer-Encoding: chunked\r\n"
                                             b"Content-Length: 7\r\n", chunked),
            "xchunked + Content-Length": post(b"Transfer-Encoding: xchunked\r\n"
                                              b"Content-Length: 7\r\n"),
            "xchunked": post(b"Transfer-Encoding: xchunked\r\n"),
            "static GET, chunked + Content-Length": (
                b"GET / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Length: 5\r\n\r\n0\r\n\r\n"),
            "events, chunked + Content-Length": (
                b"GET /events?room=lobby HTTP/1.1\r\nHost: localhost\r\n"
                b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
        }
        for name, request in cases.items():
            with self.subTest(case=name):
                data = self.ask(request)
                self.assertEqual(statuses(data)[:1], [400], f"{name}: {data[:300]!r}")
        # the well-formed shapes are unchanged
        self.assertEqual(statuses(self.ask(post(b"Content-Length: 7\r\n")))[:1], [201])
        self.assertEqual(statuses(self.ask(post(b"Transfer-Encoding: chunked\r\n",
                                                chunked)))[:1], [411])


if __name__ == "__main__":
    run_tests()
