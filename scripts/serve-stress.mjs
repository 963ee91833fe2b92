#!/usr/bin/env node
// Load on `createServer()` over loopback: CLIENTS concurrent streaming clients for a bounded time
// (or request count); a fifth of the requests disconnect mid-stream, some send bad requests, and
// a burst beyond the queue must get 503 with Retry-After. Checks that every good request
// completes, every slot is freed at the end, no response carries a stack trace, and memory
// settles. Prints the figures. Bounded by --seconds and --requests, whichever comes first.
//   node scripts/serve-stress.mjs [MODEL.gguf] [--clients 50] [--seconds 120] [--requests 2000] [--parallel 4]
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, loadModel } from '../dist/index.js';
import { writeSyntheticModel } from '../dist/testing/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { clients: { type: 'string', default: '50' }, seconds: { type: 'string', default: '120' }, requests: { type: 'string', default: '2000' }, parallel: { type: 'string', default: '4' } },
});
let modelPath = positionals[0];
if (!modelPath) {
  modelPath = join(tmpdir(), 'hermes3-stress-tiny-q8_0.gguf');
  if (!existsSync(modelPath)) await writeSyntheticModel({ path: modelPath, shape: 'tiny', quant: 'Q8_0', seed: 7 });
}
const clients = Number(values.clients);
const deadline = Date.now() + Number(values.seconds) * 1000;
const maxRequests = Number(values.requests);
const parallel = Number(values.parallel);

const model = await loadModel({ modelPath });
const server = await createServer({ model, parallel, ctx: 1024, maxQueue: clients, maxTokens: 256 });
const url = new URL(await server.listen({ port: 0 }));
const stats = { ok: 0, disconnected: 0, bad: 0, busy: 0, failed: 0, stackTraces: 0, tokens: 0, ttft: [] };
const rss = [];
const sampler = setInterval(() => rss.push(process.memoryUsage().rss), 1000);
let started = 0;

function post(body, { abortAfterBytes, raw } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = request({ host: url.hostname, port: url.port, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      let first = 0;
      res.on('data', (d) => {
        if (!first) first = performance.now() - t0;
        text += d;
        if (abortAfterBytes && text.length > abortAfterBytes) {
          req.destroy();
          resolve({ status: res.statusCode, text, aborted: true });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode, text, first, headers: res.headers }));
      res.on('error', () => resolve({ status: res.statusCode, text, aborted: true }));
    });
    req.on('error', () => resolve({ status: 0, text: '', aborted: true }));
    req.end(raw ?? JSON.stringify(body));
  });
}

const chat = (i) => ({ model: server.modelId, messages: [{ role: 'user', content: `client ${i}: tell me a story` }], max_tokens: 32 + (i % 64), stream: true, stream_options: { include_usage: true } });
const BAD = ['{"model": ', JSON.stringify({ model: 'nope', messages: [] }), JSON.stringify({ model: 'x', messages: 'hi' }), JSON.stringify({ temperature: 9 })];

async function client(id) {
  for (let n = 0; Date.now() < deadline && started < maxRequests; n++) {
    const i = started++;
    const kind = i % 10;
    if (kind === 9) {
      const r = await post(null, { raw: BAD[i % BAD.length] });
      if (r.status >= 400 && r.status < 500) stats.bad++;
      else stats.failed++;
      if (/at .*\.(js|ts):\d+/.test(r.text)) stats.stackTraces++;
      continue;
    }
    const disconnect = kind === 1 || kind === 5; // a fifth of the requests
    const r = await post(chat(id * 1000 + n), disconnect ? { abortAfterBytes: 400 } : {});
    if (/at .*\.(js|ts):\d+/.test(r.text)) stats.stackTraces++;
    if (r.aborted) stats.disconnected++;
    else if (r.status === 503) {
      stats.busy++;
      if (!r.headers?.['retry-after']) stats.failed++;
    } else if (r.status === 200 && r.text.trimEnd().endsWith('data: [DONE]')) {
      stats.ok++;
      stats.ttft.push(r.first);
      const m = /"completion_tokens":(\d+)/.exec(r.text);
      if (m) stats.tokens += Number(m[1]);
    } else stats.failed++;
  }
}

const t0 = Date.now();
const progress = setInterval(() => console.error('progress', JSON.stringify({ started, ...stats, ttft: stats.ttft.length })), 5000);
await Promise.all(Array.from({ length: clients }, (_, id) => client(id)));
const seconds = (Date.now() - t0) / 1000;
clearInterval(progress);
console.error('main phase done');

// a burst beyond slots and queue: some must be answered 503 with Retry-After
const burst = await Promise.all(Array.from({ length: parallel + clients + 20 }, (_, i) => post({ ...chat(i), max_tokens: 64 })));
const burst503 = burst.filter((r) => r.status === 503 && r.headers?.['retry-after']).length;
const burstOk = burst.filter((r) => r.status === 200).length;

await new Promise((r) => setTimeout(r, 500));
const health = await (await fetch(new URL('/health', url))).json();
clearInterval(sampler);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const mb = (b) => (b / 1024 / 1024).toFixed(0);
const third = Math.floor(rss.length / 3);
console.log(`model ${modelPath}; ${clients} clients, ${parallel} slots, ${seconds.toFixed(0)} s, ${started} requests`);
console.log(`completed ${stats.ok}, disconnected mid-stream ${stats.disconnected}, bad requests answered 4xx ${stats.bad}, 503 ${stats.busy}, failed ${stats.failed}, stack traces ${stats.stackTraces}`);
console.log(`generated ${stats.tokens} tokens (${(stats.tokens / seconds).toFixed(1)} tok/s aggregate), median time to first byte ${median(stats.ttft).toFixed(0)} ms`);
console.log(`burst of ${burst.length}: ${burstOk} answered, ${burst503} got 503 with Retry-After`);
console.log(`after: slots busy ${health.slots_busy}, queue ${health.queue}`);
console.log(`RSS MB: first third median ${mb(median(rss.slice(0, third)))}, last third median ${mb(median(rss.slice(-third)))}, max ${mb(Math.max(...rss))}`);
await server.close();
await model.dispose();
const good = stats.failed === 0 && stats.stackTraces === 0 && health.slots_busy === 0 && health.queue === 0 && burst503 > 0;
process.exit(good ? 0 : 1);
