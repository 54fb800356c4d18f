#!/usr/bin/env python3
"""bench/tail_attrib.py TIMELINE SCHED CPUS: what else ran when deliveries were slow.

TIMELINE is the load generator's LG_TIMELINE file (10 ms buckets of the publish schedule with
deliveries over 2 ms); SCHED is `perf script -F cpu,time,event,trace` of sched:sched_switch
and cpu-clock sampled every 250 us, recorded with -k CLOCK_MONOTONIC (the load generator's
clock) on CPUS (comma-separated: the server's and the load generator's). Each slow bucket is
matched with what else held one of those CPUs over 1 ms within 10 ms of it: another task, or
nothing at all (no sample for over 1 ms: the virtual CPU was not running, or had interrupts
off). The last line says which share of the slow deliveries falls in such buckets."""
import re
import sys

OURS = ("swapper", "roomgate", "nginx", "node", "lg", "loadgen")


def main():
    tl, sch = sys.argv[1], sys.argv[2]
    cpus = {int(c) for c in sys.argv[3].split(",")}
    start, slow = None, []
    for line in open(tl):
        m = re.match(r"# .*start ([\d.]+) s", line)
        if m:
            start = float(m.group(1))
            continue
        f = line.split()
        if start is not None and len(f) == 5 and int(f[2]) > 0:
            slow.append((start + int(f[0]) / 1e3, int(f[2]), float(f[3])))
    runs, last, tick = [], {}, {}
    for line in open(sch):
        m = re.match(r"\[(\d+)\]\s+([\d.]+):\s+cpu-clock", line)
        if m and int(m.group(1)) in cpus:
            cpu, t = int(m.group(1)), float(m.group(2))
            if cpu in tick and t - tick[cpu] > 0.001:
                runs.append((tick[cpu], t, "no samples on CPU %d" % cpu))
            tick[cpu] = t
            continue
        m = re.match(r"\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch: .*==> next_comm=(.+?) next_pid", line)
        cpu = int(m.group(1)) if m else -1
        if cpu not in cpus:
            continue
        t = float(m.group(2))
        prev = last.get(cpu)
        if prev and not prev[1].startswith(OURS) and t - prev[0] > 0.001:
            runs.append((prev[0], t, "%s on CPU %d" % (prev[1], cpu)))
        last[cpu] = (t, m.group(3))
    total = held = 0
    for t0, n, worst in slow:
        longest = {}
        for r in runs:
            if r[0] < t0 + 0.010 and r[1] > t0 - 0.010:
                longest[r[2]] = max(longest.get(r[2], 0), (r[1] - r[0]) * 1e3)
        who = ["%s (up to %.1f ms)" % kv for kv in sorted(longest.items())]
        total += n
        held += n if who else 0
        print("%7.3f s  %4d over 2 ms  max %6.2f ms  %s" % (t0 - start, n, worst, ", ".join(who) or "-"))
    print("tail: %d deliveries over 2 ms, %d (%.0f%%) while another task held a CPU, or it did not run, over 1 ms"
          % (total, held, 100.0 * held / total if total else 0))


if __name__ == "__main__":
    main()
