#!/usr/bin/python3
"""Minimal flame graph: `perf script` text in, folded stacks + an SVG out.

usage: perf script -i perf.data | bench/flamegraph.py --svg out.svg [--folded out.folded]
                                                      [--top N] [--title TEXT]
Prints the top N frames by self and by total (inclusive) samples as a Markdown table.
Debian has no flamegraph package, so this stands in for stackcollapse-perf + flamegraph.pl.
"""
import argparse
import collections
import html
import re
import sys
import zlib

FRAME = re.compile(r"^\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")


def frame_name(sym, dso):
    if sym.startswith("[unknown]") or not sym:
        base = dso.rsplit("/", 1)[-1] or "?"
        return "[%s]" % base
    sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
    return sym


def fold(lines):
    stacks = collections.Counter()
    comm, frames = None, []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if comm is not None:
                stacks[";".join([comm] + frames[::-1])] += 1
            comm, frames = None, []
            continue
        if not line[0].isspace():
            comm = line.split()[0]
            frames = []
            continue
        m = FRAME.match(line)
        if m and comm is not None:
            frames.append(frame_name(m.group(1), m.group(2)))
    if comm is not None:
        stacks[";".join([comm] + frames[::-1])] += 1
    return stacks


def top_tables(stacks, n):
    total = sum(stacks.values()) or 1
    self_c, incl_c = collections.Counter(), collections.Counter()
    for st, c in stacks.items():
        fr = st.split(";")
        self_c[fr[-1]] += c
        for f in set(fr[1:]):
            incl_c[f] += c
    out = ["| self % | frame |", "|---:|---|"]
    out += ["| %.1f | `%s` |" % (100.0 * c / total, f) for f, c in self_c.most_common(n)]
    # inclusive, without the trunk every sample shares (main, lws_service, ...)
    out += ["", "| total % | frame (inclusive; frames in ≥ 99% of samples left out) |", "|---:|---|"]
    out += ["| %.1f | `%s` |" % (100.0 * c / total, f)
            for f, c in [x for x in incl_c.most_common() if x[1] < 0.99 * total][:n]]
    return "\n".join(out), total


def color(name):
    h = zlib.crc32(name.encode())
    if name.startswith("["):  # unresolved library frames
        return "rgb(%d,%d,%d)" % (180 + h % 60, 180 + h % 50, 180 + h % 40)
    if "_[k]" in name or name.startswith(("__x64", "do_syscall", "entry_SYSCALL", "tcp_", "ip_", "sock_", "__sys", "__tcp", "_raw_spin")):
        return "rgb(%d,%d,%d)" % (200 + h % 55, 90 + h % 80, 40 + h % 40)
    return "rgb(%d,%d,%d)" % (220 + h % 35, 120 + h % 100, h % 55)


def svg(stacks, title, width=1200, fh=16):
    root = {"n": 0, "c": {}}
    for st, c in stacks.items():
        node = root
        node["n"] += c
        for f in st.split(";"):
            node = node["c"].setdefault(f, {"n": 0, "c": {}})
            node["n"] += c
    total = root["n"] or 1
    rects, depth_max = [], [0]
    xpad, ytop = 10, 40
    scale = (width - 2 * xpad) / total

    def walk(node, name, x, depth):
        w = node["n"] * scale
        if w < 0.3:
            return
        depth_max[0] = max(depth_max[0], depth)
        rects.append((name, x, depth, w, node["n"]))
        cx = x
        for child_name, child in sorted(node["c"].items()):
            walk(child, child_name, cx, depth + 1)
            cx += child["n"] * scale

    walk(root, "all", xpad, 0)
    height = ytop + (depth_max[0] + 1) * fh + 20
    out = [
        '<?xml version="1.0" standalone="no"?>',
        '<svg version="1.1" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg" '
        'font-family="Verdana" font-size="12">' % (width, height),
        '<rect x="0" y="0" width="100%" height="100%" fill="#f8f8f8"/>',
        '<text x="%d" y="24" font-size="16" text-anchor="middle">%s</text>' % (width // 2, html.escape(title)),
    ]
    for name, x, depth, w, n in rects:
        y = height - 20 - (depth + 1) * fh  # root at the bottom, like flamegraph.pl
        label = "%s (%d samples, %.2f%%)" % (name, n, 100.0 * n / total)
        out.append('<g><title>%s</title><rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" rx="2"/>'
                   % (html.escape(label), x, y, w, fh - 1, color(name)))
        chars = int(w / 7)
        if chars >= 3:
            text = name if len(name) <= chars else name[: chars - 2] + ".."
            out.append('<text x="%.1f" y="%d" font-size="11">%s</text>' % (x + 3, y + fh - 4, html.escape(text)))
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--svg")
    ap.add_argument("--folded")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--title", default="Flame graph")
    a = ap.parse_args()
    stacks = fold(sys.stdin)
    if a.folded:
        with open(a.folded, "w") as f:
            for st, c in sorted(stacks.items()):
                f.write("%s %d\n" % (st, c))
    if a.svg:
        with open(a.svg, "w") as f:
            f.write(svg(stacks, a.title))
    table, total = top_tables(stacks, a.top)
    print("%d samples\n\n%s" % (total, table))


if __name__ == "__main__":
    main()
