"""Interop peer: a Python `websockets` (asyncio) server that wsc did not write.

The scenarios are chosen by the request path, so one process serves every
interop test at once; node_server.js implements the same paths with Node `ws`,
and tests/interop.rs runs the same tests against both.

    /echo                     echo every text and binary message
    /headers                  first message: JSON of the request headers; then echo
    /close?code=C&reason=R    close at once with C and R (no code: a Close with no status)
    /drop                     send "bye", then reset the TCP connection (no Close)
    /invalid-utf8?token=T     send a text frame that is not UTF-8
    /fragments?n=N&size=S&type=text|binary
                              send one S-byte message in N fragments; then echo
    /ping?count=N             ping N times (payload "ping-<i>"), wait for each pong,
                              then send "pongs N"
    /record?token=T           echo; remember the Close code and reason the client sent
    /report?token=T           send that record as JSON {"code":C,"reason":R}, then close

Listeners: plain and TLS (good, wrong host, expired certificate), each on
127.0.0.1 and ::1 with the same port. Prints one JSON line with the ports,
then serves until its standard input closes (so it never outlives the test
process that started it) or it is killed.

Usage: py_server.py CERT_DIR
"""

import asyncio
import json
import os
import socket
import ssl
import sys
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

SUBPROTOCOLS = ["wsc.test.v2", "wsc.test.v1"]
RECORDS = {}
RECORDED = {}


def compact(value):
    """JSON as Node's JSON.stringify writes it, so the tests parse one form."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def pattern(size, text):
    unit = "wsc-é€😀|" if text else None
    if text:
        reps = size // len(unit.encode()) + 1
        data = (unit * reps).encode()[:size]
        # Cut on a character boundary, then pad with ASCII to the exact size.
        data = data.decode("utf-8", "ignore").encode()
        return data + b"." * (size - len(data))
    return bytes(i % 251 for i in range(size))


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def record(ws, token):
    try:
        await echo(ws)
    except ConnectionClosed:
        pass
    rcvd = ws.protocol.close_rcvd
    RECORDS[token] = {
        "code": rcvd.code if rcvd else None,
        "reason": rcvd.reason if rcvd else None,
    }
    RECORDED.setdefault(token, asyncio.Event()).set()


async def report(ws, token):
    event = RECORDED.setdefault(token, asyncio.Event())
    try:
        await asyncio.wait_for(event.wait(), 10)
    except asyncio.TimeoutError:
        pass
    await ws.send(compact(RECORDS.get(token)))
    await ws.close()


async def close_now(ws, query):
    if "code" not in query:
        async with ws.send_context():
            ws.protocol.send_close()
        await ws.wait_closed()
        return
    await ws.close(int(query["code"]), query.get("reason", ""))


async def drop(ws):
    await ws.send("bye")
    await asyncio.sleep(0.05)  # let "bye" leave before the reset
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    ws.transport.abort()


async def invalid_utf8(ws, token):
    await ws.send(b"invalid \xc3\x28 text", text=True)
    await record(ws, token)


async def fragments(ws, query):
    n, size = int(query["n"]), int(query["size"])
    text = query.get("type", "text") == "text"
    data = pattern(size, text)
    cuts = [size * i // n for i in range(n + 1)]
    parts = [data[cuts[i] : cuts[i + 1]] for i in range(n)]
    if text:
        # websockets sends str fragments; cutting bytes mid-character is the
        # interesting case, so send bytes marked as text.
        await ws.send(parts, text=True)
    else:
        await ws.send(parts)
    await echo(ws)


async def pings(ws, query):
    count = int(query.get("count", "3"))
    for i in range(count):
        waiter = await ws.ping(f"ping-{i}".encode())
        await asyncio.wait_for(waiter, 10)
    await ws.send(f"pongs {count}")
    await echo(ws)


async def handler(ws):
    url = urlsplit(ws.request.path)
    query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    try:
        if url.path == "/headers":
            headers = {k.lower(): v for k, v in ws.request.headers.raw_items()}
            await ws.send(compact(headers))
            await echo(ws)
        elif url.path == "/close":
            await close_now(ws, query)
        elif url.path == "/drop":
            await drop(ws)
        elif url.path == "/invalid-utf8":
            await invalid_utf8(ws, query["token"])
        elif url.path == "/fragments":
            await fragments(ws, query)
        elif url.path == "/ping":
            await pings(ws, query)
        elif url.path == "/record":
            await record(ws, query["token"])
        elif url.path == "/report":
            await report(ws, query["token"])
        else:
            await echo(ws)
    except ConnectionClosed:
        pass


def select_subprotocol(connection, offered):
    for p in offered:
        if p in SUBPROTOCOLS:
            return p
    return None


def tls_context(cert_dir, name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{cert_dir}/{name}.pem", f"{cert_dir}/{name}.key")
    return ctx


def loopback_pair():
    """Sockets on 127.0.0.1 and ::1 sharing one free port."""
    for _ in range(100):
        v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        v4.bind(("127.0.0.1", 0))
        port = v4.getsockname()[1]
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        v6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            v6.bind(("::1", port))
        except OSError:
            v4.close()
            v6.close()
            continue
        return port, [v4, v6]
    raise RuntimeError("no port free on both 127.0.0.1 and ::1")


async def stdin_closed():
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)


async def main(cert_dir):
    variants = {
        "plain": None,
        "good": tls_context(cert_dir, "good"),
        "wronghost": tls_context(cert_dir, "wronghost"),
        "expired": tls_context(cert_dir, "expired"),
    }
    ports, servers = {}, []
    for name, ctx in variants.items():
        port, socks = loopback_pair()
        ports[name] = port
        for sock in socks:
            sock.listen(1024)
            server = await serve(
                handler,
                sock=sock,
                ssl=ctx,
                select_subprotocol=select_subprotocol,
                compression=None,
                max_size=64 << 20,
                ping_interval=None,
                backlog=1024,
            )
            servers.append(server)
    print(compact(ports), flush=True)
    await stdin_closed()
    # Handler tasks may still be running, and websockets waits for them on
    # shutdown (a sleeping handler keeps the process alive): exit at once.
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
