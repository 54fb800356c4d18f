"""SIGHUP reloads the config without dropping a connection (docs/OPERATIONS.md,
"Reloading").

Under 1,000 connected WebSocket clients a reload changes a room's history and a limit,
adds a room and removes one (its members are told room_closed and left), with zero
disconnects; an invalid config, or one that changes what needs a restart, changes
nothing and the log says why in the same path-named lines as at start. A reload puts
the new certificate of a TLS listener in use for new handshakes while connections made
before keep going."""
import asyncio
import hashlib
import json
import shutil
import ssl
import tempfile
import time

from harness import (Gateway, GatewayTestCase, WSClient, http, make_cert, raw_tls,
                     reload_gateway, run_tests)

CLIENTS = 1000
GONE_MEMBERS = 10


def fingerprint(gw):
    with raw_tls(gw) as s:
        return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


class ReloadBase(GatewayTestCase):
    def write_config(self, change):
        """Writes the running config with change(config) applied; returns the log
        length, so that what the reload logs can be told from what came before."""
        cfg = json.loads(json.dumps(self.gw.config))
        change(cfg)
        with open(self.gw.config_path, "w") as f:
            json.dump(cfg, f, indent=2)
        return cfg

    async def burst(self, c, room, n):
        for i in range(n):
            await c.send({"type": "publish", "room": room, "data": i, "id": f"b{time.monotonic()}-{i}"})
        return [(await c.answer())["type"] for _ in range(n)]


class ReloadUnderLoadTest(ReloadBase):
    CONFIG = {
        "limits": {"max_connections_per_address": 0, "publish_rate_per_connection": 1000},
        "rooms": [{"name": "lobby", "history": 5}, {"name": "gone", "history": 5},
                  {"pattern": "t:*", "history": 50}],
    }

    async def connect_all(self):
        # asyncio's debug mode (the test case's default) times every callback: a
        # thousand TLS handshakes would take minutes
        asyncio.get_running_loop().set_debug(False)
        sem = asyncio.Semaphore(20)

        async def one(i):
            async with sem:
                c = await WSClient.connect(self.gw)
                await c.join("gone" if i < GONE_MEMBERS else "t:idle")
                return c
        clients = await asyncio.gather(*[one(i) for i in range(CLIENTS)])
        self._clients.extend(clients)
        return clients

    async def test_reload_under_load(self):
        gw = self.gw
        t0 = time.monotonic()
        clients = await self.connect_all()
        connect_s = time.monotonic() - t0
        for i in range(7):
            self.assertEqual(http(gw, "POST", "/rooms/lobby/messages", body=str(i)).status, 201)
        self.assertEqual(len(http(gw, "GET", "/rooms/lobby/messages").json()["messages"]), 5)
        probe = clients[-1]
        self.assertEqual(await self.burst(probe, "t:idle", 5), ["ack"] * 5)

        # the reload: lobby keeps 10, "gone" goes, "fresh" comes, 3 publishes a second
        def change(cfg):
            cfg["rooms"] = [{"name": "lobby", "history": 10}, {"name": "fresh"},
                            {"pattern": "t:*", "history": 50}]
            cfg["limits"]["publish_rate_per_connection"] = 3
        self.write_config(change)
        log = await reload_gateway(self.gw, "in force")
        self.assertIn("reload: reading", log)
        self.assertIn("1 room(s) closed, 1 made", log)
        for c in clients[:GONE_MEMBERS]:
            ans = await c.answer()
            self.assertEqual((ans["type"], ans["code"], ans["room"]),
                             ("error", "room_closed", "gone"), ans)
            ans = await c.request("join", room="gone")
            self.assertEqual(ans.get("code"), "unknown_room", ans)
        names = {r["name"] for r in gw.rooms()["rooms"]}
        self.assertIn("fresh", names)
        self.assertNotIn("gone", names)
        for i in range(7, 14):
            self.assertEqual(http(gw, "POST", "/rooms/lobby/messages", body=str(i)).status, 201)
        got = [m["data"] for m in http(gw, "GET", "/rooms/lobby/messages").json()["messages"]]
        self.assertEqual(got, list(range(4, 14)))  # 10 now: the new history
        await asyncio.sleep(1.1)  # a full bucket, at the new rate
        self.assertEqual(await self.burst(probe, "t:idle", 5),
                         ["ack"] * 3 + ["error"] * 2)

        # an invalid config changes nothing, and says why as at start
        self.write_config(lambda cfg: cfg["limits"].update(bogus=1))
        log = await reload_gateway(self.gw, "the running one stays in force")
        self.assertIn(f"{gw.config_path}: limits.bogus: unknown key", log)
        self.write_config(lambda cfg: cfg["listen"][0].update(port=cfg["listen"][0]["port"] + 1))
        log = await reload_gateway(self.gw, "needs a restart")
        self.assertIn("listen (a port or address) changed", log)
        with open(gw.config_path, "w") as f:
            f.write("{ not json")
        await reload_gateway(self.gw, "the running one stays in force")
        self.assertEqual(len(http(gw, "GET", "/rooms/lobby/messages").json()["messages"]), 10)
        await asyncio.sleep(1.1)
        self.assertEqual(await self.burst(probe, "t:idle", 4), ["ack"] * 3 + ["error"])

        # zero disconnects: every client is open and answers
        closed = [i for i, c in enumerate(clients) if c.ws.closed]
        self.assertEqual(closed, [])
        pongs = await asyncio.gather(*[c.request("ping") for c in clients])
        self.assertEqual({p["type"] for p in pongs}, {"pong"})
        print(f"\n{CLIENTS} clients connected in {connect_s:.1f} s; a reload and "
              f"three refused ones, none disconnected", flush=True)


class CertificateReloadTest(ReloadBase):
    @classmethod
    def setUpClass(cls):
        # a certificate of its own, which the test replaces (the shared one is every
        # other test's)
        super(GatewayTestCase, cls).setUpClass()
        cls._failed = False
        gw = Gateway()
        cert, key = make_cert(tempfile.mkdtemp(prefix="rg-reload-"))
        gw.config["listen"][0]["tls"] = {"cert": cert, "key": key}
        with open(gw.config_path, "w") as f:
            json.dump(gw.config, f, indent=2)
        cls.gw = gw.start()

    async def test_new_certificate_for_new_handshakes(self):
        gw = self.gw
        before = fingerprint(gw)
        c = await self.ws()
        await c.join("lobby")
        # certbot's way: new files at the same paths
        other = tempfile.mkdtemp(prefix="rg-reload-new-")
        cert, key = make_cert(other)
        tls = gw.config["listen"][0]["tls"]
        shutil.copy(cert, tls["cert"])
        shutil.copy(key, tls["key"])
        log = await reload_gateway(self.gw, "in force")
        self.assertIn("1 certificate(s) reloaded", log)
        after = fingerprint(gw)
        self.assertNotEqual(after, before)
        with open(cert, "rb") as f:
            want = hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read().decode())).hexdigest()
        self.assertEqual(after, want)
        await c.ping()  # made before: still going
        # a key that is not the certificate's: refused, the running pair stays
        third = tempfile.mkdtemp(prefix="rg-reload-bad-")
        _, wrong = make_cert(third)
        shutil.copy(wrong, tls["key"])
        log = await reload_gateway(self.gw, "stays in force")
        self.assertIn("is not the key of the certificate", log)
        self.assertEqual(fingerprint(gw), after)
        await c.ping()


if __name__ == "__main__":
    run_tests()
