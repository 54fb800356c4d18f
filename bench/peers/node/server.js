'use strict';
/*
 * Node.js peer for bench/: a plain `ws` broadcast server speaking roomgate's protocol
 * subset, so bench/loadgen drives it unchanged.
 *   WebSocket /ws: {"type":"join","room"} -> joined; {"type":"publish","room","data"} ->
 *     ack + {"type":"message","room","seq","ts","data"} to every member; ping -> pong.
 *   POST /rooms/{room}/messages (JSON body) -> 201 {"room","seq"}, then broadcast.
 *   GET /events?room=R -> SSE: "id: SEQ\nevent: message\ndata: {...}\n\n".
 * Broadcast is the idiomatic one: encode once, ws.send() to every member.
 * usage: node server.js --port P [--tls-port Q --cert FILE --key FILE]
 */
const http = require('http');
const https = require('https');
const fs = require('fs');
const { WebSocketServer } = require('ws');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];

const rooms = new Map(); // name -> { seq, ws: Set<WebSocket>, sse: Set<ServerResponse> }
const ROOM_RE = /^[A-Za-z0-9_.:@~-]{1,128}$/;

function room(name) {
  let r = rooms.get(name);
  if (!r) {
    r = { seq: 0, ws: new Set(), sse: new Set() };
    rooms.set(name, r);
  }
  return r;
}

function publish(name, data) {
  const r = room(name);
  const seq = ++r.seq;
  const json = `{"type":"message","room":"${name}","seq":${seq},"ts":${Date.now()},"data":${JSON.stringify(data)}}`;
  if (r.ws.size) {
    const buf = Buffer.from(json);
    for (const ws of r.ws) ws.send(buf, { binary: false });
  }
  if (r.sse.size) {
    const ev = Buffer.from(`id: ${seq}\nevent: message\ndata: ${json}\n\n`);
    for (const res of r.sse) res.write(ev);
  }
  return seq;
}

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false,
  handleProtocols: (protocols) => (protocols.has('roomgate.v1') ? 'roomgate.v1' : false) });

wss.on('connection', (ws) => {
  const joined = new Set();
  const answer = (obj, id) => { if (id !== undefined) obj.id = id; ws.send(JSON.stringify(obj)); };
  ws.on('message', (raw, isBinary) => {
    let m;
    try { m = JSON.parse(raw); } catch { return answer({ type: 'error', code: 'bad_json', message: 'not JSON' }); }
    if (isBinary || !m || typeof m !== 'object') return answer({ type: 'error', code: 'bad_request', message: 'expected an object' });
    const name = m.room;
    switch (m.type) {
      case 'join':
        if (typeof name !== 'string' || !ROOM_RE.test(name)) return answer({ type: 'error', code: 'bad_request', message: 'room' }, m.id);
        room(name).ws.add(ws);
        joined.add(name);
        return answer({ type: 'joined', room: name, seq: room(name).seq }, m.id);
      case 'leave':
        if (!joined.has(name)) return answer({ type: 'error', code: 'not_joined', message: 'not joined' }, m.id);
        room(name).ws.delete(ws);
        joined.delete(name);
        return answer({ type: 'left', room: name }, m.id);
      case 'publish': {
        if (!joined.has(name)) return answer({ type: 'error', code: 'not_joined', message: 'join first' }, m.id);
        const seq = publish(name, m.data);
        return answer({ type: 'ack', room: name, seq }, m.id);
      }
      case 'ping':
        return answer({ type: 'pong' }, m.id);
      default:
        return answer({ type: 'error', code: 'unknown_type', message: 'type' }, m.id);
    }
  });
  ws.on('close', () => { for (const name of joined) room(name).ws.delete(ws); });
  ws.on('error', () => {});
});

function onRequest(req, res) {
  const url = new URL(req.url, 'http://x');
  const pm = /^\/rooms\/([^/]+)\/messages$/.exec(url.pathname);
  if (pm && req.method === 'POST') {
    const name = decodeURIComponent(pm[1]);
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let data;
      try { data = JSON.parse(Buffer.concat(chunks)); } catch {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        return res.end('{"error":{"code":"bad_json","message":"not JSON"}}');
      }
      if (!ROOM_RE.test(name)) { res.writeHead(400); return res.end(); }
      const seq = publish(name, data);
      const body = `{"room":"${name}","seq":${seq}}`;
      res.writeHead(201, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
    return;
  }
  if (url.pathname === '/events' && req.method === 'GET') {
    const name = url.searchParams.get('room');
    if (!name || !ROOM_RE.test(name)) { res.writeHead(400); return res.end(); }
    const r = room(name);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.write('retry: 3000\n\n');
    r.sse.add(res);
    req.on('close', () => r.sse.delete(res));
    return;
  }
  if (url.pathname === '/healthz') { res.writeHead(200, { 'Content-Type': 'application/json' }); return res.end('{"status":"ok"}'); }
  res.writeHead(404);
  res.end();
}

function onUpgrade(req, socket, head) {
  if (new URL(req.url, 'http://x').pathname !== '/ws') return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
}

function serve(server, port) {
  server.keepAliveTimeout = 0; // publishers keep their connection between runs
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.on('upgrade', onUpgrade);
  server.listen({ port: Number(port), host: args.host || '127.0.0.1', backlog: 4096 });
}

serve(http.createServer(onRequest), args.port || 9101);
if (args['tls-port']) {
  serve(https.createServer({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) }, onRequest), args['tls-port']);
}
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
