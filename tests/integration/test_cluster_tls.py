"""Gateways reaching Redis over TLS (cluster.redis.tls; docs/OPERATIONS.md, "Several
gateways"): a real redis-server with a TLS port that asks for client certificates,
two gateways sharing a room through it, and the ways it must refuse: a CA that did not
sign Redis's certificate, a server name the certificate does not carry, no client
certificate. A refused node stays `unavailable`, saying why once; Redis restarted, the
others carry on."""
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import cluster_case
from cluster_case import PREFIX, ClusterCase, Redis, publish, wait_ready
from harness import Gateway, free_port, stop_and_check


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def make_pki(d):
    """A CA, Redis's certificate (127.0.0.1, localhost) and a client certificate, both
    signed by it; and a second CA that signed nothing here. Their paths by name."""
    p = {n: os.path.join(d, n) for n in
         ("ca.crt", "ca.key", "other-ca.crt", "other-ca.key", "redis.crt", "redis.key",
          "redis.csr", "client.crt", "client.key", "client.csr", "ext")}
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "2", "-subj", f"/CN=roomgate test {ca}",
                "-keyout", p[f"{ca}.key"], "-out", p[f"{ca}.crt"])
    with open(p["ext"], "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who in ("redis", "client"):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-subj", f"/CN={who}", "-keyout", p[f"{who}.key"], "-out", p[f"{who}.csr"])
        openssl("x509", "-req", "-in", p[f"{who}.csr"], "-CA", p["ca.crt"], "-CAkey",
                p["ca.key"], "-CAcreateserial", "-days", "2", "-extfile", p["ext"],
                "-out", p[f"{who}.crt"])
    return p


class ClusterTLSTest(ClusterCase):
    NODES = 2

    @classmethod
    def make_redis(cls):
        cls.pki_dir = tempfile.mkdtemp(prefix="rg-pki-")
        cls.pki = make_pki(cls.pki_dir)
        cls.tls_port = free_port()
        return Redis([
            "--tls-port", str(cls.tls_port), "--tls-cert-file", cls.pki["redis.crt"],
            "--tls-key-file", cls.pki["redis.key"], "--tls-ca-cert-file", cls.pki["ca.crt"],
            "--tls-auth-clients", "yes"]).start()

    @classmethod
    def redis_conf(cls, **tls):
        """Over TLS; tls: keys changed from the good ones (None: left out)."""
        t = {"ca_file": cls.pki["ca.crt"], "cert_file": cls.pki["client.crt"],
             "key_file": cls.pki["client.key"]}
        t.update(tls)
        return {"address": f"127.0.0.1:{cls.tls_port}", "key_prefix": PREFIX,
                "tls": {k: v for k, v in t.items() if v is not None}}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.pki_dir, ignore_errors=True)

    async def test_rooms_shared_over_tls(self):
        """A message published on one node reaches a subscriber on the other, through
        Redis over TLS; both say so at start; Redis restarted, they carry on."""
        a, b = self.nodes
        for gw in self.nodes:
            self.assertIn(f"redis 127.0.0.1:{self.tls_port} (TLS): sharing rooms",
                          gw.stderr())
        sub = await self.ws(b)
        await sub.join("t:tls")
        self.assertEqual(publish(a, "t:tls", {"k": 1}).status, 201)
        self.assertEqual((await sub.message())["data"], {"k": 1})
        self.redis.stop()
        for gw in self.nodes:
            wait_ready(gw, "unavailable")
        self.redis.start()
        for gw in self.nodes:
            wait_ready(gw, "ready")
        self.assertEqual(publish(b, "t:tls", {"k": 2}).status, 201)
        self.assertEqual((await sub.message())["data"], {"k": 2})
        await sub.assert_quiet()

    def against_peer(self, answer, want_said, connections):
        """A gateway pointed at a peer that takes each connection and answers it with
        answer (bytes; b"": nothing, and the connection stays open): the node stays
        unavailable, says want_said, and tries again (connections accepted in all)."""
        lsock = socket.create_server(("127.0.0.1", 0))
        accepted = []

        def serve():
            while True:
                try:
                    c = lsock.accept()[0]
                except OSError:
                    return
                accepted.append(c)
                if answer:
                    c.sendall(answer)
                    c.close()

        threading.Thread(target=serve, daemon=True).start()
        conf = dict(self.conf, cluster={"redis": dict(
            self.redis_conf(), address=f"127.0.0.1:{lsock.getsockname()[1]}")})
        gw = Gateway(conf).start()
        try:
            deadline = time.monotonic() + 15
            while len(accepted) < connections and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertGreaterEqual(len(accepted), connections, "tried again")
            self.assertIn(want_said, gw.stderr())
            self.assertLessEqual(gw.stderr().count(want_said), 1, "said once")
            wait_ready(gw, "unavailable", timeout=1)
        finally:
            self.assertEqual(stop_and_check(gw), [])
            lsock.close()
            for c in accepted:
                c.close()

    async def test_silent_peer(self):
        """A peer that takes the connection and never answers (no TLS handshake) is
        given up after 5 s, said so, and tried again."""
        self.against_peer(b"", "no answer for 5 s while connecting", 3)

    async def test_peer_that_is_not_tls(self):
        """A peer that answers the TLS handshake with something else (plain Redis, an
        HTTP server): refused, said once, tried again with backoff."""
        self.against_peer(b"-ERR unknown command\r\nHTTP/1.1 400 Bad Request\r\n\r\n",
                          "over TLS: the TLS handshake failed: ", 4)

    async def test_refused(self):
        """Each way Redis's side cannot be trusted, or will not trust this node, keeps
        it `unavailable` (never publishing in the clear), logged once with the reason;
        a clean stop still exits 0."""
        cases = [
            ("a CA that did not sign Redis's certificate",
             {"ca_file": self.pki["other-ca.crt"]}, "over TLS: the TLS handshake failed: "),
            ("a name the certificate does not carry",
             {"server_name": "redis.example"},
             "over TLS: the TLS handshake failed: hostname mismatch"),
            ("no client certificate", {"cert_file": None, "key_file": None},
             "certificate required"),
        ]
        for what, tls, said in cases:
            with self.subTest(what):
                gw = Gateway(dict(self.conf, cluster={"redis": self.redis_conf(**tls)}))
                gw.start()
                try:
                    time.sleep(1.5)
                    wait_ready(gw, "unavailable", timeout=5)
                    r = publish(gw, "t:refused", {"k": 1})
                    self.assertEqual(r.status, 503, r)
                    log = gw.stderr()
                    self.assertIn(said, log)
                    self.assertLessEqual(log.count("over TLS: "), 1, "said once, not per retry")
                finally:
                    self.assertEqual(stop_and_check(gw), [])


if __name__ == "__main__":
    cluster_case.main("test_cluster_tls")
