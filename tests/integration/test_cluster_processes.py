"""Several gateway processes on one host (docs/OPERATIONS.md, "Several gateways"):
two on one port with listen[].reuse_port, and scripts/cluster.sh running N of one
config."""
import os
import signal
import subprocess
import sys
import time
import types

import cluster_case
from cluster_case import ClusterCase, publish, wait_ready
from harness import (BIN, REPO, Gateway, deep_merge, die_with_parent, free_port, shared_cert,
                     stop_and_check)



class ClusterProcessesTest(ClusterCase):
    async def test_processes_sharing_a_port(self):
        """Two gateways on one port (listen[].reuse_port): the kernel spreads the
        connections between them, and a message published to the port reaches every
        subscriber whichever process holds it. A third process on the port without
        reuse_port is refused at start, saying why. (Each process also has a port of
        its own, to ask it and no other whether it is ready.)"""
        port = free_port()
        cert, key = shared_cert()
        tls = {"cert": cert, "key": key}
        shared = types.SimpleNamespace(port=port, ws_url=f"wss://127.0.0.1:{port}/ws",
                                       base=f"https://127.0.0.1:{port}")

        def on_port(share):
            own = free_port()
            gw = Gateway(deep_merge(self.conf, {"listen": [
                {"port": own, "host": "127.0.0.1", "tls": tls},
                {"port": port, "host": "127.0.0.1", "reuse_port": share, "tls": tls}]}))
            gw.port = own
            return gw

        pair = [on_port(True), on_port(True)]
        try:
            for gw in pair:
                gw.start()
                wait_ready(gw, "ready")
                self.assertIn(f"listening on 127.0.0.1:{port} (TLS: https, wss; HTTP/2 by "
                              "ALPN), shared with other processes (reuse_port)", gw.stderr())
            room = "t:shared"
            subs = []
            for _ in range(40):
                c = await self.ws(shared)
                await c.join(room)
                subs.append(c)
            self.assertEqual(publish(shared, room, {"k": 1}).status, 201)
            for c in subs:
                self.assertEqual((await c.message())["data"], {"k": 1})
            for c in subs:
                await c.close()
            self.clients = []
            # each process logs the WebSocket connections it served as they close
            deadline = time.monotonic() + 5
            while True:
                served = [gw.stderr().count("access ws ") for gw in pair]
                if sum(served) >= 40 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            print(f"    40 WebSocket connections to one port: {served[0]} and {served[1]} "
                  "served by the two processes", file=sys.stderr)
            self.assertEqual(sum(served), 40, served)
            self.assertTrue(all(served), f"both processes take connections: {served}")

            alone = on_port(False)
            with self.assertRaises(RuntimeError) as cm:
                alone.start(timeout=5)
            self.assertIn(f"cannot listen on 127.0.0.1:{port}: port {port} is already in use",
                          str(cm.exception))
            alone.stop()
        finally:
            for gw in pair:
                self.assertEqual(stop_and_check(gw), [])

    async def test_cluster_script(self):
        """scripts/cluster.sh runs N processes of one config (reuse_port, cluster.redis)
        on this host: both serve the port; SIGTERM stops them all, status 0. One that
        dies stops the other, and the script's status says so."""
        port = free_port()
        cert, key = shared_cert()
        gw = Gateway(deep_merge(self.conf, {"listen": [
            {"port": port, "host": "127.0.0.1", "reuse_port": True,
             "tls": {"cert": cert, "key": key}}]}))
        gw.port = port
        log = os.path.join(gw.dir, "cluster.log")

        def text():
            with open(log) as f:
                return f.read()

        def run(serving):
            with open(log, "ab") as f:
                proc = subprocess.Popen(
                    ["bash", os.path.join(REPO, "scripts", "cluster.sh"), "2", gw.config_path],
                    env=dict(os.environ, ROOMGATE_BIN=BIN), stdin=subprocess.DEVNULL,
                    stdout=f, stderr=f, preexec_fn=die_with_parent())
            deadline = time.monotonic() + 15
            while True:
                kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                      text=True).stdout.split()
                if len(kids) == 2 and text().count("roomgate serving") >= serving:
                    break
                self.assertIsNone(proc.poll(), text())
                self.assertLess(time.monotonic(), deadline, text())
                time.sleep(0.1)
            return proc, kids

        proc, kids = run(2)
        try:
            wait_ready(gw, "ready")
            subs = [await self.ws(gw) for _ in range(10)]
            for c in subs:
                await c.join("t:script")
            self.assertEqual(publish(gw, "t:script", {"k": 1}).status, 201)
            for c in subs:
                self.assertEqual((await c.message())["data"], {"k": 1})
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(15), 0, text())
            self.assertEqual(text().count("NOTICE: stopped"), 2)

            proc, kids = run(4)
            os.kill(int(kids[0]), signal.SIGKILL)
            self.assertEqual(proc.wait(15), 137, text())
            self.assertIn(f"gateway pid {kids[0]} exited with 137: stopping the others",
                          text())
            self.assertEqual(text().count("NOTICE: stopped"), 3)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            for k in kids:
                subprocess.run(["kill", "-9", k], capture_output=True)


if __name__ == "__main__":
    cluster_case.main("test_cluster_processes")
