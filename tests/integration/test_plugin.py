"""The chat protocol as a libwebsockets plugin (issue 11): tests/plugin/host.c, an lws
server with no roomgate code linked in, loads plugins/libprotocol_roomgate_chat.so with
lws_plugins_init() and serves it on a plain vhost with the per-vhost option "config".
Join, publish, history and presence work against it over WebSocket as against
roomgate; with a config it cannot use, the plugin says why in the host's log and
serves nothing."""
import asyncio
import json
import os
import subprocess
import tempfile
import time

import websockets

from harness import SUBPROTOCOL, die_with_parent, free_port, run_tests, without_epoch

import unittest

HOST = os.environ.get("RG_PLUGIN_HOST", "")
PLUGIN_DIR = os.environ.get("RG_PLUGIN_DIR", "")


class PluginHost:
    def __init__(self, config):
        self.dir = tempfile.mkdtemp(prefix="rg-plugin-")
        self.port = free_port()
        self.config = os.path.join(self.dir, "roomgate.json")
        with open(self.config, "w") as f:
            json.dump(config, f)
        self.log = open(os.path.join(self.dir, "host.log"), "wb")
        self.proc = subprocess.Popen([HOST, str(self.port), PLUGIN_DIR, self.config],
                                     stdout=self.log, stderr=self.log,
                                     preexec_fn=die_with_parent())

    def text(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_listening(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "serving" in self.text():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"plugin host exited: {self.text()}")
            time.sleep(0.05)
        raise AssertionError(f"plugin host not serving: {self.text()}")

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(10)
        self.log.close()
        return rc


@unittest.skipUnless(HOST and PLUGIN_DIR, "RG_PLUGIN_HOST / RG_PLUGIN_DIR not set (ctest sets them)")
class PluginTest(unittest.IsolatedAsyncioTestCase):
    def setUp(self):
        config = {"listen": [{"port": 1}], "http": {"web_root": tempfile.gettempdir()},
                  "rooms": [{"name": "lobby", "history": 10, "presence": True},
                            {"pattern": "dm:*", "history": 5}]}
        self.host = PluginHost(config)
        self.host.wait_listening()

    def tearDown(self):
        rc = self.host.stop()
        text = self.host.text()
        self.assertEqual(rc, 0, text)
        for mark in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            self.assertNotIn(mark, text)

    async def connect(self):
        return await websockets.connect(f"ws://127.0.0.1:{self.host.port}/ws",
                                        subprotocols=[SUBPROTOCOL], open_timeout=5)

    async def ask(self, ws, **msg):
        await ws.send(json.dumps(msg))
        return json.loads(await asyncio.wait_for(ws.recv(), 5))

    async def test_join_publish_history_presence(self):
        a, b = await self.connect(), await self.connect()
        try:
            joined = await self.ask(a, type="join", room="lobby", id="1")
            self.assertEqual(without_epoch(joined),
                             {"type": "joined", "room": "lobby", "seq": 0, "id": "1"})
            self.assertEqual((await self.ask(b, type="join", room="lobby", name="bob"))["type"],
                             "joined")
            self.assertEqual(json.loads(await asyncio.wait_for(a.recv(), 5)),
                             {"type": "presence", "room": "lobby", "event": "join",
                              "user": "bob"})
            self.assertEqual(await self.ask(b, type="publish", room="lobby", data={"hi": 1}),
                             {"type": "ack", "room": "lobby", "seq": 1})
            m = json.loads(await asyncio.wait_for(a.recv(), 5))
            self.assertEqual((m["type"], m["seq"], m["data"]), ("message", 1, {"hi": 1}))
            h = await self.ask(a, type="history", room="lobby")
            self.assertEqual([x["data"] for x in h["messages"]], [{"hi": 1}])
            p = await self.ask(a, type="presence", room="lobby")
            self.assertEqual(sorted(p["users"])[0], "bob")
            # pattern rooms and the protocol's errors come along
            self.assertEqual((await self.ask(a, type="join", room="dm:x"))["type"], "joined")
            self.assertEqual((await self.ask(a, type="join", room="nope"))["code"],
                             "unknown_room")
        finally:
            await a.close()
            await b.close()


@unittest.skipUnless(HOST and PLUGIN_DIR, "RG_PLUGIN_HOST / RG_PLUGIN_DIR not set (ctest sets them)")
class PluginBadConfigTest(unittest.IsolatedAsyncioTestCase):
    async def test_bad_config_is_reported_and_nothing_served(self):
        host = PluginHost({"listen": [{"port": 1}], "rooms": [{"name": "x", "history": 0}]})
        try:
            host.wait_listening()
            self.assertIn("rooms[0].history: expected an integer 1..1000000", host.text())
            with self.assertRaises(Exception):
                ws = await websockets.connect(f"ws://127.0.0.1:{host.port}/ws",
                                              subprotocols=[SUBPROTOCOL], open_timeout=5)
                await ws.close()
        finally:
            self.assertEqual(host.stop(), 0, host.text())


if __name__ == "__main__":
    run_tests()
