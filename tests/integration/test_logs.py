"""Logs (docs/OPERATIONS.md, "Logs"): log.format json lines that jq parses, with the
documented fields; one access line per HTTP request and per WebSocket or SSE stream,
with its connection id, which the connection's other lines carry too; the text format;
log.level, log.access and log.format taken by a reload; no token, API key or message
body in any line, though clients send them in URLs, headers and messages."""
import asyncio
import json
import os
import re
import shutil
import subprocess
import time

import websockets

from harness import (GatewayTestCase, HmacAuth, RawWS, client_ssl, http, log_secret,
                     reload_gateway, run_tests)

AUTH = HmacAuth()
API_KEY = AUTH.api_key
BODY = log_secret("body-" + os.urandom(8).hex())
ROOMS = [{"name": "members", "subscribe": "authenticated", "publish": "authenticated"},
         {"name": "open"}]
token = AUTH.token


ACCESS_FIELDS = {"ts", "level", "source", "type", "conn", "peer", "transport", "http", "tls",
                 "method", "path", "status", "bytes_in", "bytes_out", "duration_ms"}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def json_lines(gw):
    """Every line of the gateway's log, each parsed by jq and by Python alike."""
    text = gw.stderr()
    jq = shutil.which("jq")
    assert jq, "jq missing: scripts/deps.sh --test installs Debian's jq"
    out = subprocess.run([jq, "-c", "."], input=text.encode(), capture_output=True, timeout=30)
    assert out.returncode == 0, f"jq: {out.stderr.decode()}\n{text[-3000:]}"
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(out.stdout.decode().splitlines()) == len(lines)
    return lines


async def wait_access(gw, pred, what, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        found = [x for x in json_lines(gw) if x["type"] == "access" and pred(x)]
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no access line for {what}:\n{gw.stderr()[-4000:]}")
        await asyncio.sleep(0.05)


class JsonLogTest(GatewayTestCase):
    CONFIG = {"log": {"format": "json", "level": "info", "lws_level": "notice"},
              "auth": AUTH.config, "rooms": ROOMS, "limits": {"max_message_bytes": 256}}

    async def test_every_line_is_json_with_the_documented_fields(self):
        await self.ahttp("GET", "/healthz")
        await wait_access(self.gw, lambda x: x["path"] == "/healthz", "GET /healthz")
        for x in json_lines(self.gw):
            self.assertTrue(TS.match(x["ts"]), x)
            self.assertIn(x["level"], ("error", "warn", "notice", "info"), x)
            self.assertIn(x["source"], ("roomgate", "lws"), x)
            self.assertIn(x["type"], ("log", "access"), x)
            if x["type"] == "log":
                self.assertIsInstance(x["msg"], str, x)
                self.assertLessEqual(set(x), {"ts", "level", "source", "type", "conn", "msg"})
            else:
                self.assertLessEqual(ACCESS_FIELDS, set(x), x)
                self.assertLessEqual(set(x), ACCESS_FIELDS | {"close", "rooms", "user"}, x)
                self.assertIsInstance(x["conn"], int)
                self.assertIs(x["tls"], True)

    async def test_a_websocket_closed(self):
        """Token in the URL, a message past max_message_bytes (its refusal is logged
        with the connection's id), a body, a close with 4000."""
        tok = token("alice")
        async with websockets.connect(self.gw.ws_url + "?token=" + tok, ssl=client_ssl(),
                                      subprotocols=["roomgate.v1"]) as ws:
            await ws.send(json.dumps({"type": "join", "room": "members"}))
            self.assertEqual(json.loads(await ws.recv())["type"], "joined")
            await ws.send(json.dumps({"type": "publish", "room": "members",
                                      "data": BODY}))
            await ws.recv(), await ws.recv()  # the ack and the message, in some order
            await ws.send(json.dumps({"type": "publish", "room": "members",
                                      "data": log_secret("x" * 300)}))
            self.assertEqual(json.loads(await ws.recv())["code"], "too_large")
            await ws.close(4000, "done")
        x, = await wait_access(self.gw, lambda x: x["transport"] == "ws" and
                               x.get("user") == "alice", "the WebSocket")
        self.assertEqual((x["status"], x["close"], x["rooms"]), (101, 4000, "members"), x)
        self.assertEqual((x["method"], x["path"], x["http"]), ("GET", "/ws", "1.1"), x)
        self.assertEqual(x["peer"], "127.0.0.1")
        self.assertGreater(x["bytes_in"], 300)
        self.assertGreater(x["bytes_out"], len(BODY))
        self.assertGreater(x["duration_ms"], 0)
        refusal = [y for y in json_lines(self.gw)
                   if y["type"] == "log" and "limits.max_message_bytes" in y["msg"]]
        self.assertEqual([y.get("conn") for y in refusal], [x["conn"]], refusal)

    async def test_an_sse_stream_over_http2(self):
        s = self.sse("room=members&room=open", http2=True,
                     headers=[f"Authorization: Bearer {token('bob')}"])
        s.wait_started()
        await s.close()
        x, = await wait_access(self.gw, lambda x: x["transport"] == "sse" and
                               x.get("user") == "bob", "the SSE stream")
        self.assertEqual((x["status"], x["http"], x["rooms"]), (200, "2", "members,open"), x)
        self.assertNotIn("close", x)

    async def test_http_requests(self):
        r = await self.ahttp("POST", "/rooms/open/messages", body=json.dumps(BODY),
                             headers=[f"Authorization: Bearer {API_KEY}"])
        self.assertEqual(r.status, 201, r)
        bad = log_secret("not-a-key-" + os.urandom(8).hex())
        r = await self.ahttp("GET", "/rooms/members/messages?token=" + bad)
        self.assertEqual(r.status, 401, r)
        r = await self.ahttp("GET", "/index.html")
        self.assertEqual(r.status, 200, r)
        pub, = await wait_access(self.gw, lambda x: x["method"] == "POST", "the publish")
        self.assertEqual((pub["path"], pub["status"], pub["transport"]),
                         ("/rooms/open/messages", 201, "http"), pub)
        self.assertEqual(pub["bytes_in"], len(json.dumps(BODY)))
        self.assertNotIn("user", pub)
        refused, = await wait_access(self.gw, lambda x: x["status"] == 401, "the 401")
        self.assertEqual(refused["path"], "/rooms/members/messages", refused)
        page, = await wait_access(self.gw, lambda x: x["path"] == "/index.html", "the page")
        self.assertEqual((page["status"], page["bytes_out"]), (200, len(r.body)), page)
        ids = [x["conn"] for x in (pub, refused, page)]
        self.assertEqual(len(set(ids)), 3, "one id per connection")


class TextLogTest(GatewayTestCase):
    CONFIG = {"rooms": [{"name": "open"}]}
    LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z roomgate "
                      r"(ERROR|WARN|NOTICE|INFO): ")
    ACCESS = re.compile(r"^\S+ roomgate INFO: \[conn (\d+)\] access (http|sse|ws) "
                        r"peer=\S+ method=\S+ path=\S+ http=(1\.1|2) tls=(yes|no) "
                        r"status=\d+( close=\d+)?( rooms=\S+)?( user=\S+)? in=\d+ out=\d+ "
                        r"ms=\d+\.\d{3}$")

    def access_lines(self, text):
        return [line for line in text.splitlines() if " access " in line]

    async def test_text_lines_then_a_reload(self):
        c = await self.ws()
        await c.join("open")
        await c.close()
        r = await self.ahttp("GET", "/nothing/here%0aforged%20line")
        self.assertEqual(r.status, 404)
        deadline = time.monotonic() + 5
        while "status=404" not in self.gw.stderr() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        text = self.gw.stderr()
        for line in text.splitlines():
            self.assertTrue(self.LINE.match(line), line)
        lines = self.access_lines(text)
        self.assertEqual(len(lines), 3, text)  # the harness's GET /healthz first
        for line in lines:
            self.assertTrue(self.ACCESS.match(line), line)
        ws, = [line for line in lines if " access ws " in line]
        self.assertIn(" status=101 close=1000 rooms=open ", ws)
        self.assertEqual(len([line for line in lines if "status=404" in line]), 1, lines)

        # log.access off and JSON from the reload on
        with open(self.gw.config_path) as f:
            cfg = json.load(f)
        cfg["log"] = {"format": "json", "access": False}
        with open(self.gw.config_path, "w") as f:
            json.dump(cfg, f)
        after = await reload_gateway(self.gw, "in force")
        self.assertEqual(await asyncio.to_thread(lambda: http(self.gw, "GET", "/").status),
                         200)
        c = await self.ws()
        await c.join("open")
        await c.close()
        await asyncio.sleep(0.3)
        tail = self.gw.stderr()[len(text):]
        self.assertIn('"msg":"reload:', tail)
        self.assertNotIn('"type":"access"', tail)
        # what the reload said while reading the new config is in the old format
        lines = after.splitlines()
        first = next(i for i, line in enumerate(lines) if "in force" in line)
        for line in lines[first:]:
            json.loads(line)


class ReadyzDrainTest(GatewayTestCase):
    """/readyz turns 503 while the gateway drains (a load balancer stops sending), and
    /healthz still answers; other requests are refused."""
    CONFIG = {"shutdown": {"drain_ms": 4000}}

    async def test_readyz_during_a_drain(self):
        self.assertEqual((await self.ahttp("GET", "/readyz")).status, 200)
        stuck = await asyncio.to_thread(RawWS, self.gw)  # never answers the close
        self.gw.proc.send_signal(15)
        try:
            deadline = time.monotonic() + 3
            while True:
                r = await self.ahttp("GET", "/readyz", timeout=2)
                if r.status == 503 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json()["status"], "stopping")
            self.assertEqual((await self.ahttp("GET", "/healthz", timeout=2)).status, 200)
            self.assertEqual((await self.ahttp("GET", "/rooms", timeout=2)).status, 0)
        finally:
            stuck.close()
        self.assertEqual(await asyncio.to_thread(self.gw.proc.wait, 10), 0)
        self.gw.stop()  # exited: teardown finds it stopped, not dead


if __name__ == "__main__":
    run_tests()
