#!/usr/bin/env node
// Load on `hermes3 serve`: C clients streaming chat completions at once over HTTP, against the
// same work done through the library directly (one context, C sequences), in one run,
// interleaved. Prints aggregate tokens/s, time to first token and the HTTP layer's ratio.
// Bounded: ROUNDS rounds per level, each request TOKENS tokens.
//   node scripts/serve-load.mjs [MODEL.gguf] [--levels 1,2,4] [--tokens 64] [--rounds 3] [--threads N]
import { parseArgs } from 'node:util';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createServer, loadModel } from '../dist/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { levels: { type: 'string', default: '1,2,4' }, tokens: { type: 'string', default: '64' }, rounds: { type: 'string', default: '3' }, threads: { type: 'string' } },
});
const modelPath = positionals[0] ?? join(homedir(), '.cache', 'hermes3', 'bench', '1b-q4_k_m-seed1.gguf');
const levels = values.levels.split(',').map(Number);
const tokens = Number(values.tokens);
const rounds = Number(values.rounds);
const threads = values.threads ? Number(values.threads) : undefined;
const parallel = Math.max(...levels);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const prompt = (i, r) => [{ role: 'user', content: `Client ${i}, round ${r}: write a long story about the sea.` }];

const model = await loadModel({ modelPath });
const server = await createServer({ model, parallel, ctx: 1024, threads, maxTokens: tokens });
const url = await server.listen({ port: 0 });

async function overHttp(i, r) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: server.modelId, messages: prompt(i, r), max_tokens: tokens, temperature: 0.8, seed: i, stream: true, stream_options: { include_usage: true } }),
  });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let first = 0;
  let buffer = '';
  let generated = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    if (!first && buffer.includes('"content":"') && /"content":"[^"]/.test(buffer)) first = performance.now() - t0;
    const m = /"completion_tokens":(\d+)/.exec(buffer);
    if (m) generated = Number(m[1]);
    if (buffer.length > 65536) buffer = buffer.slice(-4096);
  }
  return { ttft: first, generated, ms: performance.now() - t0 };
}

const context = await model.createContext({ nCtx: 1024 * parallel, nSeqMax: parallel, kvUnified: false, threads });
const sequences = Array.from({ length: parallel }, () => context.sequence());
const { promptTokens } = await import('../dist/chat/prompt.js');
async function direct(i, r) {
  const t0 = performance.now();
  let first = 0;
  let generated = 0;
  const input = promptTokens(model, 'chatml', prompt(i, r));
  for await (const chunk of sequences[i].generateFrom(input, { maxTokens: tokens, temperature: 0.8, seed: i })) {
    if (!first && chunk.text) first = performance.now() - t0;
    generated += chunk.tokens.length;
  }
  return { ttft: first, generated, ms: performance.now() - t0 };
}

const results = {};
for (let r = 0; r < rounds; r++) {
  for (const level of levels) {
    for (const [name, run] of [['http', overHttp], ['library', direct]]) {
      const t0 = performance.now();
      const out = await Promise.all(Array.from({ length: level }, (_, i) => run(i, r)));
      const wall = performance.now() - t0;
      const key = `${name} ${level}`;
      (results[key] ??= []).push({ tps: (out.reduce((a, o) => a + o.generated, 0) * 1000) / wall, ttft: median(out.map((o) => o.ttft)) });
    }
  }
}
console.log(`model ${modelPath}, ${tokens} tokens per request, ${rounds} rounds, medians`);
console.log('clients | HTTP tok/s | library tok/s | ratio | HTTP TTFT ms | library TTFT ms');
for (const level of levels) {
  const h = results[`http ${level}`];
  const l = results[`library ${level}`];
  const ht = median(h.map((x) => x.tps));
  const lt = median(l.map((x) => x.tps));
  console.log(`${level} | ${ht.toFixed(1)} | ${lt.toFixed(1)} | ${(ht / lt).toFixed(2)} | ${median(h.map((x) => x.ttft)).toFixed(0)} | ${median(l.map((x) => x.ttft)).toFixed(0)}`);
}
await server.close();
await context.dispose();
await model.dispose();
