#!/usr/bin/env node
// Soak: for a bounded time (default 10 minutes), cycles of load, chat turns with a tool, an
// aborted turn, save and restore, and dispose, on a synthetic model; samples resident memory,
// open file descriptors, threads and event-loop delay. Memory must settle, descriptors and
// threads must not grow, and after the first cycle (which pays first-use costs: modules compiled,
// the addon loaded, the header parsed once) the event loop must never wait longer than
// --max-delay ms. Exit 1 when one of these fails.
//   node scripts/soak.mjs [MODEL.gguf] [--minutes 10] [--thread-priority low|normal] [--max-delay 10] [--idle-seconds 60]
// First, for --idle-seconds, it measures the same delay with nothing running: the floor that this
// machine's scheduler and hypervisor give any process, printed beside the soak's figure.
// On a machine with few cores, V8's default 4 helper threads (collector, compiler) outnumber
// them; `node --v8-pool-size=1 scripts/soak.mjs` runs with one.
import { readdirSync, readFileSync, existsSync, mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { defineTool, loadModel } from '../dist/index.js';
import { writeSyntheticModel } from '../dist/testing/index.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { minutes: { type: 'string', default: '10' }, 'thread-priority': { type: 'string', default: 'low' }, 'max-delay': { type: 'string', default: '10' }, 'idle-seconds': { type: 'string', default: '60' } } });
let modelPath = positionals[0];
if (!modelPath) {
  modelPath = join(tmpdir(), 'hermes3-soak-tiny-q8_0.gguf');
  if (!existsSync(modelPath)) await writeSyntheticModel({ path: modelPath, shape: 'tiny', quant: 'Q8_0', seed: 7 });
}
const bound = Number(values['max-delay']);
const ms = (ns) => (ns / 1e6).toFixed(2);
// the share of delays over the bound, read off the histogram's percentiles
const over = (h) => {
  let below = 0;
  for (const [p, v] of h.percentiles) if (v < bound * 1e6) below = Math.max(below, p);
  return Math.round((h.count * (100 - below)) / 100);
};
const idle = monitorEventLoopDelay({ resolution: 1 });
idle.enable();
await new Promise((r) => setTimeout(r, Number(values['idle-seconds']) * 1000));
idle.disable();
const end = Date.now() + Number(values.minutes) * 60_000;
const dir = mkdtempSync(join(tmpdir(), 'hermes3-soak-'));
const fds = () => readdirSync('/proc/self/fd').length;
const threads = () => Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
const samples = [];
const eld = monitorEventLoopDelay({ resolution: 1 });
eld.enable();
// after the first cycle: without first-use costs (modules compiled on first import, the model's header parsed once)
const steady = monitorEventLoopDelay({ resolution: 1 });
const tool = defineTool({
  name: 'lookup',
  description: 'Looks a word up',
  parameters: z.object({ word: z.enum(['sea', 'sky']) }),
  handler: ({ word }) => ({ word, meaning: 'blue' }),
});

let cycles = 0;
while (Date.now() < end) {
  const model = await loadModel({ modelPath, threadPriority: values['thread-priority'] });
  // one context, two sequences: the chat and the one restored from its file
  const context = await model.createContext({ nCtx: 2048, nSeqMax: 2 });
  const chat = model.chat({ context, systemPrompt: 'You are Hermes.', temperature: 0.7, maxTokens: 24 });
  await chat.ask('Hello there');
  await chat.ask('Look up sea', { tools: [tool], toolChoice: 'required', maxSteps: 2, maxTokens: 60 });
  const controller = new AbortController();
  let n = 0;
  for await (const ev of chat.send('Tell me a long story', { signal: controller.signal, maxTokens: 400 })) {
    if (ev.type === 'text' && ++n === 5) controller.abort();
  }
  const file = join(dir, `c${cycles % 2}.chat`);
  await chat.save(file);
  const restored = model.chat({ context, maxTokens: 8 });
  await restored.load(file);
  await restored.ask('And then?');
  await restored.dispose();
  await chat.dispose();
  await context.dispose();
  await model.dispose();
  cycles++;
  if (cycles === 1) steady.enable();
  samples.push({ t: Date.now(), rss: process.memoryUsage().rss, fds: fds(), threads: threads() });
  if (cycles % 20 === 0) {
    const s = samples[samples.length - 1];
    console.error(`${cycles} cycles: RSS ${(s.rss / 2 ** 20).toFixed(0)} MB, ${s.fds} fds, ${s.threads} threads`);
  }
}
eld.disable();
steady.disable();
const third = Math.max(1, Math.floor(samples.length / 3));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (b) => (b / 2 ** 20).toFixed(0);
const early = samples.slice(third, 2 * third);
const late = samples.slice(-third);
const rssEarly = median(early.map((s) => s.rss));
const rssLate = median(late.map((s) => s.rss));
const fdGrowth = Math.max(...late.map((s) => s.fds)) - Math.max(...early.map((s) => s.fds));
const threadGrowth = Math.max(...late.map((s) => s.threads)) - Math.max(...early.map((s) => s.threads));
const pool = process.execArgv.find((a) => a.startsWith('--v8-pool-size')) ?? 'V8 helper threads: default (4)';
console.log(`threadPriority ${values['thread-priority']}, ${pool}, ${availableParallelism()} cores: ${cycles} cycles in ${values.minutes} min (load, 2 chat turns with a tool, an aborted turn, save, restore, a turn, dispose)`);
console.log(`RSS MB: middle third median ${mb(rssEarly)}, last third median ${mb(rssLate)}, max ${mb(Math.max(...samples.map((s) => s.rss)))}`);
console.log(`file descriptors: ${early[0]?.fds} -> ${late[late.length - 1]?.fds} (growth ${fdGrowth}); threads: ${early[0]?.threads} -> ${late[late.length - 1]?.threads} (growth ${threadGrowth})`);
console.log(`event-loop delay: p50 ${ms(eld.percentile(50))} ms, p99 ${ms(eld.percentile(99))} ms, max ${ms(eld.max)} ms`);
const steadyMax = steady.max / 1e6;
const responsive = steadyMax < bound;
console.log(`  after the first cycle: p99 ${ms(steady.percentile(99))} ms, max ${steadyMax.toFixed(2)} ms (${responsive ? 'under' : 'NOT under'} ${bound} ms; about ${over(steady)} of ${steady.count} timer ticks over it)`);
if (idle.count > 0) console.log(`  nothing running, ${values['idle-seconds']} s before the cycles: p99 ${ms(idle.percentile(99))} ms, max ${ms(idle.max)} ms (this machine's floor)`);
// settled: the last third within 5% (or 20 MB) of the middle third
const settled = rssLate - rssEarly < Math.max(20 * 2 ** 20, 0.05 * rssEarly);
if (!settled) console.log(`RSS did not settle: the last third's median is over 20 MB and 5% above the middle third's`);
process.exit(settled && responsive && fdGrowth <= 0 && threadGrowth <= 0 ? 0 : 1);
