#!/usr/bin/env node
// What speculative decoding can gain on this machine: the cost of one decode of n tokens on a
// target model (what a verify step costs), the draft model's cost per token, and the speed-up
// they predict for acceptance rates 0.6-0.8 (expected tokens per step (1 - a^(k+1)) / (1 - a)
// over k draft steps and one verify batch). The models can be synthetic: cost does not depend on
// the weights.
import { loadModel } from '../dist/index.js';

const [targetPath, draftPath] = process.argv.slice(2);
if (!targetPath || !draftPath) {
  console.error('usage: node scripts/speculative-costs.mjs TARGET.gguf DRAFT.gguf   (after npm run compile)');
  process.exit(2);
}
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
async function stepCosts(path, sizes, reps = 3) {
  const model = await loadModel({ modelPath: path });
  const ctx = await model.createContext({ nCtx: 2048 });
  const seq = ctx.sequence();
  const base = Array.from({ length: 64 }, (_, i) => 1000 + i);
  for await (const _ of seq.generate(base, { maxTokens: 0 }));
  const out = {};
  for (const n of sizes) {
    const ms = [];
    for (let r = 0; r < reps + 1; r++) {
      const extra = Array.from({ length: n }, (_, i) => 2000 + i + r);
      let t;
      for await (const c of seq.generateFrom([...base, ...extra], { maxTokens: 0 })) if (c.timings) t = c.timings;
      if (r > 0) ms.push(t.promptMs);
    }
    out[n] = median(ms);
  }
  await ctx.dispose();
  await model.dispose();
  return out;
}
const ks = [1, 2, 3, 4, 5, 7, 9, 13, 17];
const verify = await stepCosts(targetPath, ks);
const draft = (await stepCosts(draftPath, [1]))[1];
console.log('target decode ms by batch size:', JSON.stringify(Object.fromEntries(Object.entries(verify).map(([k, v]) => [k, +v.toFixed(1)]))));
console.log(`draft ms per token: ${draft.toFixed(1)}`);
for (const a of [0.6, 0.7, 0.8]) {
  const row = [];
  for (const k of [2, 4, 8, 12, 16]) {
    const tv = verify[k + 1];
    if (tv === undefined) continue;
    const expected = (1 - a ** (k + 1)) / (1 - a);
    row.push(`k=${k}: ${((expected * verify[1]) / (k * draft + tv)).toFixed(2)}x`);
  }
  console.log(`acceptance ${a}: ${row.join(', ')}`);
}
