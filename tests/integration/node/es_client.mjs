// EventSource (npm "eventsource" v4) subscriber for the roomgate integration tests.
//
//   node es_client.mjs URL COUNT TIMEOUT_SECONDS
//
// Prints every `message` event as one JSON line {"id": lastEventId, "data": raw data}
// on stdout, "open" / "error ..." diagnostics on stderr. Exits 0 after COUNT
// messages, 2 on timeout. The gateway's certificate is self-signed: verification is
// switched off for this process only.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
process.removeAllListeners('warning'); // silence the "verification disabled" warning

const { EventSource } = await import('eventsource');

const [url, countArg, timeoutArg] = process.argv.slice(2);
if (!url || !countArg || !timeoutArg) {
  process.stderr.write('usage: node es_client.mjs URL COUNT TIMEOUT_SECONDS\n');
  process.exit(64);
}
const want = Number(countArg);
let got = 0;

const es = new EventSource(url);
const finish = (code) => {
  es.close();
  process.stdout.write('', () => process.exit(code));
};
const timer = setTimeout(() => {
  process.stderr.write(`timeout after ${got} of ${want} messages\n`);
  finish(2);
}, Number(timeoutArg) * 1000);

es.onopen = () => process.stderr.write('open\n');
es.onerror = (ev) => process.stderr.write(`error ${ev.code ?? ''} ${ev.message ?? ''}\n`);
es.addEventListener('message', (ev) => {
  process.stdout.write(JSON.stringify({ id: ev.lastEventId, data: ev.data }) + '\n');
  got += 1;
  if (got >= want) {
    clearTimeout(timer);
    finish(0);
  }
});
