"""The layering of the tree, checked from the compiler's own dependency output (-M for
every source, with the exact flags of the build's compile_commands.json):

- gateway/ is the transport-agnostic core: no libwebsockets, libev or hiredis header,
  nothing from protocols/ or engine/. gateway/main.c, the composition root, is the one
  exception: it may include protocols/server.h and engine/redis.h.
- engine/ (the Redis engine) sees the core and its own headers, libev and hiredis:
  nothing from protocols/, no libwebsockets.
- protocols/: a protocol (ws_chat, sse, http_api, static_files) includes from
  protocols/ only its own header and the shared server headers (srv.h, http_reply.h,
  credentials.h, access.h);
  server.c, which assembles them, includes theirs.
- The protocols reach libev only through the server's helpers (srv.h): no protocol
  calls an ev_* function itself.

Usage: layering.py BUILD_DIR. Prints each violation; exits 1 if there is any."""
import json
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = {"srv.h", "http_reply.h", "credentials.h", "access.h"}
PROTOCOLS = {"ws_chat", "sse", "http_api", "static_files"}


def deps(entry):
    """The files the compiler reads for entry's source (absolute, normalised)."""
    args = entry.get("arguments") or shlex.split(entry["command"])
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD") or a.startswith("-fsanitize"):
            continue
        out.append(a)
    p = subprocess.run(out + ["-M", "-MG"], cwd=entry["directory"], capture_output=True,
                       text=True)
    if p.returncode:
        raise SystemExit(f"layering: {' '.join(out)} -M failed:\n{p.stderr}")
    text = p.stdout.replace("\\\n", " ")
    files = text.split(":", 1)[1].split()
    return [os.path.normpath(os.path.join(entry["directory"], f)) for f in files]


def rel(path):
    return os.path.relpath(path, ROOT)


def check(src, files):
    problems = []
    src_rel = rel(src)
    top, name = os.path.split(src_rel)
    stem = os.path.splitext(name)[0]
    for f in files:
        if f == src:
            continue
        r = rel(f)
        base = os.path.basename(f)
        is_lws = "libwebsockets" in f or base in ("lws_config.h", "libwebsockets.h")
        if top == "gateway":
            if (r.startswith("protocols/") or r.startswith("engine/")) and not (
                    name == "main.c" and r in ("protocols/server.h", "engine/redis.h")):
                problems.append(f"{src_rel} includes {r}")
            if "hiredis" in f:
                problems.append(f"{src_rel} includes hiredis ({f})")
            if (is_lws or base == "ev.h") and name != "main.c":
                what = "libev" if base == "ev.h" else "libwebsockets"
                line = f"{src_rel} includes {what} ({f})"
                if not any(p.startswith(f"{src_rel} includes {what} ") for p in problems):
                    problems.append(line)
        elif top == "engine":
            if r.startswith("protocols/") or is_lws:
                problems.append(f"{src_rel} includes {r}")
        elif top == "protocols" and stem in PROTOCOLS:
            if r.startswith("protocols/") and base not in SHARED and base != stem + ".h":
                problems.append(f"{src_rel} includes {r}")
    if top == "protocols" and stem in PROTOCOLS:
        with open(src) as fh:
            for n, line in enumerate(fh, 1):
                if re.search(r"\bev_[a-z_]+\s*\(", line):
                    problems.append(f"{src_rel}:{n} calls libev itself: {line.strip()}")
    return problems


def main():
    build = sys.argv[1]
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    checked, problems = 0, []
    for e in entries:
        src = os.path.normpath(os.path.join(e["directory"], e["file"]))
        if rel(src).split(os.sep)[0] not in ("gateway", "protocols", "engine"):
            continue
        checked += 1
        problems += check(src, deps(e))
    for p in problems:
        print("layering:", p)
    print(f"layering: {checked} sources checked, {len(problems)} violation(s)")
    if checked < 10:
        print("layering: too few sources in compile_commands.json")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
