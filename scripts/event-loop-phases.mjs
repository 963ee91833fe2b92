#!/usr/bin/env node
// Event-loop delay per phase of a soak cycle: a 1 ms timer records the longest gap while each
// phase runs (load, context, chat turns, a tool turn, an abort, save, load, dispose), over a
// bounded number of cycles on the tiny synthetic model (written on first use). Prints the
// worst gap per phase in ms, and each gap of 7 ms or more after the first cycle with what the main
// thread did meanwhile (on Linux, from /proc/thread-self/schedstat): ran (its own work: JavaScript,
// the collector) or waited for a core (another thread held it). Run it with --cpu-prof to see what
// the main thread ran. With --json FILE it also writes each gap of 6 ms or more with its start and
// end on the monotonic clock, and this process's threads at the end, for
// scripts/event-loop-trace.mjs.
//   node scripts/event-loop-phases.mjs [CYCLES=60] [--json FILE]
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { defineTool, loadModel } from '../dist/index.js';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { writeSyntheticModel } from '../dist/testing/index.js';
const modelPath = join(tmpdir(), 'hermes3-soak-tiny-q8_0.gguf');
if (!existsSync(modelPath)) await writeSyntheticModel({ path: modelPath, shape: 'tiny', quant: 'Q8_0', seed: 7 });
let phase = 'start'; const worst = {};
let last = performance.now();
const jsonAt = process.argv.indexOf('--json');
const jsonFile = jsonAt > 0 ? process.argv[jsonAt + 1] : undefined;
const timed = []; // gaps of 6 ms or more, on the monotonic clock (as perf's -k CLOCK_MONOTONIC)
let lastNs = process.hrtime.bigint();
// [ns on a CPU, ns waiting on a run queue] of the main thread
const schedstat = () => { try { return readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number); } catch { return undefined; } };
let stat = schedstat();
const gaps = [];
let cycle = 0;
setInterval(() => {
  const now = performance.now();
  const gap = now - last - 1;
  last = now;
  const nowNs = process.hrtime.bigint();
  if (jsonFile && gap >= 6) timed.push({ cycle, phase, gap: +gap.toFixed(2), startNs: String(lastNs), endNs: String(nowNs) });
  lastNs = nowNs;
  const next = stat && schedstat();
  if (gap >= 7 && cycle > 0) gaps.push(`cycle ${cycle}, ${phase}: ${gap.toFixed(1)} ms` + (next ? ` (ran ${((next[0] - stat[0]) / 1e6).toFixed(1)} ms, waited for a core ${((next[1] - stat[1]) / 1e6).toFixed(1)} ms)` : ''));
  stat = next;
  if (gap > (worst[phase]?.[0] ?? 0)) worst[phase] = [gap];
}, 1).unref();
const tool = defineTool({ name: 'lookup', description: 'Looks a word up', parameters: z.object({ word: z.enum(['sea', 'sky']) }), handler: ({ word }) => ({ word, meaning: 'blue' }) });
const tick = () => new Promise((r) => setTimeout(r, 5));
const P = async (name, f) => { phase = name; last = performance.now(); lastNs = process.hrtime.bigint(); const r = await f(); await tick(); phase = 'idle'; return r; };
const n = Number(process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 60);
for (let i = 0; i < n; i++) {
  // the first cycle pays first-use costs (modules compiled on first import, the header parsed once)
  if (i === 1) for (const k of Object.keys(worst)) delete worst[k];
  cycle = i;
  const model = await P('loadModel', () => loadModel({ modelPath }));
  const context = await P('createContext', () => model.createContext({ nCtx: 2048, nSeqMax: 2 }));
  const chat = model.chat({ context, systemPrompt: 'You are Hermes.', temperature: 0.7, maxTokens: 24 });
  await P('ask', () => chat.ask('Hello there'));
  await P('tool', () => chat.ask('Look up sea', { tools: [tool], toolChoice: 'required', maxSteps: 2, maxTokens: 60 }));
  await P('abort', async () => { const c = new AbortController(); let k = 0; for await (const ev of chat.send('Tell me a long story', { signal: c.signal, maxTokens: 400 })) if (ev.type === 'text' && ++k === 5) c.abort(); });
  const file = join(tmpdir(), 'phase.chat');
  await P('save', () => chat.save(file));
  const restored = model.chat({ context, maxTokens: 8 });
  await P('load', () => restored.load(file));
  await P('ask2', () => restored.ask('And then?'));
  await P('disposeChats', async () => { await restored.dispose(); await chat.dispose(); });
  await P('disposeContext', () => context.dispose());
  await P('disposeModel', () => model.dispose());
}
console.log(`${n} cycles, ${process.execArgv.find((a) => a.startsWith('--v8-pool-size')) ?? 'default V8 pool (4 helper threads)'}; gaps of 7 ms or more after the first cycle: ${gaps.length}`);
for (const g of gaps) console.log(`  ${g}`);
console.log('worst gap per phase (ms), after the first cycle:');
console.log(Object.fromEntries(Object.entries(worst).map(([k, v]) => [k, v[0].toFixed(1)])));
if (jsonFile) {
  // the threads alive now are node's own (V8's helpers, libuv's pool): a context's threads end with it
  const threads = readdirSync('/proc/self/task').map(Number);
  writeFileSync(jsonFile, JSON.stringify({ pid: process.pid, threads, gaps: timed }));
}
