"""A bounded, seeded HPACK fuzzer against the real gateway: random but structure-aware
header blocks (tests/attack/hpack_gen.py) on connection after connection, each followed
by a good client's GET /healthz. A death, a sanitizer report or a hang is saved with a
replay script in OUTDIR. Not part of ctest (its findings are: attack_test_h2); run it
after touching patches/lws/01xx, against an ASan build (scripts/test.sh's build-asan):

  ROOMGATE_BIN=build-asan/roomgate /usr/bin/python3 tests/attack/hpack_fuzz.py 1 300 /tmp/hf

usage: hpack_fuzz.py SEED SECONDS [OUTDIR]
"""
import json
import os
import random
import subprocess
import sys
import time

os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import attack  # noqa: E402,F401  (puts tests/integration, the harness, on the path)
from harness import Gateway, SANITIZER_MARKS  # noqa: E402
from test_h2 import H2, frame, HEADERS, CONTINUATION, DATA, END_HEADERS, END_STREAM, \
    PADDED, PRIORITY_FLAG  # noqa: E402
import hpack_gen as gen  # noqa: E402

OUT = sys.argv[3] if len(sys.argv) > 3 else "/tmp/hpack-fuzz"


def frames_for(r, sid, block, post):
    """HEADERS (+CONTINUATION) frames carrying block; returns list of bytes chunks."""
    es = 0 if post and r.random() < 0.7 else END_STREAM
    cuts = []
    if len(block) > 1 and r.random() < 0.3:
        k = r.choice([1, 2, 3, 5])
        cuts = sorted(set(r.randrange(1, len(block)) for _ in range(k)))
    if len(block) > 16000:
        cuts = sorted(set(cuts + list(range(16000, len(block), 16000))))
    parts, prev = [], 0
    for c in cuts + [len(block)]:
        parts.append(block[prev:c])
        prev = c
    out = []
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        if i == 0:
            flags = es | (END_HEADERS if last else 0)
            payload = p
            if r.random() < 0.05:
                pad = r.randrange(0, 20)
                flags |= PADDED
                payload = bytes([pad]) + p + b"\0" * pad
            if r.random() < 0.05:
                flags |= PRIORITY_FLAG
                payload = b"\x00\x00\x00\x00\x10" + payload
            out.append(frame(HEADERS, flags, sid, payload))
        else:
            out.append(frame(CONTINUATION, END_HEADERS if last else 0, sid, p))
    if out and r.random() < 0.02:  # END_HEADERS never comes
        out = out[:-1]
    if post and not es:
        out.append(frame(DATA, END_STREAM, sid, b'{"data":"x"}'))
    return out


def run_conn(gw, r, g, nreq):
    """One connection, nreq requests; returns the chunks sent (list of bytes)."""
    sent = []
    c = H2(gw, timeout=3)
    try:
        for _ in range(nreq):
            if c.eof or c.goaway:
                break
            sid = c.new_sid()
            block = g.block()
            post = b"POST" in block[:200] or r.random() < 0.1
            chunks = frames_for(r, sid, block, post)
            for ch in chunks:
                sent.append(ch)
                try:
                    c.send(ch)
                except OSError:
                    c.eof = True
                    break
            try:
                c.wait(lambda: c.streams[sid].done or c.goaway is not None, 0.25)
            except Exception:  # noqa: BLE001 - the client's own decoder, not our concern
                pass
    finally:
        c.close()
    return sent


def healthy(gw):
    try:
        c = H2(gw, timeout=2)
        try:
            s = c.response(c.request("GET", "/healthz"), timeout=2)
            return s.status == 200
        finally:
            c.close()
    except Exception as e:  # noqa: BLE001
        return False


def backtrace(pid):
    p = subprocess.run(["gdb", "-batch", "-p", str(pid), "-ex", "thread apply all bt 15"],
                       capture_output=True, text=True, timeout=60)
    return p.stdout[-6000:] + p.stderr[-1000:]


REPRO = '''#!/usr/bin/python3
"""Replays {name}.bin (the client's frames after the HTTP/2 preface+SETTINGS) against
a fresh gateway, one chunk per send as recorded in {name}.json; then checks health."""
import json, os, sys, time
os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
sys.path.insert(0, {attack!r}); sys.path.insert(0, {integration!r})
from harness import Gateway
from test_h2 import H2
here = os.path.dirname(os.path.abspath(__file__))
meta = json.load(open(os.path.join(here, "{name}.json")))
data = open(os.path.join(here, "{name}.bin"), "rb").read()
gw = Gateway().start()
try:
    pos = 0
    for conn in meta["connections"]:   # [[chunk lengths], ...], one list per connection
        c = H2(gw)
        for n in conn:
            try:
                c.send(data[pos:pos + n])
            except OSError:
                pass
            pos += n
            try:
                c.pump(0.2)
            except Exception:
                pass
        c.close()
    time.sleep(0.5)
    ok = False
    if gw.alive():
        try:
            c = H2(gw, timeout=2)
            ok = c.response(c.request("GET", "/healthz"), timeout=2).status == 200
        except Exception as e:
            print("healthz:", repr(e))
    print("alive:", gw.alive(), "healthz ok:", ok, "sanitizer:", gw.sanitizer_reports())
    if gw.alive() and not ok:
        os.system("gdb -batch -p %d -ex 'bt 15' 2>/dev/null | grep '^#'" % gw.proc.pid)
finally:
    gw.stop(3)
    err = gw.stderr()
    i = max(err.find("ERROR: AddressSanitizer"), err.find("runtime error"))
    print(err[i:i + 4000] if i >= 0 else err[-1500:])
'''


def save(n, conns, info):
    name = f"crash-{n}"
    data = b"".join(b"".join(c) for c in conns)
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(data)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"connections": [[len(x) for x in c] for c in conns], "info": info}, f,
                  indent=1)
    with open(os.path.join(OUT, name + ".py"), "w") as f:
        f.write(REPRO.format(name=name, attack=HERE,
                             integration=os.path.join(os.path.dirname(HERE), "integration")))
    return name


def main():
    seed, seconds = int(sys.argv[1]), float(sys.argv[2])
    os.makedirs(OUT, exist_ok=True)
    r = random.Random(seed)
    gw = Gateway().start()
    deadline = time.monotonic() + seconds
    conns = reqs = 0
    failures = []
    history = []  # chunks of the connections since the gateway started
    err_seen = 0
    try:
        while time.monotonic() < deadline and conns < 100000:
            g = gen.Gen(r)
            nreq = r.choice([1, 1, 2, 3])
            err = None
            try:
                sent = run_conn(gw, r, g, nreq)
            except Exception as e:  # noqa: BLE001
                sent, err = [], repr(e)
            conns += 1
            reqs += nreq
            history.append(sent)
            text = gw.stderr()
            marks = [m for m in SANITIZER_MARKS if m in text[err_seen:]]
            alive = gw.alive()
            ok = alive and not marks and healthy(gw)
            if ok:
                if len(history) > 50:
                    history = history[-50:]
                continue
            alive = gw.alive()
            kind = "sanitizer" if marks else ("died" if not alive else "hang/healthz")
            bt = backtrace(gw.proc.pid) if alive and not marks else ""
            info = {"kind": kind, "conn": conns, "marks": marks, "client_error": err,
                    "seed": seed, "stderr_tail": gw.stderr()[err_seen:][-8000:], "bt": bt}
            name = save(len(failures) + 1 + seed * 100, [sent] if sent else history[-1:], info)
            # also the whole history since the last (re)start, for state-dependent bugs
            hname = save(f"{len(failures) + 1 + seed * 100}-history", history, info)
            failures.append((name, kind))
            print(f"FAILURE {name} ({hname}): {kind} marks={marks} client={err}", flush=True)
            print(info["stderr_tail"][-3000:], flush=True)
            print(bt[-3000:], flush=True)
            gw.stop(3)
            gw = Gateway().start()
            history = []
            err_seen = 0
    finally:
        gw.stop(5)
        print(json.dumps({"seed": seed, "connections": conns, "requests": reqs,
                          "failures": failures}), flush=True)


if __name__ == "__main__":
    main()
