"""Connection limits (docs/CONFIG.md limits.max_connections and
limits.max_connections_per_address): a connection past either is closed as it is
accepted, unanswered, and logged with its address and the limit; the count follows the
connections that end, whatever they carried (TLS, HTTP/1.1, WebSocket, HTTP/2 with its
streams counting as one connection)."""
import socket
import subprocess
import time

from harness import GatewayTestCase, http, raw_tls, run_tests

PER_ADDRESS = 4


def refused(sock, timeout=3):
    """True when the gateway closed sock without a byte (a refused connection)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def tcp(gw):
    return socket.create_connection(("127.0.0.1", gw.port), timeout=5)


class PerAddressTest(GatewayTestCase):
    CONFIG = {"limits": {"max_connections_per_address": PER_ADDRESS}}

    def wait_count_back(self, timeout=5):
        """Until a connection is admitted again (the earlier ones released)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if http(self.gw, "GET", "/healthz", timeout=3).status == 200:
                return
            time.sleep(0.1)
        self.fail("connections were not released")

    async def test_past_the_limit_is_closed_at_accept(self):
        held = [tcp(self.gw) for _ in range(PER_ADDRESS)]
        try:
            extra = tcp(self.gw)
            self.assertTrue(refused(extra), "the connection past the limit was kept")
            extra.close()
            for s in held:
                self.assertFalse(refused(s, timeout=0.3), "a held connection was closed")
            self.assertIn("limits: refused a connection from ::ffff:127.0.0.1: "
                          "limits.max_connections_per_address", self.gw.stderr())
        finally:
            for s in held:
                s.close()
        # every one released: a full set fits again, and answers
        self.wait_count_back()
        again = [raw_tls(self.gw) for _ in range(PER_ADDRESS)]
        for s in again:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(s.recv(64).startswith(b"HTTP/1.1 200"))
            s.close()

    async def test_every_kind_of_connection_is_counted_and_released(self):
        for round_ in range(3):
            ws = [await self.ws() for _ in range(2)]
            sse = self.sse("room=lobby", http2=True)  # one connection, its stream inside
            sse.wait_started()
            s = raw_tls(self.gw)  # the fourth: TLS, no request yet
            extra = tcp(self.gw)
            self.assertTrue(refused(extra), f"round {round_}: past the limit, kept")
            extra.close()
            s.close()
            sse.close_sync()
            for c in ws:
                await c.close()
            self._clients.clear()
            self.wait_count_back()

    async def test_http2_streams_are_one_connection(self):
        held = [tcp(self.gw) for _ in range(PER_ADDRESS - 1)]
        try:
            # the last connection allowed carries five streams at once (curl --parallel
            # waits for the first connection and multiplexes the rest onto it)
            out = subprocess.run(
                ["curl", "-sk", "--http2", "--parallel"]
                + [f"{self.gw.base}/healthz"] * 5, capture_output=True, timeout=30).stdout
            self.assertEqual(out.count(b'"status":"ok"'), 5, out)
        finally:
            for s in held:
                s.close()


class TotalTest(GatewayTestCase):
    CONFIG = {"limits": {"max_connections": 3, "max_connections_per_address": 0}}

    async def test_total(self):
        held = [tcp(self.gw) for _ in range(3)]
        try:
            extra = tcp(self.gw)
            self.assertTrue(refused(extra))
            extra.close()
            self.assertIn("limits.max_connections reached", self.gw.stderr())
        finally:
            for s in held:
                s.close()
        deadline = time.monotonic() + 5
        while http(self.gw, "GET", "/healthz", timeout=3).status != 200:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)


if __name__ == "__main__":
    run_tests()
