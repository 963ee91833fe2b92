#!/usr/bin/env node
// Embedding throughput against the anchors, measured in the same run, rounds interleaved:
//   - llama.cpp's C API, batched as its embedding example does (build/Release/hermes3-embed-reference)
//   - hermes3-native, batched (embed(texts)) and one input per call
//   - node-llama-cpp's getEmbeddingFor(), one input per call (its API has no batch)
// Prints inputs/s and tokens/s per engine (medians over rounds) and ratios to the C API.
//   node scripts/embed-bench.mjs [MODEL.gguf] [--inputs 48] [--rounds 3] [--threads 2] [--ctx 2048] [--min-words 20] [--max-words 120]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../dist/index.js';
import { installNodeLlamaCpp } from '../dist/bench/peers/node-llama-cpp.js';
import { writeSyntheticModel } from '../dist/testing/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { inputs: { type: 'string', default: '48' }, rounds: { type: 'string', default: '3' }, threads: { type: 'string', default: '2' }, ctx: { type: 'string', default: '2048' }, 'min-words': { type: 'string', default: '20' }, 'max-words': { type: 'string', default: '120' } },
});
const cache = join(homedir(), '.cache', 'hermes3', 'bench');
let modelPath = positionals[0];
if (!modelPath) {
  modelPath = join(cache, '1b-q4_k_m-seed1.gguf');
  if (!existsSync(modelPath)) await writeSyntheticModel({ path: modelPath, shape: '1b', quant: 'Q4_K_M', seed: 1 });
}
const threads = Number(values.threads);
const nCtx = Number(values.ctx);
const rounds = Number(values.rounds);
const reference = join(import.meta.dirname, '..', 'build', 'Release', 'hermes3-embed-reference');
if (!existsSync(reference)) throw new Error(`${reference} is missing: build the addon from source (npm run build:native)`);

// documents of 20 to 120 words (by default), as a retrieval index holds
const minWords = Number(values['min-words']);
const span = Math.max(1, Number(values['max-words']) - minWords);
const words = 'the llama walks across high mountain passes carrying wool salt and news between valleys where farmers grow potatoes and quinoa under a thin cold sky'.split(' ');
const texts = Array.from({ length: Number(values.inputs) }, (_, i) => Array.from({ length: minWords + ((i * 37) % span) }, (_, k) => words[(i * 7 + k * 3) % words.length]).join(' '));

const model = await loadModel({ modelPath });
const ectx = await model.createEmbeddingContext({ nCtx, nSeqMax: 64, threads });
const tokens = texts.map((t) => model.tokenize(t, { addBos: true }));
const totalTokens = tokens.reduce((n, t) => n + t.length, 0);
console.log(`${texts.length} inputs, ${totalTokens} tokens, nCtx ${nCtx}, ${threads} threads, ${modelPath}`);

const { entry, version } = await installNodeLlamaCpp(cache, false, (line) => console.error(line));
const { getLlama } = await import(entry);
const llama = await getLlama({ gpu: false });
const nlcModel = await llama.loadModel({ modelPath });
const nlcCtx = await nlcModel.createEmbeddingContext({ contextSize: nCtx, batchSize: nCtx, threads });

const engines = {
  'llama.cpp C API (batched)': async () => {
    const r = spawnSync(reference, [modelPath, '1', String(nCtx), '64', String(threads), ...tokens.map((t) => t.join(','))], {
      env: { ...process.env, HERMES3_REFERENCE_TIMINGS: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
    const m = /embed_ms ([\d.]+)/.exec(r.stderr);
    if (r.status !== 0 || !m) throw new Error(`the reference program failed: ${r.stderr}`);
    return Number(m[1]);
  },
  'hermes3-native (batched)': async () => {
    const t0 = performance.now();
    await ectx.embed(texts);
    return performance.now() - t0;
  },
  'hermes3-native (one per call)': async () => {
    const t0 = performance.now();
    for (const t of texts) await ectx.embed(t);
    return performance.now() - t0;
  },
  [`node-llama-cpp ${version} (one per call)`]: async () => {
    const t0 = performance.now();
    for (const t of texts) await nlcCtx.getEmbeddingFor(t);
    return performance.now() - t0;
  },
};

const times = Object.fromEntries(Object.keys(engines).map((k) => [k, []]));
for (const [name, run] of Object.entries(engines)) await run(); // warm-up
for (let r = 0; r < rounds; r++) for (const [name, run] of Object.entries(engines)) times[name].push(await run());
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const anchor = median(times['llama.cpp C API (batched)']);
console.log('| engine | inputs/s | tokens/s | time vs C API |');
console.log('|---|---|---|---|');
for (const [name, ts] of Object.entries(times)) {
  const ms = median(ts);
  console.log(`| ${name} | ${((texts.length * 1000) / ms).toFixed(1)} | ${((totalTokens * 1000) / ms).toFixed(0)} | ${(ms / anchor).toFixed(2)}x |`);
}
await nlcCtx.dispose();
await nlcModel.dispose();
await ectx.dispose();
await model.dispose();
