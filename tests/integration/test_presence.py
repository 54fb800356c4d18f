"""Presence (docs/PROTOCOL.md; CONFIG.md rooms[].presence): members of a presence room
see each other join and leave (`leave`, close, a dropped connection, or one the ping
timeout closes); `presence` (WS) and GET /rooms/{room}/presence list the members; SSE
subscribers are members under their name= (or their connection id) and get
`event: presence`."""
import asyncio
import json
import re
import time

from harness import (DEFAULT_ROOMS, GatewayTestCase, RawWS, expect_stream_event,
                     run_tests, without_epoch)

PING, PING_TIMEOUT = 1, 1
CONN = re.compile(r"^conn-[0-9]+$")


def ev(room, event, user):
    return {"type": "presence", "room": room, "event": event, "user": user}


class PresenceTest(GatewayTestCase):
    # keepalive 1 s: an HTTP/1.1 SSE member that went away is noticed by the failing
    # keepalive write (docs/PROTOCOL.md)
    CONFIG = {"ws": {"ping_seconds": PING, "ping_timeout_seconds": PING_TIMEOUT},
              "sse": {"keepalive_seconds": 1},
              "rooms": DEFAULT_ROOMS + [
                  {"name": "p", "presence": True},
                  {"name": "np"},
                  {"pattern": "pr:*", "presence": True, "idle_seconds": 300}]}

    async def member(self, room, name=None):
        c = await self.ws()
        args = {"name": name} if name is not None else {}
        ans = await c.request("join", room=room, **args)
        self.assertEqual((ans.get("type"), ans.get("room")), ("joined", room), ans)
        return c

    async def users(self, c, room):
        """The member list by WS and by HTTP (h1 and h2), which must agree; sorted."""
        ans = await c.request("presence", room=room, id="who")
        self.assertEqual(set(ans), {"type", "room", "users", "id"}, ans)
        self.assertEqual((ans["type"], ans["room"]), ("presence", room), ans)
        for http2 in (False, True):
            r = await self.ahttp("GET", f"/rooms/{room}/presence", http2=http2)
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.content_type.startswith("application/json"), r.headers)
            body = r.json()
            self.assertEqual(set(body), {"room", "users"}, body)
            self.assertEqual(body["room"], room)
            self.assertEqual(sorted(body["users"]), sorted(ans["users"]), "HTTP = WS")
        return sorted(ans["users"])

    async def test_join_query_leave_drop(self):
        room = "p"
        alice = await self.member(room, "alice")
        self.assertEqual(await self.users(alice, room), ["alice"])
        bob = await self.member(room, "bob")
        self.assertEqual(await alice.answer(), ev(room, "join", "bob"))
        await bob.assert_quiet()  # a joiner is not told about itself or earlier members
        self.assertEqual(await self.users(alice, room), ["alice", "bob"])
        self.assertEqual(await self.users(bob, room), ["alice", "bob"])

        self.assertEqual(await bob.request("leave", room=room, id="bye"),
                         {"type": "left", "room": room, "id": "bye"})
        self.assertEqual(await alice.answer(), ev(room, "leave", "bob"))
        self.assertEqual(await self.users(alice, room), ["alice"])
        await bob.assert_quiet()

        # a dropped connection (no close frame; the kernel sends FIN at once)
        carol = await self.member(room, "carol")
        self.assertEqual(await alice.answer(), ev(room, "join", "carol"))
        t0 = time.monotonic()
        carol.ws.transport.abort()
        self.assertEqual(await alice.answer(timeout=5), ev(room, "leave", "carol"))
        print(f"\naborted member's leave after {time.monotonic() - t0:.2f}s")
        self.assertEqual(await self.users(alice, room), ["alice"])

        # a silent peer: handshake and join, then it never reads or writes again (no
        # pong): only the ping timeout can notice it
        dave = await asyncio.to_thread(RawWS, self.gw)
        self.addCleanup(dave.close)
        await asyncio.to_thread(dave.send, {"type": "join", "room": room, "name": "dave",
                                            "id": "d"})
        self.assertEqual(without_epoch(await asyncio.to_thread(dave.json_frame)),
                         {"type": "joined", "room": room, "seq": 0, "id": "d"})
        t0 = time.monotonic()
        self.assertEqual(await alice.answer(), ev(room, "join", "dave"))
        self.assertEqual(await self.users(alice, room), ["alice", "dave"])
        # documented: ping + timeout, plus up to 5 s of lws's close wait, + 3 s of slack
        limit = PING + PING_TIMEOUT + 5 + 3
        # wait longer than the limit, to report when it did come
        self.assertEqual(await alice.answer(timeout=limit + 12), ev(room, "leave", "dave"))
        took = time.monotonic() - t0
        print(f"silent member's leave after {took:.2f}s (ping {PING}s,"
              f" timeout {PING_TIMEOUT}s)")
        self.assertEqual(await self.users(alice, room), ["alice"])
        await alice.assert_quiet()
        self.assertGreaterEqual(took, PING * 0.9, "closed by the ping timeout, not before")
        self.assertLessEqual(took, limit,
                             f"the silent member's leave came {took:.1f}s after its last"
                             f" traffic; want within ping {PING}s + timeout {PING_TIMEOUT}s"
                             f" + 5s close wait + 3s slack")

    async def test_default_name_is_connection_id(self):
        room = "pr:anon"
        alice = await self.member(room, "alice")
        anon = await self.member(room)
        e = await alice.answer()
        self.assertEqual({k: e.get(k) for k in ("type", "room", "event")},
                         {"type": "presence", "room": room, "event": "join"}, e)
        self.assertRegex(e.get("user", ""), CONN)
        self.assertEqual(await self.users(alice, room), sorted(["alice", e["user"]]))
        await anon.close()
        self.assertEqual(await alice.answer(), ev(room, "leave", e["user"]))

    async def test_bad_names(self):
        room = "pr:names"
        alice = await self.member(room, "alice")
        c = await self.ws()
        for k, name in enumerate(["", "n" * 65, "\u00e9" * 33, "a\u0001b", "tab\tx", 5,
                                  None, ["x"], {"n": 1}]):
            with self.subTest(name=repr(name)):
                ans = await c.request("join", room=room, name=name, id=f"n{k}")
                self.assertEqual((ans.get("type"), ans.get("code"), ans.get("id")),
                                 ("error", "bad_request", f"n{k}"), ans)
        await asyncio.sleep(0.2)
        await alice.assert_quiet()  # nobody joined
        self.assertEqual(await self.users(alice, room), ["alice"])
        longest = "\u00e9" * 32  # 64 bytes
        await self.member(room, longest)
        self.assertEqual(await alice.answer(), ev(room, "join", longest))

    async def test_sse_subscribers_are_members(self):
        room = "pr:sse"
        alice = await self.member(room, "alice")
        s1 = self.sse(f"room={room}")  # HTTP/1.1
        await asyncio.to_thread(expect_stream_event, s1)
        j1 = await alice.answer()
        self.assertEqual({k: j1.get(k) for k in ("type", "room", "event")},
                         {"type": "presence", "room": room, "event": "join"}, j1)
        self.assertRegex(j1.get("user", ""), CONN)
        sse1 = j1["user"]
        s2 = self.sse(f"room={room}", http2=True)
        await asyncio.to_thread(expect_stream_event, s2)
        j2 = await alice.answer()
        sse2 = j2.get("user", "")
        self.assertRegex(sse2, CONN)
        self.assertNotEqual(sse1, sse2)
        self.assertEqual(j2, ev(room, "join", sse2))
        self.assertEqual(await self.users(alice, room), sorted(["alice", sse1, sse2]))

        def presence_event(s):
            e = s.next_event()
            self.assertEqual(e.get("event"), "presence", e)
            self.assertNotIn("id", e, "a presence event does not move the cursor")
            return json.loads(e["data"])

        self.assertEqual(await asyncio.to_thread(presence_event, s1), ev(room, "join", sse2))
        bob = await self.member(room, "bob")
        self.assertEqual(await alice.answer(), ev(room, "join", "bob"))
        for s in (s1, s2):
            self.assertEqual(await asyncio.to_thread(presence_event, s), ev(room, "join", "bob"))
        await bob.request("leave", room=room)
        self.assertEqual(await alice.answer(), ev(room, "leave", "bob"))
        for s in (s1, s2):
            self.assertEqual(await asyncio.to_thread(presence_event, s),
                             ev(room, "leave", "bob"))

        await s2.close()
        self.assertEqual(await alice.answer(timeout=5), ev(room, "leave", sse2))
        self.assertEqual(await asyncio.to_thread(presence_event, s1), ev(room, "leave", sse2))
        await s1.close()  # HTTP/1.1: noticed by the next keepalive (1 s)
        self.assertEqual(await alice.answer(timeout=6), ev(room, "leave", sse1))
        self.assertEqual(await self.users(alice, room), ["alice"])
        # messages still flow to members as usual
        self.assertEqual(await alice.publish(room, "hi"), 1)
        self.assertEqual((await alice.message())["data"], "hi")

    async def test_sse_names(self):
        """An SSE stream's name= is its presence name, in the rooms of its URL, of its
        Last-Event-ID and those POST /streams/{id}/rooms adds; a name that is not one
        is refused 400 before anything is joined."""
        room, more = "pr:ssename", "pr:ssename2"
        alice = await self.member(room, "alice")
        await self.member(more, "alice")
        for http2 in (False, True):
            for bad in ["", "n" * 65, "%C3%A9" * 33, "a%01b", "a%00b"]:
                with self.subTest(name=bad, http2=http2):
                    r = await self.ahttp("GET", f"/events?room={room}&name={bad}",
                                         http2=http2, timeout=3)
                    if bad == "a%00b" and r.status == 0:
                        continue  # lws 4.1.6 drops an HTTP/1.1 request line with %00
                    self.assertError(r, 400, "bad_request")
                    self.assertIn("name", r.json()["error"]["message"])
        await asyncio.sleep(0.2)
        await alice.assert_quiet()  # nobody joined
        carol = self.sse(f"room={room}&name=carol")
        await asyncio.to_thread(expect_stream_event, carol)
        self.assertEqual(await alice.answer(), ev(room, "join", "carol"))
        dave = self.sse(f"name=d%C3%A1ve&room={room}", http2=True)  # lws decodes %XX
        await asyncio.to_thread(expect_stream_event, dave)
        self.assertEqual(await alice.answer(), ev(room, "join", "d\u00e1ve"))
        self.assertEqual(await self.users(alice, room), ["alice", "carol", "d\u00e1ve"])
        r = await self.ahttp("POST", f"/streams/{carol.stream_id}/rooms",
                             json.dumps({"join": [more]}))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(await self.users(alice, more), ["alice", "carol"])

    async def test_presence_disabled_and_unknown(self):
        c = await self.ws()
        for room, code in (("np", "presence_disabled"), ("t:x", "presence_disabled"),
                           ("nosuch", "unknown_room"), ("bad name", "bad_request")):
            with self.subTest(room=room):
                ans = await c.request("presence", room=room, id="q")
                self.assertEqual((ans.get("type"), ans.get("code"), ans.get("id")),
                                 ("error", code, "q"), ans)
        for http2 in (False, True):
            for path, status, code in (("/rooms/np/presence", 400, "presence_disabled"),
                                       ("/rooms/t:x/presence", 400, "presence_disabled"),
                                       ("/rooms/nosuch/presence", 404, "unknown_room")):
                with self.subTest(http2=http2, path=path):
                    self.assertError(await self.ahttp("GET", path, http2=http2), status, code)
        # a presence pattern room nobody uses yet has no members
        r = await self.ahttp("GET", "/rooms/pr:empty/presence")
        self.assertEqual((r.status, r.json()), (200, {"room": "pr:empty", "users": []}), r)
        ans = await c.request("presence", room="pr:empty", id="e")
        self.assertEqual(ans, {"type": "presence", "room": "pr:empty", "users": [], "id": "e"})
        # members of a room without presence are not told about each other
        a = await self.member("np", "a")
        b = await self.member("np", "b")
        await b.close()
        await asyncio.sleep(0.3)
        await a.assert_quiet()

    async def test_refused_requests_are_invisible_to_members(self):
        """"A refused message changes nothing: no state, no other connection": members
        must not see a refused join or stream come and go."""
        room = "pr:ref"
        alice = await self.member(room, "alice")

        async def seen_by_alice():
            got = []
            while True:
                try:
                    got.append(await alice.answer(timeout=0.5))
                except AssertionError:  # nothing more within 0.5 s
                    return got

        w = await self.ws()
        for bad in ({"since": -1}, {"since": 0, "epoch": 12345678}):
            with self.subTest(join=bad):
                ans = await w.request("join", room=room, name="ghost", **bad)
                self.assertEqual((ans.get("type"), ans.get("code")),
                                 ("error", "bad_request"), ans)
                self.assertEqual(await seen_by_alice(), [], "after a refused WS join")
        # refused before and after the URL's rooms are joined: a malformed id; a bare SEQ
        # for a two-room stream
        for query in (f"room={room}&last_event_id=abc",
                      f"room={room}&room=t:refx&last_event_id=5"):
            with self.subTest(query=query):
                r = await self.ahttp("GET", f"/events?{query}", timeout=3)
                self.assertError(r, 400, "bad_request")
                self.assertEqual(await seen_by_alice(), [],
                                 "presence events for a refused SSE request")
        self.assertEqual(await self.users(alice, room), ["alice"])
        # a since past the room's last seq is not refused (docs/PROTOCOL.md, "Epochs"):
        # that join makes a member like any other
        ans = await w.request("join", room=room, since=5, name="ghost", id="g")
        self.assertEqual(without_epoch(ans), {"type": "joined", "room": room, "seq": 0,
                                              "id": "g"})
        self.assertEqual(await w.answer(), {"type": "reset", "room": room,
                                            "epoch": ans["epoch"]})
        self.assertEqual(await seen_by_alice(), [ev(room, "join", "ghost")])
        self.assertEqual(await self.users(alice, room), ["alice", "ghost"])


if __name__ == "__main__":
    run_tests()
