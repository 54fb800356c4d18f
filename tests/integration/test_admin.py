"""The admin API (docs/PROTOCOL.md, "Admin API"): rooms with their counters, one room's
state, closing a room, dropping its history, closing a connection's or a user's
streams; backends only, over the real gateway with WebSocket and SSE clients."""
import asyncio
import json
import time

import websockets

from harness import GatewayTestCase, HmacAuth, client_ssl, run_tests



async def admin(case, method, path, **kw):
    r = await case.ahttp(method, path, **kw)
    return r, (r.json() if r.body else None)


async def member_conn(case, room, n=1):
    """The connection ids of room's members, once it has n."""
    deadline = time.monotonic() + 5
    while True:
        _, doc = await admin(case, "GET", f"/admin/rooms/{room}")
        if len(doc["members"]) == n or time.monotonic() > deadline:
            return [m["conn"] for m in doc["members"]]
        await asyncio.sleep(0.05)


class AdminTest(GatewayTestCase):
    """Without auth: the admin API is a loopback caller's."""
    CONFIG = {"rooms": [{"name": "lobby", "history": 50}, {"name": "quiet"},
                        {"pattern": "dm:*"}]}

    async def test_rooms_and_a_room(self):
        a, b = await self.ws(), await self.ws()
        await a.join("lobby")
        await b.join("lobby")
        for i in range(3):
            await a.publish("lobby", {"n": i})
        r, doc = await admin(self, "GET", "/admin/rooms")
        self.assertEqual(r.status, 200, r)
        lobby, = [x for x in doc["rooms"] if x["name"] == "lobby"]
        self.assertEqual({k: lobby[k] for k in ("subscribers", "last_seq", "stored",
                                                "first_seq", "oldest_seq")},
                         {"subscribers": 2, "last_seq": 3, "stored": 3, "first_seq": 1,
                          "oldest_seq": 1})
        self.assertGreater(lobby["stored_bytes"], 0)
        quiet, = [x for x in doc["rooms"] if x["name"] == "quiet"]
        self.assertGreaterEqual(quiet["idle_seconds"], 0)
        r, doc = await admin(self, "GET", "/admin/rooms/lobby")
        self.assertEqual(doc["config"]["history"], 50)
        self.assertEqual(sorted(m["transport"] for m in doc["members"]), ["ws", "ws"])
        self.assertEqual(len({m["conn"] for m in doc["members"]}), 2)
        r, _ = await admin(self, "GET", "/admin/rooms/nope")
        self.assertError(r, 404, "unknown_room")
        r, _ = await admin(self, "POST", "/admin/rooms")
        self.assertError(r, 405, "method_not_allowed")
        r, _ = await admin(self, "GET", "/admin/elsewhere")
        self.assertError(r, 404, "not_found")

    async def test_close_a_room(self):
        c = await self.ws()
        await c.join("dm:x")
        await c.publish("dm:x", 1)
        s = self.sse("room=dm:x")
        s.wait_started()
        await asyncio.to_thread(self.gw.wait_subscribers, "dm:x", 2)
        r, doc = await admin(self, "POST", "/admin/rooms/dm:x/close")
        self.assertEqual((r.status, doc), (200, {"room": "dm:x", "members": 2, "dropped": 1}))
        told = await c.answer()
        self.assertEqual((told["type"], told["code"], told["room"]),
                         ("error", "room_closed", "dm:x"), told)
        ev = s.next_event()
        while ev.get("event") != "error":
            ev = s.next_event()
        self.assertEqual(json.loads(ev["data"])["code"], "room_closed")
        # it may be joined again; its seqs went on
        await c.join("dm:x")
        self.assertEqual(await c.publish("dm:x", 2), 2)

    async def test_drop_history(self):
        c = await self.ws()
        await c.join("quiet")
        for i in range(4):
            await c.publish("quiet", i)
        for _ in range(4):
            await c.message()
        r, doc = await admin(self, "DELETE", "/admin/rooms/quiet/messages")
        self.assertEqual((r.status, doc), (200, {"room": "quiet", "dropped": 4}))
        r = await self.ahttp("GET", "/rooms/quiet/messages?since=0")
        self.assertEqual(r.json()["messages"], [], r)
        self.assertEqual(await c.publish("quiet", "after"), 5)
        self.assertEqual((await c.message())["seq"], 5)  # still a member, served

    async def test_close_a_connection(self):
        c = await self.ws()
        await c.join("lobby")
        other = await self.ws()
        await other.join("lobby")
        conns = await member_conn(self, "lobby", 2)
        r, doc = await admin(self, "POST", f"/admin/connections/{conns[0]}/close")
        self.assertEqual((r.status, doc), (200, {"closed": 1}))
        # the member list is newest first: conns[0] is `other`
        told = await other.answer()
        self.assertEqual(told["code"], "closed", told)
        with self.assertRaises(websockets.ConnectionClosed) as cm:
            await asyncio.wait_for(other.ws.recv(), 5)
        self.assertEqual(cm.exception.rcvd.code, 1008)
        await c.ping()  # the other one is served
        r, _ = await admin(self, "POST", f"/admin/connections/{conns[0]}/close")
        self.assertError(r, 404, "not_found")
        r, _ = await admin(self, "POST", "/admin/connections/abc/close")
        self.assertError(r, 404, "not_found")
        r, _ = await admin(self, "GET", f"/admin/connections/{conns[1]}/close")
        self.assertError(r, 405, "method_not_allowed")

    async def test_garbage_paths(self):
        """Paths no order has: each answered with its error, the gateway serving on."""
        cases = [
            ("GET", "/admin", 404, "not_found"),
            ("GET", "/admin/", 404, "not_found"),
            ("GET", "/adminx", 404, "not_found"),
            ("GET", "/admin/rooms/" + "x" * 200, 400, "bad_request"),
            ("GET", "/admin/rooms/a%20b", 400, "bad_request"),
            ("GET", "/admin/rooms/lobby/elsewhere", 404, "not_found"),
            ("GET", "/admin/rooms/lobby/close", 405, "method_not_allowed"),
            ("POST", "/admin/rooms/lobby/messages", 405, "method_not_allowed"),
            ("POST", "/admin/connections//close", 404, "not_found"),
            ("POST", "/admin/connections/0/close", 404, "not_found"),
            ("POST", "/admin/connections/-1/close", 404, "not_found"),
            ("POST", "/admin/connections/1x/close", 404, "not_found"),
            ("POST", "/admin/connections/99999999999999999999999/close", 404, "not_found"),
            ("POST", "/admin/connections/7", 404, "not_found"),
            ("POST", "/admin/users/close", 404, "not_found"),
            ("POST", "/admin/users/" + "u" * 300 + "/close", 404, "not_found"),
        ]
        for method, path, status, code in cases:
            with self.subTest(path=path[:60]):
                r, _ = await admin(self, method, path)
                self.assertError(r, status, code)
        # an order with a body: answered, the body not read, the connection closed
        r, doc = await admin(self, "POST", "/admin/users/nobody/close", body="x" * 5000)
        self.assertEqual((r.status, doc), (200, {"closed": 0}))
        r, _ = await admin(self, "GET", "/admin/rooms")
        self.assertEqual(r.status, 200)

    async def test_an_origin_is_refused(self):
        """A browser page gives no orders, even from loopback."""
        r, _ = await admin(self, "GET", "/admin/rooms",
                           headers=[f"Origin: https://127.0.0.1:{self.gw.port}"])
        self.assertError(r, 403, "forbidden")


AUTH = HmacAuth()
API_KEY = AUTH.api_key


def token(sub, admin=False):
    return AUTH.token(sub, **({"roomgate": {"admin": True}} if admin else {}))


class AdminAuthTest(GatewayTestCase):
    """With auth: an API key or an admin token; a user's streams closed by its sub."""
    CONFIG = {"auth": AUTH.config, "rooms": [{"name": "members", "subscribe": "authenticated"}]}

    def key(self):
        return [f"Authorization: Bearer {API_KEY}"]

    async def test_who_may(self):
        r, _ = await admin(self, "GET", "/admin/rooms")
        self.assertError(r, 401, "unauthorized")
        r, _ = await admin(self, "GET", "/admin/rooms",
                           headers=[f"Authorization: Bearer {token('alice')}"])
        self.assertError(r, 403, "forbidden")
        r, _ = await admin(self, "GET", "/admin/rooms",
                           headers=[f"Authorization: Bearer {token('ops', admin=True)}"])
        self.assertEqual(r.status, 200, r)
        r, _ = await admin(self, "GET", "/admin/rooms", headers=self.key())
        self.assertEqual(r.status, 200, r)

    async def test_close_a_users_streams(self):
        url = self.gw.ws_url + "?token="
        mallory = [await websockets.connect(url + token("mallory"), ssl=client_ssl(),
                                            subprotocols=["roomgate.v1"]) for _ in range(2)]
        alice = await websockets.connect(url + token("alice"), ssl=client_ssl(),
                                         subprotocols=["roomgate.v1"])
        s = self.sse("room=members", headers=[f"Authorization: Bearer {token('mallory')}"])
        s.wait_started()
        try:
            for w in mallory + [alice]:
                await w.send('{"type":"join","room":"members"}')
                self.assertEqual(json.loads(await w.recv())["type"], "joined")
            deadline = time.monotonic() + 5
            while True:
                r, doc = await admin(self, "GET", "/admin/rooms/members",
                                     headers=self.key())
                if len(doc["members"]) == 4 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            self.assertEqual(sorted(m.get("user") for m in doc["members"]),
                             ["alice", "mallory", "mallory", "mallory"])
            r, doc = await admin(self, "POST", "/admin/users/mallory/close",
                                 headers=self.key())
            self.assertEqual((r.status, doc), (200, {"closed": 3}))
            for w in mallory:
                self.assertEqual(json.loads(await w.recv())["code"], "closed")
                with self.assertRaises(websockets.ConnectionClosed):
                    await asyncio.wait_for(w.recv(), 5)
                self.assertEqual(w.close_code, 1008)
            ev = s.next_event()
            while ev.get("event") != "error":
                ev = s.next_event()
            self.assertEqual(json.loads(ev["data"])["code"], "closed")
            s.eof.wait(5)
            self.assertTrue(s.eof.is_set(), "the stream ended")
            await alice.send('{"type":"ping","id":"p"}')
            self.assertEqual(json.loads(await alice.recv())["type"], "pong")
            r, doc = await admin(self, "POST", "/admin/users/nobody/close", headers=self.key())
            self.assertEqual((r.status, doc), (200, {"closed": 0}))
            log = self.gw.stderr()
            self.assertIn("admin: closed 3 stream(s) of user mallory", log)
        finally:
            for w in mallory + [alice]:
                await w.close()


if __name__ == "__main__":
    run_tests()
