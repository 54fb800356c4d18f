"""Two certificates and more on one port (docs/CONFIG.md listen[].tls.sni): a client that
asks for a name one of the SNI certificates holds gets that one, over HTTP/1.1 and HTTP/2
(ALPN unchanged), wildcards included; any other client gets the listener's own. A
reload puts renewed SNI certificates in use for new handshakes; a pair that does not
match is refused and the running ones stay."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile

from harness import (Gateway, GatewayTestCase, client_ssl, make_cert, reload_gateway,
                     run_tests)


def cert_for(directory, name, sans):
    """A self-signed certificate for sans (subjectAltName DNS names); (cert, key)."""
    cert, key = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", f"/CN={name}",
         "-addext", "subjectAltName=" + ",".join(f"DNS:{s}" for s in sans),
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return cert, key


def der_sha(path):
    out = subprocess.run(["openssl", "x509", "-in", path, "-outform", "DER"],
                         capture_output=True, check=True, timeout=30).stdout
    return hashlib.sha256(out).hexdigest()


class SNITest(GatewayTestCase):
    @classmethod
    def setUpClass(cls):
        super(GatewayTestCase, cls).setUpClass()
        cls._failed = False
        d = cls.dir = tempfile.mkdtemp(prefix="rg-sni-")
        cls.default = make_cert(d)  # CN localhost, RSA
        os.makedirs(os.path.join(d, "a"))
        os.makedirs(os.path.join(d, "b"))
        cls.a = cert_for(os.path.join(d, "a"), "a", ["a.test"])
        cls.b = cert_for(os.path.join(d, "b"), "b", ["b.test", "*.b.test"])
        gw = Gateway()
        gw.config["listen"][0]["tls"] = {
            "cert": cls.default[0], "key": cls.default[1],
            "sni": [{"cert": cls.a[0], "key": cls.a[1]}, {"cert": cls.b[0], "key": cls.b[1]}]}
        with open(gw.config_path, "w") as f:
            json.dump(gw.config, f, indent=2)
        cls.gw = gw.start()

    def served(self, name, alpn=None):
        """The SHA-256 of the certificate the gateway serves a client asking for name
        (None: no SNI), and the ALPN protocol agreed."""
        ctx = client_ssl()
        if alpn:
            ctx.set_alpn_protocols(alpn)
        with socket.create_connection(("127.0.0.1", self.gw.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as s:
                return (hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest(),
                        s.selected_alpn_protocol())

    def curl(self, name, http2):
        """curl to https://NAME:PORT/healthz resolved to loopback: status and the
        served certificate's subject."""
        out = subprocess.run(
            ["curl", "-sk", "-v", "--http2" if http2 else "--http1.1", "--resolve",
             f"{name}:{self.gw.port}:127.0.0.1", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
             f"https://{name}:{self.gw.port}/healthz"],
            capture_output=True, text=True, timeout=30)
        subject = [l for l in out.stderr.splitlines() if "subject:" in l]
        return out.stdout, subject[0] if subject else ""

    async def test_chosen_by_name(self):
        default, a, b = (der_sha(c) for c in (self.default[0], self.a[0], self.b[0]))
        self.assertEqual(self.served("a.test")[0], a)
        self.assertEqual(self.served("b.test")[0], b)
        self.assertEqual(self.served("x.b.test")[0], b)   # the wildcard
        self.assertEqual(self.served("y.x.b.test")[0], default)  # one label only
        self.assertEqual(self.served("c.test")[0], default)
        self.assertEqual(self.served(None)[0], default)
        self.assertEqual(self.served("localhost")[0], default)
        # ALPN is the listener's: h2 still agreed under an SNI certificate
        self.assertEqual(self.served("b.test", ["h2", "http/1.1"]), (b, "h2"))
        for http2 in (False, True):
            status, subject = self.curl("a.test", http2)
            self.assertEqual(status, "200 2" if http2 else "200 1.1", status)
            self.assertIn("CN=a", subject)

    async def test_reload_renews_and_refuses(self):
        b_old = der_sha(self.b[0])
        other = tempfile.mkdtemp(prefix="rg-sni-new-")
        cert, key = cert_for(other, "b", ["b.test"])
        shutil.copy(cert, self.b[0])
        shutil.copy(key, self.b[1])
        log = await reload_gateway(self.gw, "in force")
        self.assertIn("3 certificate(s) reloaded", log)
        b_new = der_sha(cert)
        self.assertNotEqual(b_new, b_old)
        self.assertEqual(self.served("b.test")[0], b_new)
        # a key that is not its certificate's: the reload is refused, b stays
        _, wrong = cert_for(tempfile.mkdtemp(prefix="rg-sni-bad-"), "w", ["w.test"])
        shutil.copy(wrong, self.b[1])
        log = await reload_gateway(self.gw, "stays in force")
        self.assertIn("listen[0].tls.sni[1]", log)
        self.assertEqual(self.served("b.test")[0], b_new)
        shutil.copy(key, self.b[1])  # back, for a gateway that is stopped and checked


if __name__ == "__main__":
    run_tests()
