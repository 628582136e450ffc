"""Interop peer: a Python `websockets` (asyncio) client that wsc did not write,
talking to a wsc endpoint server (tests/server_interop.rs). node_client.js
does the same with Node `ws`.

    py_client.py echo URL             send text and binary of every size in
                                      SIZES, check each echo (content and type),
                                      then close with 1000
    py_client.py close URL CODE REASON
                                      send "before close", check the echo, close
                                      with CODE and REASON, print the Close the
                                      server answered with
    py_client.py status URL           connect; print the HTTP status of the
                                      refused upgrade (InvalidStatus)

Prints one line per check ("ok ..."), and one JSON line for `close` and
`status`; exits non-zero on the first mismatch.
"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20]


def text_pattern(size):
    """The same text as tests/interop.rs's text_pattern: a multi-byte pattern
    cut to `size` bytes on a character boundary, padded with '.'."""
    unit = "wsc-é€😀|"
    data = (unit * (size // len(unit.encode()) + 1)).encode()[:size]
    data = data.decode("utf-8", "ignore").encode()
    return (data + b"." * (size - len(data))).decode()


def binary_pattern(size):
    return bytes(i % 251 for i in range(size))


def fail(why):
    print("FAILED: " + why, flush=True)
    sys.exit(1)


async def echo(url):
    async with connect(url, max_size=None) as ws:
        for size in SIZES:
            text, binary = text_pattern(size), binary_pattern(size)
            await ws.send(text)
            await ws.send(binary)
            got = await ws.recv()
            if not isinstance(got, str) or got != text:
                fail("text of %d bytes: got %s of %d" % (size, type(got).__name__, len(got)))
            got = await ws.recv()
            if not isinstance(got, bytes) or got != binary:
                fail("binary of %d bytes: got %s of %d" % (size, type(got).__name__, len(got)))
            print("ok echo text and binary of %d bytes" % size, flush=True)
        await ws.close()
        print(json.dumps({"close": ws.close_code}), flush=True)


async def close(url, code, reason):
    async with connect(url) as ws:
        await ws.send("before close")
        if await ws.recv() != "before close":
            fail("no echo before the close")
        await ws.close(code, reason)
        rcvd = ws.protocol.close_rcvd
        print(json.dumps({"code": rcvd.code if rcvd else None, "reason": rcvd.reason if rcvd else None}), flush=True)


async def status(url):
    try:
        async with connect(url):
            fail("the upgrade was accepted")
    except InvalidStatus as e:
        print(json.dumps({"status": e.response.status_code}), flush=True)


def main():
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "echo":
        asyncio.run(echo(url))
    elif mode == "close":
        asyncio.run(close(url, int(sys.argv[3]), sys.argv[4]))
    elif mode == "status":
        asyncio.run(status(url))
    else:
        fail("unknown mode " + mode)


if __name__ == "__main__":
    main()
