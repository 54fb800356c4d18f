"""Presence across gateways sharing rooms through Redis (cluster.redis;
docs/OPERATIONS.md, "Several gateways", Presence): members on every node see each
other join and leave and every node lists them all; a clean stop takes a node's members
out at once, a killed node's leave within its node_timeout_seconds; members that come
or go while Redis is down are told once it is back."""
import asyncio
import json
import os
import re
import signal
import sys
import time

import cluster_case
from cluster_case import PREFIX, ClusterCase, members, presence, wait_members, wait_ready
from harness import Gateway, SSEStream, deep_merge, expect_stream_event, stop_and_check



class ClusterPresenceTest(ClusterCase):
    async def test_presence_across_nodes(self):
        """Members of a presence room on every node (WebSocket and SSE) are told when
        one on another node joins or leaves, and every node lists the same members.
        A node that stops cleanly takes its members out at once; a killed one's leave
        within its cluster.redis.node_timeout_seconds (2 s here)."""
        room = "p:across"
        a, b, c = self.nodes
        quick = Gateway(deep_merge(self.conf, {"cluster": {"redis": {
            "node_timeout_seconds": 2}}})).start()
        clean = Gateway(self.conf).start()
        extra = [quick, clean]
        try:
            for gw in extra:
                wait_ready(gw, "ready")
            ann = await self.member(a, room, "ann")
            bob = await self.member(b, room, "bob")
            self.assertEqual(await ann.answer(), presence(room, "join", "bob"))
            dee = SSEStream(c, f"room={room}&name=dee")
            self.clients.append(dee)
            await asyncio.to_thread(expect_stream_event, dee)
            cat = await self.member(quick, room, "cat")
            await self.member(clean, room, "eve")
            for who in ("dee", "cat", "eve"):
                self.assertEqual(await ann.answer(), presence(room, "join", who))
                self.assertEqual(await bob.answer(), presence(room, "join", who))
            self.assertEqual(await cat.answer(), presence(room, "join", "eve"))
            got = await asyncio.to_thread(dee.take, 2)
            self.assertEqual([(e["event"], json.loads(e["data"])) for e in got],
                             [("presence", presence(room, "join", w)) for w in ("cat", "eve")])
            everyone = ["ann", "bob", "cat", "dee", "eve"]
            await asyncio.to_thread(wait_members, self.nodes + extra, room, everyone)
            ans = await cat.request("presence", room=room)
            self.assertEqual(sorted(ans["users"]), everyone, "the WebSocket query too")

            # a leave, and a clean stop: at once
            node_b = re.search(r"as node ([0-9a-v]+)", b.stderr()).group(1)
            rooms_of_b = f"{PREFIX}node:{node_b}"
            self.assertEqual(self.redis.cmd("SISMEMBER", rooms_of_b, room), 1)
            await bob.request("leave", room=room)
            self.assertEqual(await ann.answer(), presence(room, "leave", "bob"))
            # its last member here gone, the room leaves node B's set (what a reaper
            # of node B would walk)
            self.assertEqual(self.redis.cmd("SISMEMBER", rooms_of_b, room), 0)
            t0 = time.monotonic()
            self.assertEqual(stop_and_check(clean), [])
            extra.remove(clean)
            self.assertEqual(await ann.answer(timeout=3), presence(room, "leave", "eve"))
            print(f"    a clean stop's member left the other nodes {time.monotonic() - t0:.2f} s "
                  "after SIGTERM", file=sys.stderr)

            # killed: gone within its timeout
            quick.proc.kill()
            quick.proc.wait(5)
            t0 = time.monotonic()
            self.assertEqual(await ann.answer(timeout=8), presence(room, "leave", "cat"))
            took = time.monotonic() - t0
            self.assertLess(took, 2 + 1 + 2, "node_timeout_seconds 2, a heartbeat a second")
            print(f"    a killed node's member left the other nodes after {took:.2f} s",
                  file=sys.stderr)
            await asyncio.to_thread(wait_members, self.nodes, room, ["ann", "dee"])
            for gw in (quick, clean):
                node = re.search(r"as node ([0-9a-v]+)", gw.stderr()).group(1)
                self.assertIsNone(self.redis.cmd("ZSCORE", f"{PREFIX}nodes", node),
                                  "the killed and the stopped node are forgotten")
                self.assertEqual(self.redis.cmd("EXISTS", f"{PREFIX}node:{node}"), 0)
            await ann.assert_quiet()
        finally:
            for gw in extra:
                gw.stop()

    async def test_signal_while_leaving(self):
        """At a clean stop a node waits (2 s at most) for Redis to take its members out;
        a SIGHUP then must not reload into the server it has already torn down. Redis
        is paused (SIGSTOP) so that the wait lasts."""
        gw = Gateway(self.conf).start()
        try:
            wait_ready(gw, "ready")
            hal = await self.member(gw, "p:hup", "hal")
            await hal.close()  # no connection to drain: the stop goes straight to the wait
            self.clients.remove(hal)
            os.kill(self.redis.proc.pid, signal.SIGSTOP)
            try:
                gw.proc.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 5
                while "closing connections" not in gw.stderr() and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.5)  # in the wait for Redis
                gw.proc.send_signal(signal.SIGHUP)
                time.sleep(0.3)
            finally:
                os.kill(self.redis.proc.pid, signal.SIGCONT)
            self.assertEqual(gw.proc.wait(10), 0)
            log = gw.stderr()
            tail = log[log.index("closing connections"):]
            self.assertNotIn("reload", tail, "no reload once the server is torn down")
            self.assertEqual(gw.sanitizer_reports(), [])
        finally:
            gw.stop()

    async def test_presence_through_a_redis_outage(self):
        """Redis is down for a while: a member that leaves meanwhile leaves every node
        once it is back, one that joins meanwhile joins them; nothing is told twice."""
        room = "p:outage"
        a, b = self.nodes[0], self.nodes[1]
        ann = await self.member(a, room, "ann")
        bob = await self.member(b, room, "bob")
        self.assertEqual(await ann.answer(), presence(room, "join", "bob"))
        await asyncio.to_thread(wait_members, self.nodes, room, ["ann", "bob"])
        self.redis.stop()
        try:
            for gw in self.nodes:
                wait_ready(gw, "unavailable")
            await bob.request("leave", room=room)
            cal = await self.member(b, room, "cal")
            await bob.assert_quiet()
            self.assertEqual(members(b, room), ["ann", "cal"], "node B knows at once")
        finally:
            self.redis.start()
        for gw in self.nodes:
            wait_ready(gw, "ready")
        got = [await ann.answer(timeout=10), await ann.answer(timeout=10)]
        self.assertCountEqual(got, [presence(room, "leave", "bob"),
                                    presence(room, "join", "cal")])
        await asyncio.to_thread(wait_members, self.nodes, room, ["ann", "cal"])
        await ann.assert_quiet()
        await cal.assert_quiet()


if __name__ == "__main__":
    cluster_case.main("test_cluster_presence")
