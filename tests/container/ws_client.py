"""WebSocket client for the container smoke test (Debian's python3-websockets).

ws_client.py URL ROOM SECONDS: connects with subprotocol roomgate.v1 (certificate not
verified: the test's certificate is self-signed), joins ROOM, and prints every frame it
receives as one line, flushed, until the gateway closes the connection (then prints
"CLOSED <code>") or SECONDS pass (then prints "TIMEOUT").
"""
import asyncio
import json
import ssl
import sys

import websockets


async def main(url, room):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    async with websockets.connect(url, ssl=ctx, subprotocols=["roomgate.v1"],
                                  open_timeout=10, ping_interval=None) as ws:
        print("SUBPROTOCOL", ws.subprotocol, flush=True)
        await ws.send(json.dumps({"type": "join", "room": room}))
        try:
            while True:
                print(await ws.recv(), flush=True)
        except websockets.ConnectionClosed:
            print("CLOSED", ws.close_code, flush=True)


try:
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2]), float(sys.argv[3])))
except asyncio.TimeoutError:
    print("TIMEOUT", flush=True)
except Exception as e:  # printed for the test log
    print("ERROR", type(e).__name__, e, flush=True)
    sys.exit(1)
