#!/usr/bin/env node
// Speed at threadPriority 'low' against 'normal', in one process with interleaved repetitions:
// prompt processing (512 tokens) and generation (128 tokens, end-of-generation tokens banned), on
// a GGUF file or the synthetic 1B Q4_K_M (written once into the bench cache). On idle cores the
// two should match; 'low' yields only to other threads that want the cores.
//   node scripts/thread-priority-bench.mjs [MODEL.gguf] [--reps 4] [--threads N]
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../dist/index.js';
import { writeSyntheticModel } from '../dist/testing/index.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { reps: { type: 'string', default: '4' }, threads: { type: 'string' } } });
let modelPath = positionals[0];
if (!modelPath) {
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'hermes3', 'bench');
  modelPath = join(dir, '1b-q4_k_m-seed1.gguf');
  if (!existsSync(modelPath)) {
    mkdirSync(dir, { recursive: true });
    await writeSyntheticModel({ path: modelPath, shape: '1b', quant: 'Q4_K_M', seed: 1 });
  }
}
const reps = Math.min(Math.max(Number(values.reps) || 4, 1), 20);
const threads = values.threads ? Number(values.threads) : undefined;
const model = await loadModel({ modelPath });
const prompt = Array.from({ length: 512 }, (_, i) => 1000 + ((i * 37) % 20000));
const noEog = Object.fromEntries(model.info.specialTokens.eog.map((id) => [id, -Infinity]));
const res = { low: { pp: [], tg: [] }, normal: { pp: [], tg: [] } };
for (let rep = 0; rep < reps; rep++) {
  for (const prio of rep % 2 ? ['normal', 'low'] : ['low', 'normal']) {
    const ctx = await model.createContext({ nCtx: 1024, threadPriority: prio, threads });
    const seq = ctx.sequence();
    let t;
    for await (const c of seq.generate(prompt, { maxTokens: 1, temperature: 0 })) t = c.timings ?? t;
    res[prio].pp.push(512 / (t.promptMs / 1000));
    for await (const c of seq.generate([1000], { maxTokens: 128, temperature: 0, logitBias: noEog })) t = c.timings ?? t;
    res[prio].tg.push(t.generatedTokens / (t.generateMs / 1000));
    await ctx.dispose();
  }
}
await model.dispose();
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`${modelPath}, ${threads ?? 'default'} threads, median of ${reps} interleaved repetitions`);
console.log(`| figure | 'low' tok/s | 'normal' tok/s | low / normal |`);
console.log(`| --- | ---: | ---: | ---: |`);
for (const k of ['pp', 'tg']) {
  const low = median(res.low[k]);
  const normal = median(res.normal[k]);
  console.log(`| ${k === 'pp' ? 'pp512' : 'tg128'} | ${low.toFixed(1)} | ${normal.toFixed(1)} | ${(low / normal).toFixed(2)}x |`);
}
