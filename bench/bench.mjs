#!/usr/bin/env node
// Prompt processing (pp512) and generation (tg128) speed of hermes3-native against llama-bench
// built in the addon's own build (HERMES3_BUILD_BENCH), on the same model file and thread count, in
// one run. Prints ratios, and the event-loop delay while generating.
//
//   node bench/bench.mjs [--model FILE | --shape 1b --quant Q4_K_M] [--threads N] [--reps 3]
//                        [--gpu-layers N] [--anchor PATH-TO-llama-bench] [--json FILE]
//
// Needs `npm run compile` and the anchor: `npm run bench:anchor` rebuilds the addon together with
// llama-bench, from the same llama.cpp libraries and flags.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    shape: { type: 'string', default: '1b' },
    quant: { type: 'string', default: 'Q4_K_M' },
    threads: { type: 'string' },
    reps: { type: 'string', default: '3' },
    'gpu-layers': { type: 'string', default: '0' },
    json: { type: 'string' },
    anchor: { type: 'string' },
  },
});
const { loadModel, getBackendInfo } = await import(join(root, 'dist', 'index.js'));
const { writeSyntheticModel } = await import(join(root, 'dist', 'testing', 'index.js'));
const os = await import('node:os');

const threads = Number(values.threads ?? os.availableParallelism());
const reps = Number(values.reps);
const ngl = Number(values['gpu-layers']);
let modelPath = values.model;
if (!modelPath) {
  modelPath = join(root, '.cache', 'bench', `${values.shape}-${values.quant.toLowerCase()}.gguf`);
  if (!existsSync(modelPath)) {
    console.error(`writing ${modelPath}`);
    await writeSyntheticModel({ path: modelPath, shape: values.shape, quant: values.quant, seed: 1 });
  }
}
const anchor = values.anchor ?? join(root, 'build', 'Release', 'llama-bench');
if (!existsSync(anchor)) {
  console.error(`${anchor} is missing: run npm run bench:anchor first`);
  process.exit(2);
}

// llama-bench: its own averages over reps
const raw = execFileSync(anchor, ['-m', modelPath, '-t', String(threads), '-p', '512', '-n', '128', '-r', String(reps), '-ngl', String(ngl), '-o', 'json'], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'ignore'],
});
const rows = JSON.parse(raw);
const anchorPp = rows.find((r) => r.n_prompt === 512).avg_ts;
const anchorTg = rows.find((r) => r.n_gen === 128).avg_ts;

// hermes3-native: the same work through the public API
const model = await loadModel({ modelPath, nGpuLayers: ngl });
const ctx = await model.createContext({ nCtx: 1024, nBatch: 512, threads });
const seq = ctx.sequence();
const nVocab = model.info.nVocab;
const prompt = Array.from({ length: 512 }, (_, i) => (i * 7919) % Math.min(nVocab, 128000));
const pp = [];
const tg = [];
const ban = Object.fromEntries(model.info.specialTokens.eog.map((t) => [t, -Infinity]));
const generate128 = async () => {
  await seq.clear();
  let rate = 0;
  for await (const c of seq.generate([model.info.specialTokens.bos], { maxTokens: 128, temperature: 0, logitBias: ban })) if (c.timings) rate = c.timings.generateTokensPerSecond;
  return rate;
};
// the first round warms up (repacking, caches) and is not counted
for (let r = 0; r < reps + 1; r++) {
  await seq.clear();
  for await (const c of seq.generate(prompt, { maxTokens: 0 })) if (c.timings && r > 0) pp.push(c.timings.promptTokensPerSecond);
  const rate = await generate128();
  if (r > 0) tg.push(rate);
}
// the event-loop delay in a run of its own: a 1 ms timer competes with the compute threads
// for the cores, so it would lower the speed measured above
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
await generate128();
delay.disable();
const delayMax = delay.max / 1e6;
const delayP99 = delay.percentile(99) / 1e6;
await model.dispose();
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
const result = {
  model: modelPath,
  threads,
  gpuLayers: ngl,
  cpuVariant: getBackendInfo().cpu.variant,
  llamaBench: { pp512: anchorPp, tg128: anchorTg },
  hermes3: { pp512: mean(pp), tg128: mean(tg) },
  ratio: { pp512: mean(pp) / anchorPp, tg128: mean(tg) / anchorTg },
  eventLoopDelayMs: { max: delayMax, p99: delayP99 },
};
console.log(`model ${modelPath}, ${threads} threads, ${ngl} GPU layers, CPU variant ${result.cpuVariant}`);
console.log(`              llama-bench   hermes3-native   ratio`);
console.log(`pp512 tok/s   ${anchorPp.toFixed(1).padStart(11)}   ${result.hermes3.pp512.toFixed(1).padStart(14)}   ${result.ratio.pp512.toFixed(3)}`);
console.log(`tg128 tok/s   ${anchorTg.toFixed(1).padStart(11)}   ${result.hermes3.tg128.toFixed(1).padStart(14)}   ${result.ratio.tg128.toFixed(3)}`);
console.log(`event-loop delay while generating: max ${result.eventLoopDelayMs.max.toFixed(2)} ms, p99 ${result.eventLoopDelayMs.p99.toFixed(2)} ms`);
if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
