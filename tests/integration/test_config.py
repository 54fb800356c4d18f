"""Config validation (docs/CONFIG.md) and the command line."""
import copy
import json
import os
import subprocess
import unittest

from harness import BIN, REPO, SANITIZER_MARKS, Gateway, run_tests

DELETE = object()


def changed(cfg, path, value):
    """Copy of cfg with the value at path (list of keys/indexes) set or deleted."""
    out = copy.deepcopy(cfg)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


class ConfigTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.valid = Gateway()  # not started: a valid config, cert and web root on disk
        cls.dir = cls.valid.dir

    def run_bin(self, *args, cwd=None, timeout=10):
        p = subprocess.run([BIN, *args], cwd=cwd or self.dir, capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        out = p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, out, f"sanitizer report for {args}:\n{out}")
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode(
            "utf-8", "replace")

    def write(self, name, content):
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(content if isinstance(content, bytes) else content.encode())

    def check_rejected(self, content, *fragments, name="bad.json"):
        """--check-config on content exits 1 with one stderr line naming the file
        and each of the fragments (e.g. a JSON path)."""
        if not isinstance(content, (str, bytes)):
            content = json.dumps(content, indent=2)
        self.write(name, content)
        rc, _, err = self.run_bin("--check-config", "--config", name)
        self.assertEqual(rc, 1, f"exit code; stderr:\n{err}")
        for frag in fragments or ("",):
            self.assertTrue(any(name in line and frag in line for line in err.splitlines()),
                            f"no stderr line with {name!r} and {frag!r}:\n{err}")

    def test_default_config_valid(self):
        # what scripts/run.sh makes before it starts the gateway (each keeps what exists)
        for script in ("dev-cert.sh", "dev-auth.sh"):
            subprocess.run([os.path.join(REPO, "scripts", script), "certs"], cwd=REPO,
                           check=True, timeout=60, capture_output=True)
        for args in (["--check-config"], ["--check-config", "--config", "config/roomgate.json"],
                     ["--check-config", "--config", "config/cluster.json"]):
            with self.subTest(args=args):
                rc, _, err = self.run_bin(*args, cwd=REPO)
                self.assertEqual(rc, 0, err)

    def test_generated_config_valid(self):
        rc, _, err = self.run_bin("--check-config", "--config", self.valid.config_path)
        self.assertEqual(rc, 0, err)

    def test_not_json(self):
        self.check_rejected('{\n  "listen": [\n    {"port": 1,}\n  ]\n}\n', "line 3", "column")
        self.check_rejected("", name="empty.json")
        self.check_rejected('{"listen": [], "rooms": []} trailing')
        self.check_rejected("[" * 100000)
        self.check_rejected(b"\x00\xff\xfe garbage \x01")
        self.check_rejected("[]")

    def test_missing_file(self):
        rc, _, err = self.run_bin("--check-config", "--config", "missing.json")
        self.assertEqual(rc, 1, err)
        self.assertIn("missing.json", err)

    def test_errors_name_json_path(self):
        cfg = self.valid.config
        cases = [
            (["listn"], 1, "listn"),
            (["limits", "max_mesage_bytes"], 10, "limits.max_mesage_bytes"),
            (["rooms", 1, "history"], "many", "rooms[1].history"),
            (["rooms", 1, "history"], 0, "rooms[1].history"),
            (["listen", 0, "port"], "8443", "listen[0].port"),
            (["listen", 0, "port"], 70000, "listen[0].port"),
            (["listen", 0, "host"], "not-an-address", "listen[0].host"),
            (["listen", 0, "tls", "cert"], "/nonexistent/dev.crt", "listen[0].tls.cert"),
            (["listen", 0, "tls", "key"], "/nonexistent/dev.key", "listen[0].tls.key"),
            (["listen", 0, "tls", "key"], DELETE, "listen[0].tls.key"),
            (["listen"], [], "listen"),
            (["listen"], DELETE, "listen"),
            (["rooms"], DELETE, "rooms"),
            (["rooms", 0, "name"], "bad name", "rooms[0].name"),
            (["rooms", 2, "pattern"], "dm", "rooms[2].pattern"),
            (["rooms", 1, "publish"], "everyone", "rooms[1].publish"),
            (["rooms", 0, "idle_seconds"], 10, "rooms[0].idle_seconds"),
            (["rooms", 1, "name"], "lobby", "rooms[1]"),
            (["sse", "keepalive_seconds"], 0, "sse.keepalive_seconds"),
            (["ws", "ping_seconds"], 1.5, "ws.ping_seconds"),
            (["limits", "max_message_bytes"], 15, "limits.max_message_bytes"),
            (["http", "web_root"], "/nonexistent/web", "http.web_root"),
            (["http"], "web", "http"),
        ]
        for path, value, json_path in cases:
            with self.subTest(json_path=json_path, value=value):
                self.check_rejected(changed(cfg, path, value), json_path)
        two_ports = changed(cfg, ["listen"], cfg["listen"] * 2)
        self.check_rejected(two_ports, "listen[1].port")

    def test_every_error_reported(self):
        cfg = changed(self.valid.config, ["rooms", 1, "history"], "many")
        cfg = changed(cfg, ["limits", "max_mesage_bytes"], 10)
        self.check_rejected(cfg, "rooms[1].history")
        self.check_rejected(cfg, "limits.max_mesage_bytes")

    def test_start_with_bad_config_exits_1(self):
        bad = changed(self.valid.config, ["listen", 0, "tls", "cert"], "/nonexistent/x.crt")
        self.write("bad_start.json", json.dumps(bad))
        rc, _, err = self.run_bin("--config", "bad_start.json", timeout=5)
        self.assertEqual(rc, 1, err)
        self.assertIn("listen[0].tls.cert", err)
        self.write("bad_start2.json", "{")
        rc, _, err = self.run_bin("--config", "bad_start2.json", timeout=5)
        self.assertEqual(rc, 1, err)

    def test_tls_files_checked_as_start_loads_them(self):
        """--check-config fails exactly when start would: a key that is not the
        certificate's, or one under a passphrase, fails both the same way; what start
        accepts but clients may not (an incomplete chain, an expired certificate) is a
        warning, and the check passes."""
        tls = os.path.join(REPO, "tests", "unit", "gateway", "tls")
        cases = [("unit.crt", "other.key", 1, "is not the key of the certificate"),
                 ("unit.crt", "encrypted.key", 1, "under a passphrase"),
                 ("leaf.crt", "leaf.key", 0, "warning: the chain is incomplete"),
                 ("expired.crt", "unit.key", 0, "warning: \"expired.test\" has expired")]
        for cert, key, rc_want, frag in cases:
            with self.subTest(cert=cert, key=key):
                cfg = changed(self.valid.config, ["listen", 0, "tls"],
                              {"cert": os.path.join(tls, cert), "key": os.path.join(tls, key)})
                self.write("tls.json", json.dumps(cfg))
                rc, out, err = self.run_bin("--check-config", "--config", "tls.json")
                self.assertEqual(rc, rc_want, err)
                line = next((x for x in err.splitlines()
                             if x.startswith("tls.json: listen[0].tls: ")), "")
                self.assertIn(frag, line, err)
                if rc_want:  # start refuses it the same way, before lws is asked
                    rc, _, err2 = self.run_bin("--config", "tls.json")
                    self.assertEqual(rc, 1, err2)
                    self.assertIn(frag, err2)
                else:
                    self.assertEqual(out, "tls.json: ok\n")

    def test_port_in_use_said_in_words(self):
        gw = Gateway().start()
        try:
            rc, _, err = self.run_bin("--config", gw.config_path, cwd=gw.dir)
        finally:
            gw.stop()
        self.assertEqual(rc, 1, err)
        self.assertIn(f"cannot listen on 127.0.0.1:{gw.port}: port {gw.port} is already in use",
                      err)
        self.assertNotIn("ERROR on binding", err)

    def test_version_and_help(self):
        rc, out, err = self.run_bin("--version")
        self.assertEqual(rc, 0, err)
        self.assertTrue((out + err).strip(), "--version prints something")
        rc, out, err = self.run_bin("--help")
        self.assertEqual(rc, 0, err)
        self.assertIn("--config", out + err)
        self.assertIn("--check-config", out + err)

    def test_config_keys_is_the_documented_table(self):
        """--config-keys prints docs/CONFIG.md's key table, byte for byte."""
        rc, out, err = self.run_bin("--config-keys")
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith("| key | type, range | default | meaning |\n"), out[:200])
        with open(os.path.join(REPO, "docs", "CONFIG.md"), encoding="utf-8") as f:
            doc = f.read()
        self.assertIn(out, doc, "docs/CONFIG.md lacks the table --config-keys prints")
        self.assertIn("| `limits.max_pending_bytes` |", out)

    def test_bad_command_line(self):
        for args in (["--bogus"], ["--config"], ["--check-config", "--config"]):
            with self.subTest(args=args):
                rc, _, err = self.run_bin(*args, timeout=5)
                self.assertNotEqual(rc, 0, f"{args} exit code; stderr:\n{err}")


if __name__ == "__main__":
    run_tests()
