// Interop peer: a Node `ws` client that wsc did not write, talking to a wsc
// endpoint server (tests/server_interop.rs). The same modes and output as
// py_client.py:
//
//   node_client.js echo URL                 echo text and binary of every size
//   node_client.js close URL CODE REASON    close with CODE and REASON
//   node_client.js status URL               the HTTP status of a refused upgrade
"use strict";

const WebSocket = require("ws");

const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20];

function textPattern(size) {
  const unit = Buffer.from("wsc-é€😀|");
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = unit[i % unit.length];
  // Cut on a character boundary (drop a trailing partial sequence), pad with '.'.
  let valid = size;
  for (let back = 1; back <= Math.min(3, size); back++) {
    const b = data[size - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    if (need > back) valid = size - back;
    break;
  }
  data.fill(".".charCodeAt(0), valid);
  return data.toString("utf8");
}

function binaryPattern(size) {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = i % 251;
  return b;
}

function fail(why) {
  console.log("FAILED: " + why);
  process.exit(1);
}

function open(url) {
  const ws = new WebSocket(url, { maxPayload: 64 << 20 });
  ws.on("error", (e) => fail("error: " + e.message));
  return ws;
}

function echo(url) {
  const ws = open(url);
  const expected = [];
  ws.on("open", () => {
    for (const size of SIZES) {
      ws.send(textPattern(size));
      ws.send(binaryPattern(size));
      expected.push([size, false, textPattern(size)], [size, true, binaryPattern(size)]);
    }
  });
  ws.on("message", (data, isBinary) => {
    const [size, binary, want] = expected.shift();
    if (isBinary !== binary) fail(`message of ${size} bytes: binary=${isBinary}, expected ${binary}`);
    if (binary ? !data.equals(want) : data.toString("utf8") !== want) {
      fail(`${binary ? "binary" : "text"} of ${size} bytes: got ${data.length} different bytes`);
    }
    if (binary) console.log(`ok echo text and binary of ${size} bytes`);
    if (expected.length === 0) ws.close(1000);
  });
  ws.on("close", (code) => console.log(JSON.stringify({ close: code })));
}

function close(url, code, reason) {
  const ws = open(url);
  ws.on("open", () => ws.send("before close"));
  ws.on("message", (data) => {
    if (data.toString() !== "before close") fail("no echo before the close");
    ws.close(code, reason);
  });
  ws.on("close", (c, r) => console.log(JSON.stringify({ code: c, reason: r.toString() })));
}

function status(url) {
  const ws = new WebSocket(url);
  ws.on("open", () => fail("the upgrade was accepted"));
  ws.on("unexpected-response", (req, res) => {
    console.log(JSON.stringify({ status: res.statusCode }));
    req.destroy();
  });
  ws.on("error", () => {}); // the destroyed request
}

const [mode, url, code, reason] = process.argv.slice(2);
if (mode === "echo") echo(url);
else if (mode === "close") close(url, Number(code), reason);
else if (mode === "status") status(url);
else fail("unknown mode " + mode);
