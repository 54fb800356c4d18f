// A line protocol over stdin/stdout to one headless Chromium (Debian's, driven by npm
// playwright-core), so that the Python tests can drive pages between their own steps
// (restarting the gateway, publishing over HTTP). One JSON request per line:
//   {"id": N, "op": "page", "url": U}             -> {"id": N, "page": P}
//   {"id": N, "op": "eval", "page": P, "js": F, "arg": A}
//        F is the source of a function (async or not) run in the page with A
//   {"id": N, "op": "wait", "page": P, "js": F, "arg": A, "timeout": MS}
//        polls F in the page until it returns a truthy value
//   {"id": N, "op": "screenshot", "page": P, "path": FILE}
//   {"id": N, "op": "console", "page": P}         -> {"id": N, "lines": [...]}
//   {"id": N, "op": "websockets", "page": P}      -> {"id": N, "handshakes": [...]}
//        each WebSocket handshake of the page as the browser saw it: {url, status},
//        status 101 over HTTP/1.1, 200 over HTTP/2 (RFC 8441)
//   {"id": N, "op": "close"}
// Every answer is one line {"id": N, "ok": true, ...} or {"id": N, "ok": false,
// "error": "..."}. argv: the Chromium flags to add (for example --disable-http2).
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const browser = await chromium.launch({
	executablePath: process.env.RG_CHROMIUM || '/usr/bin/chromium',
	args: ['--no-sandbox', ...process.argv.slice(2)],
});
// The dev certificate is self-signed: the context accepts it, as a user who added
// it to the browser's trust store would.
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1000, height: 700 } });
const pages = [];
const logs = [];
const handshakes = [];

async function handle(req) {
	switch (req.op) {
	case 'page': {
		const page = await context.newPage();
		const n = pages.length;
		pages.push(page);
		logs.push([]);
		page.on('console', (m) => logs[n].push(`${m.type()}: ${m.text()}`));
		page.on('pageerror', (e) => logs[n].push(`pageerror: ${e.message}`));
		handshakes.push([]);
		const cdp = await context.newCDPSession(page);
		const urls = new Map();
		cdp.on('Network.webSocketCreated', (e) => urls.set(e.requestId, e.url));
		cdp.on('Network.webSocketHandshakeResponseReceived', (e) =>
			handshakes[n].push({ url: urls.get(e.requestId), status: e.response.status }));
		await cdp.send('Network.enable');
		const r = await page.goto(req.url);
		return { page: n, status: r ? r.status() : 0 };
	}
	case 'eval': {
		const fn = new Function(`return (${req.js});`)();
		return { value: await pages[req.page].evaluate(fn, req.arg ?? null) };
	}
	case 'wait': {
		const fn = new Function(`return (${req.js});`)();
		const h = await pages[req.page].waitForFunction(fn, req.arg ?? null,
			{ timeout: req.timeout ?? 10000, polling: 50 });
		return { value: await h.jsonValue() };
	}
	case 'screenshot':
		await pages[req.page].screenshot({ path: req.path, fullPage: true });
		return {};
	case 'console':
		return { lines: logs[req.page] };
	case 'websockets':
		return { handshakes: handshakes[req.page] };
	case 'close':
		await browser.close();
		return {};
	default:
		throw new Error(`unknown op ${req.op}`);
	}
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
	let req = {};
	try {
		req = JSON.parse(line);
		const out = await handle(req);
		process.stdout.write(JSON.stringify({ id: req.id, ok: true, ...out }) + '\n');
		if (req.op === 'close')
			break;
	} catch (e) {
		process.stdout.write(JSON.stringify({ id: req.id, ok: false, error: String(e && e.stack || e) }) + '\n');
	}
}
await browser.close().catch(() => {});
process.exit(0);
