"""The TLS a scanner finds (issue 14): Debian's sslscan against listeners with an RSA and
an ECDSA certificate. TLS 1.2 and 1.3 only; every suite with forward secrecy and an AEAD
cipher (no CBC, RC4, 3DES, NULL, export or anonymous suites), whatever the system's
OpenSSL defaults allow; no renegotiation, no compression, not vulnerable to Heartbleed;
the certificate served is the one configured."""
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
import unittest  # noqa: E402

from harness import Gateway, free_port, run_tests  # noqa: E402

AEAD = ("GCM", "CHACHA20-POLY1305", "CHACHA20_POLY1305")
WEAK = ("CBC", "RC4", "DES", "NULL", "EXP", "ANON", "ADH", "AECDH", "MD5", "PSK", "SRP")
TLS12_SHA1_MAC = "-SHA"  # a TLS 1.2 suite named ...-SHA has a CBC cipher and a SHA-1 MAC


def ec_cert(directory):
    cert, key = os.path.join(directory, "ec.crt"), os.path.join(directory, "ec.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=ec.localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class TLSScan(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("sslscan"):
            raise unittest.SkipTest(
                "sslscan is missing: `scripts/deps.sh --test` installs it")
        cls.gw = Gateway()
        cert, key = ec_cert(cls.gw.dir)
        cls.ec_port = free_port()
        cls.gw.config["listen"].append({"port": cls.ec_port, "host": "127.0.0.1",
                                        "tls": {"cert": cert, "key": key}})
        with open(cls.gw.config_path, "w") as f:
            json.dump(cls.gw.config, f)
        cls.gw.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        assert rc == 0, f"exit {rc}\n{cls.gw.stderr()}"

    def scan(self, port):
        out = subprocess.run(["sslscan", "--no-colour", "--xml=-", f"127.0.0.1:{port}"],
                             capture_output=True, timeout=120, check=True).stdout
        return ET.fromstring(out[out.index(b"<?xml"):]).find("ssltest")

    def check(self, port, key_type):
        t = self.scan(port)
        self.assertIsNotNone(t, "sslscan found no TLS service")
        enabled = {p.get("version") for p in t.findall("protocol") if p.get("enabled") == "1"}
        self.assertEqual(enabled, {"1.2", "1.3"})
        ciphers = [(c.get("sslversion"), c.get("cipher")) for c in t.findall("cipher")]
        self.assertTrue(ciphers, "no suite accepted")
        for version, name in ciphers:
            with self.subTest(cipher=name):
                self.assertTrue(any(a in name for a in AEAD), f"{version} {name}: not AEAD")
                self.assertFalse(any(w in name.upper() for w in WEAK), f"{version} {name}")
                if version == "TLSv1.2":
                    self.assertTrue(name.startswith("ECDHE-"), f"{name}: no forward secrecy")
                    self.assertFalse(name.endswith(TLS12_SHA1_MAC), name)
        self.assertTrue(any(v == "TLSv1.3" for v, _ in ciphers))
        self.assertEqual(t.find("renegotiation").get("supported"), "0")
        for hb in t.findall("heartbleed"):
            self.assertEqual(hb.get("vulnerable"), "0", hb.attrib)
        comp = t.find("compression")
        if comp is not None:
            self.assertEqual(comp.get("supported"), "0")
        pk = t.find("certificates/certificate/pk")
        self.assertEqual(pk.get("type"), key_type)
        return ciphers

    def test_rsa_listener(self):
        ciphers = self.check(self.gw.port, "RSA")
        self.assertIn(("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"), ciphers)

    def test_ecdsa_listener(self):
        ciphers = self.check(self.ec_port, "EC")
        self.assertIn(("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"), ciphers)


if __name__ == "__main__":
    run_tests()
