#!/usr/bin/python3
"""Turns bench/run's raw results (DIR/SCENARIO__TARGET__RUN.jsonl, meta.txt, commands.txt,
profile-*.md, anomalies.txt) into the Markdown of bench/RESULTS.md (on stdout).

Every figure is the median over the runs of a scenario (min..max beside it when there
were several runs); the peers ran in the same session, so compare ratios, not absolutes.
"""
import collections
import glob
import json
import os
import re
import statistics
import sys

OUT = sys.argv[1]
TARGETS = ["roomgate", "nchan", "node", "raw"]
TNAME = {"roomgate": "roomgate", "nchan": "nginx+nchan", "node": "Node ws",
         "raw": "raw epoll C batched (calibration)"}


def load():
    data = collections.defaultdict(lambda: collections.defaultdict(list))
    for f in sorted(glob.glob(os.path.join(OUT, "*__*__*.jsonl"))):
        scen, target, run = os.path.basename(f)[:-6].split("__")
        ev = {}
        for line in open(f):
            try:
                d = json.loads(line)
            except ValueError:
                continue
            ev[d["event"]] = d
        if ev:
            ev["_run"] = run
            data[scen][target].append(ev)
    return data


DATA = load()
META = {}
if os.path.exists(os.path.join(OUT, "meta.txt")):
    for line in open(os.path.join(OUT, "meta.txt")):
        k, _, v = line.rstrip("\n").partition("=")
        META[k] = v


def tls_floor():
    """{cert: bytes per connection} from bench/peers/sslfloor.c, if it ran."""
    out = {}
    f = os.path.join(OUT, "tls-floor.jsonl")
    if os.path.exists(f):
        for line in open(f):
            try:
                d = json.loads(line)
            except ValueError:
                continue
            out[d.get("cert")] = d
    return out


FLOOR = tls_floor()


def values(scen, target, event, field):
    out = []
    for ev in DATA.get(scen, {}).get(target, []):
        d = ev.get(event)
        if d is not None and d.get(field) is not None:
            out.append(d[field])
    return out


def med(scen, target, event, field):
    v = values(scen, target, event, field)
    return statistics.median(v) if v else None


def fmt_num(x, kind):
    if x is None:
        return "n/a"
    if kind == "int":
        return "{:,.0f}".format(x)
    if kind == "ms":
        return "{:.2f}".format(x) if x < 100 else "{:,.0f}".format(x)
    if kind == "pct":
        return "{:.2f}".format(x)
    if kind == "cpu":
        return "{:.0f}".format(x)
    if kind == "kb":
        return "{:,.0f}".format(x)
    if kind == "s":
        return "{:.2f}".format(x / 1000.0)
    return str(x)


def cell(scen, target, event, field, kind):
    v = values(scen, target, event, field)
    if not v:
        return "–"
    m = statistics.median(v)
    s = fmt_num(m, kind)
    if len(v) > 1 and min(v) != max(v):
        s += " <sub>(%s–%s)</sub>" % (fmt_num(min(v), kind), fmt_num(max(v), kind))
    return s


def ratio(scen, event, field, peer):
    a, b = med(scen, "roomgate", event, field), med(scen, peer, event, field)
    if a is None or b is None or not b:
        return "–"
    return "%.2f×" % (a / b)


def bool_cell(scen, target, event):
    runs = DATA.get(scen, {}).get(target, [])
    if not runs:
        return "–"
    p = sum(1 for ev in runs if ev.get(event, {}).get("pass"))
    return "%d/%d pass" % (p, len(runs))


def subs_all(scen, target):
    runs = DATA.get(scen, {}).get(target, [])
    out = []
    for ev in runs:
        d = ev.get("idle") or {}
        if d:
            out.append("%s/%s" % (d.get("subs_full"), d.get("subs_counted")))
    return ", ".join(out) if out else "–"


MANY_ROWS = [
    ("pass", "step", "pass", "bool"),
    ("delivered %", "step", "delivered_pct", "pct"),
    ("latency p50 ms", "step", "p50_ms", "ms"),
    ("latency p90 ms", "step", "p90_ms", "ms"),
    ("latency p99 ms", "step", "p99_ms", "ms"),
    ("latency max ms", "step", "max_ms", "ms"),
    ("server CPU %", "step", "srv_cpu_pct", "cpu"),
    ("other processes' CPU % meanwhile (noise)", "step", "other_cpu_pct", "cpu"),
    ("server RSS peak, kB", "step", "rss_peak_kb", "kb"),
]

LOAD_ROWS = [r for r in MANY_ROWS if r[2] not in ("p90_ms", "max_ms", "rss_peak_kb")]
LOAD_ROWS.insert(-1, ("load generator CPU %", "step", "lg_cpu_pct", "cpu"))

SAT_ROWS = [
    ("deliveries/s at the highest passing rate", "search", "best_deliveries_per_s", "int"),
    ("first failing rate, msg/s", "search", "first_fail_rate", "int"),
    ("p99 ms there", "search", "best_p99_ms", "ms"),
    ("load generator CPU % there", "search", "best_lg_cpu_pct", "cpu"),
    ("other processes' CPU % there (noise)", "search", "best_other_cpu_pct", "cpu"),
    ("at the first failing rate: p99 ms", "search", "fail_p99_ms", "ms"),
    ("at the first failing rate: other processes' CPU %", "search", "fail_other_cpu_pct", "cpu"),
]

HTTP_ROWS = [
    ("messages published/s", "httppub", "msgs_per_s", "int"),
    ("requests/s", "httppub", "req_per_s", "int"),
    ("requests answered 2xx", "httppub", "status_2xx", "int"),
    ("requests failed", "httppub", "failed", "int"),
    ("server CPU %", "httppub", "srv_cpu_pct", "cpu"),
]

ROWS = [
    # (scenario, title) then rows: (label, event, field, kind)
    ("fanout-ws", "fanout-ws: 1000 WS subscribers, 1 room, 50 msg/s (50,000 deliveries/s), 128-byte data",
     [("pass (≥99% delivered, p99 ≤ 100 ms)", "step", "pass", "bool")] + MANY_ROWS[1:-1] + [
         ("connect 1000 subscribers, ms", "connect", "connect_ms", "ms"),
         ("server RSS before, kB", "connect", "rss_before_kb", "kb"),
         ("server RSS idle (connected), kB", "connect", "rss_idle_kb", "kb"),
     ] + MANY_ROWS[-1:]),
    ("fanout-sse", "fanout-sse: 1000 SSE subscribers, 1 room, 50 msg/s",
     [r for r in MANY_ROWS if r[2] != "p90_ms"]),
    ("load-ws", "load-ws: 1000 WS subscribers, 1 room, 4000 msg/s (4,000,000 deliveries/s)", LOAD_ROWS),
    ("load-sse", "load-sse: 1000 SSE subscribers, 1 room, 4000 msg/s (4,000,000 deliveries/s)", LOAD_ROWS),
    ("many-rooms", "many-rooms: 5000 WS subscribers in 500 rooms, 5000 msg/s total from 50 WebSocket publishers (nginx+nchan: 50 HTTP POST keep-alive connections, its publishing API)", MANY_ROWS),
    ("many-rooms-http", "many-rooms-http: the same, every server published to over HTTP POST (50 keep-alive connections, one request in flight each)", MANY_ROWS),
    ("idle-plain", "idle-plain: 10,000 plain WS connections (100 rooms), held 2 s", [
        ("RSS growth per connection, bytes", "connect", "bytes_per_conn", "int"),
        ("connect 10,000 (upgrade + join), s", "connect", "connect_ms", "s"),
        ("server RSS before, kB", "connect", "rss_before_kb", "kb"),
        ("server RSS idle, kB", "connect", "rss_idle_kb", "kb"),
        ("then 5 msgs/room: delivered %", "idle", "delivered_pct", "pct"),
        ("then 5 msgs/room: p99 ms", "idle", "p99_ms", "ms"),
    ]),
    ("idle-tls", "idle-tls: 10,000 TLS WS connections (ECDSA P-256 dev cert, TLS 1.3), held 2 s", [
        ("RSS growth per connection, bytes", "connect", "bytes_per_conn", "int"),
        ("10,000 TLS handshakes (+ upgrade + join), s", "connect", "connect_ms", "s"),
        ("server RSS idle, kB", "connect", "rss_idle_kb", "kb"),
        ("then 5 msgs/room: delivered %", "idle", "delivered_pct", "pct"),
        ("then 5 msgs/room: p99 ms", "idle", "p99_ms", "ms"),
    ]),
    ("handshake-rsa", "handshake-rsa: 10,000 TLS WS connections, RSA-2048 cert", [
        ("10,000 TLS handshakes (+ upgrade + join), s", "connect", "connect_ms", "s"),
        ("RSS growth per connection, bytes", "connect", "bytes_per_conn", "int"),
    ]),
    ("held-18k", "held-18k: 18,000 concurrent plain WS connections (180 rooms)", [
        ("connected", "connect", "ready", "int"),
        ("RSS growth per connection, bytes", "connect", "bytes_per_conn", "int"),
        ("connect 18,000, s", "connect", "connect_ms", "s"),
        ("then 5 msgs/room: delivered %", "idle", "delivered_pct", "pct"),
        ("then 5 msgs/room: p99 ms", "idle", "p99_ms", "ms"),
    ]),
    ("storm", "storm: 10,000 WS subscribers (10 rooms, 100 msg/s) dropped at once, reconnecting at once", [
        ("all reconnected and joined after, ms", "storm", "storm_ready_ms", "ms"),
        ("all receiving again after, ms", "storm", "storm_caught_ms", "ms"),
        ("subscribers caught up", "storm", "storm_caught", "int"),
    ]),
    ("http-pub-h1", "http-pub-h1: HTTP/1.1 publishing, 10 keep-alive connections (h2load), one request in flight each, 10 rooms, 128-byte messages", HTTP_ROWS),
    ("http-pub-pipe", "http-pub-pipe: the same with 10 requests pipelined per connection", HTTP_ROWS),
    ("http-pub-h2tls", "http-pub-h2tls: HTTP/2 over TLS, one connection, 10 concurrent streams (roomgate)", HTTP_ROWS),
    ("http-pub-batch", "http-pub-batch: POST /messages, 100 messages a request, 10 keep-alive HTTP/1.1 connections (roomgate)", HTTP_ROWS),
    ("sat-ws", "sat-ws: saturation, 1000 WS subscribers, 1 room (highest rate passing ≥99% delivered and p99 ≤ 100 ms)", [
        ("deliveries/s at the highest passing rate", "search", "best_deliveries_per_s", "int"),
        ("highest passing rate, msg/s", "search", "best_rate", "int"),
        ("first failing rate, msg/s", "search", "first_fail_rate", "int"),
        ("p99 ms at the highest passing rate", "search", "best_p99_ms", "ms"),
        ("server CPU % there", "search", "best_srv_cpu_pct", "cpu"),
        ("load generator CPU % there", "search", "best_lg_cpu_pct", "cpu"),
        ("other processes' CPU % there (noise)", "search", "best_other_cpu_pct", "cpu"),
        ("at the first failing rate: server CPU %", "search", "fail_srv_cpu_pct", "cpu"),
        ("at the first failing rate: p99 ms", "search", "fail_p99_ms", "ms"),
        ("at the first failing rate: other processes' CPU %", "search", "fail_other_cpu_pct", "cpu"),
    ]),
    ("sat-tls", "sat-tls: saturation, 1000 TLS WS subscribers, 1 room", SAT_ROWS),
    ("sat-tls-plainpub", "sat-tls-plainpub: saturation, 1000 TLS WS subscribers, the WS publisher on the plain listener", SAT_ROWS),
    ("sat-sse", "sat-sse: saturation, 1000 SSE subscribers, 1 room", SAT_ROWS),
    ("sat-ws-c1000", "sat-ws-c1000: sat-ws with delivery.coalesce_us 1000 (a 1 ms write-coalescing window)", SAT_ROWS),
    ("sat-tls-c1000", "sat-tls-c1000: sat-tls with delivery.coalesce_us 1000", SAT_ROWS),
]


def table():
    out = []
    for scen, title, rows in ROWS:
        if scen not in DATA:
            continue
        targets = [t for t in TARGETS if DATA[scen].get(t)]
        peers = [t for t in targets if t != "roomgate"]
        hdr = ["metric"] + [TNAME[t] for t in targets] + ["roomgate ÷ %s" % TNAME[p] for p in peers if "roomgate" in targets]
        out.append("### %s\n" % title)
        out.append("| " + " | ".join(hdr) + " |")
        out.append("|" + "---|" + "---:|" * (len(hdr) - 1))
        for label, event, field, kind in rows:
            if kind == "bool":
                cells = [bool_cell(scen, t, event) for t in targets]
                rs = ["" for p in peers if "roomgate" in targets]
            else:
                cells = [cell(scen, t, event, field, kind) for t in targets]
                rs = [ratio(scen, event, field, p) for p in peers if "roomgate" in targets]
            out.append("| " + " | ".join([label] + cells + rs) + " |")
        if scen in ("idle-plain", "idle-tls", "held-18k"):
            out.append("| subscribers that got every message (per run) | " +
                       " | ".join(subs_all(scen, t) for t in targets) + " |" + " |" * len(peers))
        out.append("")
    return "\n".join(out)


def verdict(ok):
    return "**met**" if ok else "**missed**"


def targets():
    lines = ["| target | measured (median) | verdict |", "|---|---|---|"]

    def add(name, text, ok):
        lines.append("| %s | %s | %s |" % (name, text, "not measured" if ok is None else verdict(ok)))

    ws = med("sat-ws", "roomgate", "search", "best_deliveries_per_s")
    nc = med("sat-ws", "nchan", "search", "best_deliveries_per_s")
    nd = med("sat-ws", "node", "search", "best_deliveries_per_s")
    tls = med("sat-tls", "roomgate", "search", "best_deliveries_per_s")
    sse = med("sat-sse", "roomgate", "search", "best_deliveries_per_s")
    if ws is not None:
        add("saturation, plain WS, 1000 subs / 1 room ≥ 2,500,000 deliveries/s at p99 ≤ 100 ms",
            "{:,.0f} deliveries/s ({:.2f}× the target); load generator CPU there {:.0f}%".format(
                ws, ws / 2.5e6, med("sat-ws", "roomgate", "search", "best_lg_cpu_pct") or 0),
            ws >= 2.5e6)
    if ws is not None and nc:
        add("saturation ≥ 10× nginx+nchan", "{:.2f}× nchan ({:,.0f}); {:.2f}× Node ws ({:,.0f})".format(
            ws / nc, nc, ws / nd if nd else 0, nd or 0), ws >= 10 * nc)
    tpp = med("sat-tls-plainpub", "roomgate", "search", "best_deliveries_per_s")
    if tls is not None:
        add("saturation, TLS WS ≥ 1,000,000 deliveries/s",
            "{:,.0f} deliveries/s with subscribers and publisher on TLS ({:.2f}× the target){}".format(
                tls, tls / 1e6, "; {:,.0f} with the publisher on the plain listener".format(tpp) if tpp else ""),
            tls >= 1e6)
    if sse is not None and ws:
        lw = med("sat-ws", "roomgate", "search", "best_lg_cpu_pct") or 0
        ls = med("sat-sse", "roomgate", "search", "best_lg_cpu_pct") or 0
        text = "SSE {:,.0f} vs WS {:,.0f} deliveries/s: {:+.1f}% (load generator CPU there: {:.0f}% and {:.0f}%{})".format(
            sse, ws, 100 * (sse / ws - 1), ls, lw,
            ", so both figures are partly the load generator's" if min(lw, ls) >= 95 else "")
        pw, ps = med("load-ws", "roomgate", "step", "p99_ms"), med("load-sse", "roomgate", "step", "p99_ms")
        if pw and ps:
            text += "; at equal load (load-ws, load-sse: 4,000,000 deliveries/s) p99 {:.1f} ms over SSE vs {:.1f} ms over WS".format(ps, pw)
        add("SSE saturation within 15% of WS (not more than 15% below)", text, sse >= 0.85 * ws)
    ip = med("idle-plain", "roomgate", "connect", "bytes_per_conn")
    if ip is not None:
        add("idle memory ≤ 3 KB per plain WS connection", "{:,.0f} bytes/conn".format(ip), ip <= 3072)
    it = med("idle-tls", "roomgate", "connect", "bytes_per_conn")
    if it is not None:
        fl = FLOOR.get("dev", {}).get("bytes_per_conn")
        add("idle memory ≤ 12 KB per TLS WS connection", "{:,.0f} bytes/conn ({:+.0f}% vs 12 KB){}".format(
            it, 100 * (it / 12288 - 1),
            "; of which OpenSSL's own server SSL object after the handshake holds {:,.0f} (tls-floor), more than the target alone, and roomgate + lws {:,.0f}".format(
                fl, it - fl) if fl else ""), it <= 12288)
    runs = DATA.get("held-18k", {}).get("roomgate", [])
    if runs:
        ev = runs[0]
        c, i = ev.get("connect", {}), ev.get("idle", {})
        ok = c.get("ready") == c.get("conns") and i.get("subs_full") == i.get("subs_counted") == 18000
        add("18,000 concurrent connections held, every one still receiving",
            "{}/{} connected; {}/{} received every message; p99 {:.0f} ms".format(
                c.get("ready"), c.get("conns"), i.get("subs_full"), i.get("subs_counted"), i.get("p99_ms", 0)), ok)
    mr = DATA.get("many-rooms", {}).get("roomgate")
    if mr:
        p99 = med("many-rooms", "roomgate", "step", "p99_ms")
        pct = med("many-rooms", "roomgate", "step", "delivered_pct")
        hp = med("many-rooms-http", "roomgate", "step", "p99_ms")
        add("many-rooms p99 ≤ 2 ms at 5000 msg/s total (5000 subs, 500 rooms)",
            "p99 {:.2f} ms ({:.2f}× the 2 ms target), {:.2f}% delivered, published over WebSocket{}".format(
                p99, p99 / 2.0, pct, "; p99 {:.2f} ms published over HTTP/1.1 POST on keep-alive connections (many-rooms-http)".format(hp) if hp else ""),
            p99 <= 2.0 and pct >= 99)
    hs = med("idle-tls", "roomgate", "connect", "connect_ms")
    if hs is not None:
        rs = med("handshake-rsa", "roomgate", "connect", "connect_ms")
        add("10,000 TLS WS handshakes < 5 s", "{:.2f} s with the ECDSA P-256 dev cert{}".format(
            hs / 1000, "; {:.2f} s with RSA-2048 (handshake-rsa)".format(rs / 1000) if rs else ""), hs < 5000)
    for scen, base in (("sat-ws-c1000", "sat-ws"), ("sat-tls-c1000", "sat-tls")):
        c = med(scen, "roomgate", "search", "best_deliveries_per_s")
        b = med(base, "roomgate", "search", "best_deliveries_per_s")
        if c is not None and b:
            lines.append("| {} with `delivery.coalesce_us` 1000 instead of the default 0 | {:,.0f} deliveries/s ({:+.0f}% vs {:,.0f}) | reported |".format(
                base, c, 100 * (c / b - 1), b))
    h1, n1 = med("http-pub-h1", "roomgate", "httppub", "msgs_per_s"), med("http-pub-h1", "nchan", "httppub", "msgs_per_s")
    if h1 is not None and n1:
        add("HTTP/1.1 keep-alive publishes/s at 10 clients ≥ 1.5× nginx+nchan's",
            "{:,.0f} vs {:,.0f}/s: {:.2f}× nchan".format(h1, n1, h1 / n1), h1 >= 1.5 * n1)
    h2 = med("http-pub-h2tls", "roomgate", "httppub", "msgs_per_s")
    if h2 is not None and n1:
        add("HTTP/2 over TLS, one connection, 10 streams ≥ nginx+nchan's plain HTTP/1.1 rate",
            "{:,.0f} vs {:,.0f}/s: {:.2f}×".format(h2, n1, h2 / n1), h2 >= n1)
    hb = med("http-pub-batch", "roomgate", "httppub", "msgs_per_s")
    if hb is not None and n1:
        lines.append("| batch publish (100 a request) against nginx+nchan's one-by-one HTTP/1.1 keep-alive | {:,.0f} vs {:,.0f} messages/s: {:.2f}× | reported |".format(hb, n1, hb / n1))
    for scen, what in (("idle-plain", "10,000"), ("held-18k", "18,000")):
        rc, nc = med(scen, "roomgate", "connect", "connect_ms"), med(scen, "nchan", "connect", "connect_ms")
        if rc is not None and nc:
            add("%s WebSocket connect + join in ≤ 0.6× nginx+nchan's time (%s)" % (what, scen),
                "{:.2f} s vs {:.2f} s: {:.2f}×".format(rc / 1000, nc / 1000, rc / nc), rc <= 0.6 * nc)
    sr, sn = med("storm", "roomgate", "storm", "storm_caught_ms"), med("storm", "nchan", "storm", "storm_caught_ms")
    if sr is not None and sn:
        add("reconnect storm of 10,000 ≤ nginx+nchan's time", "all receiving after {:.2f} s vs {:.2f} s: {:.2f}×".format(
            sr / 1000, sn / 1000, sr / sn), sr <= sn)
    st = med("storm", "roomgate", "storm", "storm_caught_ms")
    if st is not None:
        rd = med("storm", "roomgate", "storm", "storm_ready_ms")
        lines.append("| reconnect storm: 10,000 dropped at once; time until all caught up | all rejoined after {:.2f} s, all receiving after {:.2f} s (no threshold set) | reported |".format(rd / 1000, st / 1000))
    return "\n".join(lines)


def profiles():
    out = []
    for md in sorted(glob.glob(os.path.join(OUT, "profile-*.md"))):
        name = os.path.basename(md)[len("profile-"):-3]
        lg = os.path.join(OUT, "profile-%s.jsonl" % name)
        step = ""
        if os.path.exists(lg):
            for line in open(lg):
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if d.get("event") == "step":
                    step = ("during the profile: {:,.0f} deliveries/s, {:.2f}% delivered, p99 {:.1f} ms, "
                            "server CPU {:.0f}%").format(d["deliveries_per_s"], d["delivered_pct"], d["p99_ms"], d["srv_cpu_pct"])
        out.append("### %s\n" % name)
        out.append("Flame graph: [flame-roomgate-%s.svg](flame-roomgate-%s.svg). %s\n" % (name, name, step))
        body = open(md).read().strip().split("\n")
        out.append("perf: %s (cpu-clock, 499 Hz, DWARF call graphs, 3 s)\n" % body[0])
        out.append("\n".join(body[1:]))
        out.append("")
    return "\n".join(out)


def tails():
    """The last line of each run's tail attribution (bench/tail_attrib.py)."""
    out = []
    for f in sorted(glob.glob(os.path.join(OUT, "*.tail.txt"))):
        scen, target, run = os.path.basename(f)[:-len(".tail.txt")].split("__")
        lines = open(f).read().strip().split("\n")
        out.append("| %s | %s | %s | %s |" % (scen, TNAME.get(target, target), run, lines[-1]))
    if not out:
        return ""
    return "\n".join(["| scenario | target | run | deliveries over 2 ms, and how many while another task held a CPU or it did not run |",
                      "|---|---|---|---|"] + out)


def raw_runs():
    out = ["| scenario | target | run | headline |", "|---|---|---|---|"]
    for scen in DATA:
        for t in TARGETS:
            for ev in DATA[scen].get(t, []):
                c = ev.get("connect", {})
                s = ev.get("search") or ev.get("step") or ev.get("idle") or ev.get("storm") or {}
                if "search" in ev:
                    h = "best {:,.0f} deliv/s at {:,.0f} msg/s (p99 {:.1f} ms), first fail {:,.0f} msg/s, {} steps; other procs {} / {} % CPU".format(
                        s["best_deliveries_per_s"], s["best_rate"], s["best_p99_ms"], s["first_fail_rate"], s["steps"],
                        "%.0f" % s["best_other_cpu_pct"] if "best_other_cpu_pct" in s else "?",
                        "%.0f" % s["fail_other_cpu_pct"] if "fail_other_cpu_pct" in s else "?")
                elif "httppub" in ev:
                    d = ev["httppub"]
                    h = "{:,.0f} messages/s ({:,.0f} requests/s), {} of {} 2xx, {} failed, srv CPU {:.0f}%".format(
                        d["msgs_per_s"], d["req_per_s"], d["status_2xx"], d["requests"], d["failed"], d["srv_cpu_pct"])
                elif "storm" in ev:
                    h = "rejoined {:.0f} ms, receiving {:.0f} ms, {} caught up".format(
                        s["storm_ready_ms"], s["storm_caught_ms"], s["storm_caught"])
                elif s:
                    h = "{:.2f}% delivered, p50 {:.2f} p99 {:.2f} max {:.1f} ms, srv CPU {:.0f}%, other procs {} % CPU; {:,.0f} B/conn, connect {:.0f} ms".format(
                        s["delivered_pct"], s["p50_ms"], s["p99_ms"], s["max_ms"], s["srv_cpu_pct"],
                        "%.0f" % s["other_cpu_pct"] if "other_cpu_pct" in s else "?",
                        c.get("bytes_per_conn", 0), c.get("connect_ms", 0))
                else:
                    h = "no result (see the .log)"
                out.append("| %s | %s | %s | %s |" % (scen, TNAME[t], ev["_run"], h))
    return "\n".join(out)


def main():
    p = print
    p("# roomgate fan-out benchmark results\n")
    p("Written by `bench/run` on %s (%s s). **%s run(s) per scenario; each figure is the median** "
      "(min–max of the runs in small print). nginx+nchan and Node ws ran in the same session on the "
      "same machine: read the ratio columns, not the absolute numbers.\n" % (META.get("date", "?"), META.get("elapsed_s", "?"), META.get("runs", "?")))
    p("## Machine and software\n")
    p("- CPU: %s; memory %s; %s, kernel %s" % (META.get("cpu"), META.get("mem"), META.get("os"), META.get("kernel")))
    p("- roomgate: %s; libwebsockets %s; OpenSSL %s" % (META.get("roomgate"), META.get("lws"), META.get("openssl")))
    p("- peers: nginx %s + libnginx-mod-nchan %s (1 worker); Node.js %s + ws %s (one process)" % (
        META.get("nginx"), META.get("nchan"), META.get("node"), META.get("ws")))
    p("- placement: %s; fd limit %s; load average at the end %s" % (
        "every server pinned to CPU 0, the load generator to CPU 1 (taskset)" if META.get("pinned") == "1" else "not pinned",
        META.get("fd_limit"), META.get("loadavg_end")))
    p("- load generator: bench/loadgen.c, one epoll thread, on the same machine over loopback; latency = receive time − "
      "the message's scheduled send time (CLOCK_MONOTONIC, carried in the data), so publisher lateness counts against the server; "
      "pass rule: ≥ 99% of expected deliveries and p99 ≤ 100 ms (over delivered messages)")
    raw = med("sat-ws", "raw", "search", "best_deliveries_per_s")
    if raw:
        p("- load generator ceiling: it absorbed {:,.0f} deliveries/s (median) from the raw batched calibration server "
          "(bench/peers/rawfanout.c) at the pass rule, so figures well below that are the server's".format(raw))
    p("- shared machine: other test suites may have run during the session (\"other processes' CPU %\" rows: CPU taken by every "
      "process but the server and the load generator during the measurement, in % of one core, from /proc/*/stat); "
      "figures near a saturation point vary by tens of percent between runs\n")
    p("## Targets\n")
    p(targets())
    p("")
    rr = os.path.join(OUT, "reruns.txt")
    if os.path.exists(rr):
        p("Scenarios re-run later into these results (each with all its targets, so ratios stay same-session):\n")
        p("```")
        p(open(rr).read().strip())
        p("```\n")
    an = os.path.join(OUT, "anomalies.txt")
    if os.path.exists(an):
        p("## Anomalies seen by the harness\n")
        p("```")
        p(open(an).read().strip())
        p("```\n")
    p("## Scenarios\n")
    p(table())
    if FLOOR:
        p("### tls-floor: OpenSSL's heap per idle server connection (bench/peers/sslfloor.c)\n")
        p("The server side of 2000 in-process TLS connections over socketpairs, set up as roomgate's "
          "(SSL_MODE_RELEASE_BUFFERS), after the handshake and the session tickets; heap in use "
          "(mallinfo2) per connection, no sockets' or lws's memory in it.\n")
        p("| certificate | protocol | cipher | bytes/conn | OpenSSL |")
        p("|---|---|---|---:|---|")
        for cert, d in sorted(FLOOR.items()):
            p("| {} | {} | {} | {:,.0f} | {} |".format(
                {"dev": "ECDSA P-256 (dev cert)", "rsa": "RSA-2048"}.get(cert, cert),
                d.get("protocol"), d.get("cipher"), d.get("bytes_per_conn", 0), d.get("openssl")))
        p("")
    if META.get("profile_note"):
        p("## Profile\n\n%s\n" % META["profile_note"])
    else:
        pr = profiles()
        if pr:
            p("## Profile (roomgate, perf)\n")
            p(pr)
    tl = tails()
    if tl:
        p("## Latency tail: what else ran on the CPUs\n")
        p("The load generator's 10 ms timeline of slow deliveries (LG_TIMELINE) matched with "
          "sched_switch and 4 kHz cpu-clock samples on the server's and the load generator's CPUs (bench/tail_attrib.py; each run's detail in its .tail.txt).\n")
        p(tl)
        p("")
    p("## Every run\n")
    p(raw_runs())
    p("")
    cmds = os.path.join(OUT, "commands.txt")
    if os.path.exists(cmds):
        seen, lines = set(), []
        for line in open(cmds):
            key = re.sub(r"--label \S+", "", line)
            key = re.sub(r"--search-start \S+", "--search-start N", key)
            if key not in seen:
                seen.add(key)
                lines.append(line.rstrip())
        p("## Exact commands\n")
        p("Whole suite: `bench/run` (options: `--runs N`, `--quick`, `--only LIST`, `--no-perf`). "
          "It builds `loadgen` (`cc -O2 -g -std=c11 bench/loadgen.c -lssl -lcrypto -lpthread -lm`) and roomgate, "
          "starts each server fresh for each run (pinned with `taskset -c 0`, the load generator with `taskset -c 1`), "
          "and ran these (first run of each; `$PID` is the measured server process, for nginx its worker; later "
          "saturation runs start at half the first run's result):\n")
        p("```")
        p("\n".join(lines))
        p("```")


main()
