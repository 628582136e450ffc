"""A Python `websockets` echo server on 127.0.0.1 for the reconnect tests.

    python py_echo.py PORT      (0: a free port)

Prints {"port": N} once listening, then serves until killed.
"""
import asyncio
import json
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main(port):
    async with serve(echo, "127.0.0.1", port) as server:
        bound = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": bound}), flush=True)
        await asyncio.Future()


asyncio.run(main(int(sys.argv[1])))
