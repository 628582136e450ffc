// Observability peer for tests/observe.rs: a Node `ws` 8.x server that
// counts what it received and sent, answers pings late, and sets response
// headers, so wsc's statistics, round-trip times and handshake details are
// checked against a WebSocket stack wsc did not write.
//
// Paths:
//   /count           echoes every message; the text "report" is answered
//                    with JSON {received, receivedBytes, sent, sentBytes,
//                    pings} counted before it (payload bytes, data messages)
//   /delayed-pong?ms=N  answers each ping N ms late (autoPong off)
//   /cookies         the 101 carries two Set-Cookie headers and X-Custom
//   /deny            refused: 401 with WWW-Authenticate and X-Reason
//
// Prints {"port": N}, then serves on 127.0.0.1 until stdin closes.
'use strict';

const http = require('http');
const { WebSocketServer } = require('ws');

const normal = new WebSocketServer({ noServer: true });
const late = new WebSocketServer({ noServer: true, autoPong: false });

normal.on('headers', (headers, req) => {
  if (new URL(req.url, 'http://localhost').pathname === '/cookies') {
    headers.push('Set-Cookie: session=abc123; Path=/');
    headers.push('Set-Cookie: theme=dark');
    headers.push('X-Custom: wsc-observability');
  }
});

function count(ws) {
  const c = { received: 0, receivedBytes: 0, sent: 0, sentBytes: 0, pings: 0 };
  ws.on('ping', () => { c.pings += 1; });
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.toString() === 'report') {
      ws.send(JSON.stringify(c));
      return;
    }
    c.received += 1;
    c.receivedBytes += data.length;
    c.sent += 1;
    c.sentBytes += data.length;
    ws.send(data, { binary: isBinary });
  });
}

function delayedPong(ws, ms) {
  ws.on('ping', (data) => setTimeout(() => ws.pong(data), ms));
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

const server = http.createServer((req, res) => { res.writeHead(404); res.end(); });
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://localhost');
  socket.on('error', () => {});
  if (url.pathname === '/deny') {
    socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="wsc"\r\n' +
      'X-Reason: token expired\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  if (url.pathname === '/delayed-pong') {
    const ms = Number(url.searchParams.get('ms') || '100');
    late.handleUpgrade(req, socket, head, (ws) => { ws.on('error', () => {}); delayedPong(ws, ms); });
    return;
  }
  normal.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', () => {});
    if (url.pathname === '/count') count(ws);
    else ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
