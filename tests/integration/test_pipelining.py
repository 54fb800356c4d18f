"""HTTP/1.1 pipelining: requests sent in one write are answered in order on a connection
that stays open (docs/PROTOCOL.md). Unpatched libwebsockets 4.1.6 spun forever on a
request pipelined behind a completed one, which is why API answers used to close their
connection; patches/lws/0203 and 0204 fix that at the root. A request pipelined behind
a static file is the one case lws still answers 403 and closes (its file server writes
its headers over the unparsed request): the gateway keeps serving everyone."""
import os
import re
import socket
import time
import unittest

from harness import GatewayTestCase, http, raw_tls

BODY = b'{"t":1}'
REQUESTS = {
    "get": b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "post": (b"POST /rooms/t:pipe/messages HTTP/1.1\r\nHost: localhost\r\n"
             b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY),
    "static": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
}


def read_answers(s, want, timeout=5):
    """Reads until `want` status lines arrived, EOF or timeout: (data, eof)."""
    s.settimeout(0.2)
    data, deadline = b"", time.monotonic() + timeout
    while data.count(b"HTTP/1.1 ") < want and time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (socket.timeout, TimeoutError):
            continue
        if not chunk:
            return data, True
        data += chunk
    return data, False


class PipeliningTest(GatewayTestCase):
    async def test_pipelined_pairs(self):
        for case in ("get+post", "post+post", "get+get", "post+get", "static+post"):
            with self.subTest(case=case):
                s = raw_tls(self.gw, timeout=5)
                s.sendall(b"".join(REQUESTS[p] for p in case.split("+")))
                data, eof = read_answers(s, 2)
                if case.startswith("static"):
                    self.assertGreaterEqual(data.count(b"HTTP/1.1 "), 1, data[:300])
                else:
                    self.assertEqual(data.count(b"HTTP/1.1 "), 2, data[:600])
                    self.assertNotIn(b"connection: close", data.lower())
                    # still open: a third request on the same connection
                    s.sendall(REQUESTS["get"])
                    more, _ = read_answers(s, 1)
                    self.assertIn(b"HTTP/1.1 200", more, more[:300])
                s.close()
                r = http(self.gw, "GET", "/healthz", timeout=5)
                self.assertEqual((r.status, r.json()), (200, {"status": "ok"}), r)

    async def test_deep_pipeline_in_order_then_idle(self):
        """200 publishes in one write: 200 answers in order (seqs 1..200, each status
        line with its reason phrase), the connection kept, and the gateway idle after
        (lws 4.1.6 unpatched spun at 100% CPU on a pipelined remainder)."""
        n = 200
        one = (b"POST /rooms/t:deep/messages HTTP/1.1\r\nHost: localhost\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)
               + BODY)
        s = raw_tls(self.gw, timeout=10)
        s.sendall(one * n)
        data, eof = read_answers(s, n, timeout=20)
        self.assertFalse(eof, "the connection was closed")
        self.assertEqual(data.count(b"HTTP/1.1 201 Created\r\n"), n, data[-300:])
        seqs = [int(x) for x in re.findall(rb'"seq":(\d+)', data)]
        self.assertEqual(seqs, list(range(1, n + 1)))
        before = cpu_seconds(self.gw.proc.pid)
        time.sleep(1.0)
        used = cpu_seconds(self.gw.proc.pid) - before
        self.assertLess(used, 0.1, f"the gateway used {used:.2f} s of CPU in 1 s idle")
        s.sendall(REQUESTS["get"])
        more, _ = read_answers(s, 1)
        self.assertIn(b"HTTP/1.1 200 OK", more, more[:300])
        s.close()


def cpu_seconds(pid):
    """User + system CPU time of process pid so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    unittest.main()
