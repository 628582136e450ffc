// Interop peer: a Node `ws` 8.x server that wsc did not write.
//
// Serves the same paths as py_server.py (see the table there), so
// tests/interop.rs runs one set of tests against both. Listeners: plain and
// TLS (good, wrong host, expired certificate), each on 127.0.0.1 and ::1 with
// the same port. Prints one JSON line with the ports, then serves until its
// standard input closes (so it never outlives the test process) or it is
// killed.
//
// Usage: node node_server.js CERT_DIR
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const { WebSocketServer } = require('ws');

const SUBPROTOCOLS = ['wsc.test.v2', 'wsc.test.v1'];
const records = new Map();
const waiting = new Map();

function pattern(size, text) {
  if (!text) {
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i++) b[i] = i % 251;
    return b;
  }
  const unit = Buffer.from('wsc-é€😀|');
  let data = Buffer.alloc(0);
  if (size > 0) data = Buffer.from(unit.toString().repeat(Math.ceil(size / unit.length) + 1));
  data = Buffer.from(data.subarray(0, size).toString('utf8').replace(/\uFFFD+$/, ''));
  return Buffer.concat([data, Buffer.alloc(size - data.length, '.')]);
}

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

function record(ws, token) {
  echo(ws);
  ws.on('close', (code, reason) => {
    records.set(token, { code: code === 1005 ? 1005 : code, reason: reason.toString() });
    for (const f of waiting.get(token) || []) f();
    waiting.delete(token);
  });
}

function report(ws, token) {
  const send = () => {
    clearTimeout(timer);
    ws.send(JSON.stringify(records.has(token) ? records.get(token) : null));
    ws.close();
  };
  const timer = setTimeout(send, 10000);
  if (records.has(token)) return send();
  if (!waiting.has(token)) waiting.set(token, []);
  waiting.get(token).push(send);
}

function fragments(ws, q) {
  const n = Number(q.get('n'));
  const size = Number(q.get('size'));
  const text = (q.get('type') || 'text') === 'text';
  const data = pattern(size, text);
  for (let i = 0; i < n; i++) {
    const part = data.subarray(Math.floor((size * i) / n), Math.floor((size * (i + 1)) / n));
    ws.send(part, { binary: !text, fin: i === n - 1 });
  }
  echo(ws);
}

function pings(ws, q) {
  const count = Number(q.get('count') || '3');
  let i = 0;
  const next = () => {
    if (i === count) {
      ws.off('pong', onPong);
      ws.send(`pongs ${count}`);
      return echo(ws);
    }
    ws.ping(Buffer.from(`ping-${i}`));
  };
  const onPong = (data) => {
    if (data.toString() !== `ping-${i}`) return ws.close(4000, `wrong pong payload '${data}'`);
    i += 1;
    next();
  };
  ws.on('pong', onPong);
  next();
}

function handle(ws, req) {
  const url = new URL(req.url, 'http://localhost');
  const q = url.searchParams;
  ws.on('error', () => {});
  switch (url.pathname) {
    case '/headers': {
      const headers = {};
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        headers[req.rawHeaders[i].toLowerCase()] = req.rawHeaders[i + 1];
      }
      ws.send(JSON.stringify(headers));
      return echo(ws);
    }
    case '/close':
      return q.has('code') ? ws.close(Number(q.get('code')), q.get('reason') || '') : ws.close();
    case '/drop':
      ws.send('bye', () => setTimeout(() => ws._socket.resetAndDestroy(), 50));
      return;
    case '/invalid-utf8':
      // ws does not validate what it sends: a text frame that is not UTF-8.
      ws.send(Buffer.from('invalid \xc3\x28 text', 'latin1'), { binary: false });
      return record(ws, q.get('token'));
    case '/fragments':
      return fragments(ws, q);
    case '/ping':
      return pings(ws, q);
    case '/record':
      return record(ws, q.get('token'));
    case '/report':
      return report(ws, q.get('token'));
    default:
      return echo(ws);
  }
}

function handleProtocols(offered) {
  for (const p of offered) if (SUBPROTOCOLS.includes(p)) return p;
  return false;
}

function listen(server, host, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ipv6Only: host === '::1', backlog: 4096 }, () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

// One HTTP(S) server per address; both addresses share a port.
async function listenPair(makeServer) {
  for (let attempt = 0; attempt < 100; attempt++) {
    const v4 = makeServer();
    const port = await listen(v4, '127.0.0.1', 0);
    const v6 = makeServer();
    try {
      await listen(v6, '::1', port);
      return port;
    } catch (e) {
      v4.close();
    }
  }
  throw new Error('no port free on both 127.0.0.1 and ::1');
}

function maker(tls) {
  return () => {
    const server = tls ? https.createServer(tls) : http.createServer();
    const wss = new WebSocketServer({
      server,
      handleProtocols,
      perMessageDeflate: false,
      maxPayload: 64 << 20,
    });
    wss.on('connection', handle);
    return server;
  };
}

async function main(certDir) {
  const tls = (name) => ({
    cert: fs.readFileSync(`${certDir}/${name}.pem`),
    key: fs.readFileSync(`${certDir}/${name}.key`),
  });
  const ports = {
    plain: await listenPair(maker(null)),
    good: await listenPair(maker(tls('good'))),
    wronghost: await listenPair(maker(tls('wronghost'))),
    expired: await listenPair(maker(tls('expired'))),
  };
  process.stdout.write(JSON.stringify(ports) + '\n');
  process.stdin.on('data', () => {});
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
}

main(process.argv[2]).catch((e) => {
  console.error(e);
  process.exit(1);
});
