/**
 * One measurement in a process of its own (`node dist/bench/worker.js SPEC`), so that load time
 * and peak RSS belong to that engine alone. Prints `BENCH-RESULT {json}` as its last line.
 */
import { fstatSync } from 'node:fs';
import { Hermes3Error } from '../errors.js';
import { hermes3Engine, nodeLlamaCppEngine, type BenchEngine } from './engines.js';
import { CONC_GEN, CONC_PROMPT, DELAY_SEQUENCES, GEN_TOKENS, PROMPT_TOKENS, concurrencyFigure, type Samples } from './figures.js';
import { DelayMonitor, unionLength } from './stats.js';
import { speculativeTask } from './speculative.js';
import { now, prompt, timedGenerate } from './workload.js';

export type WorkerTask = 'speed' | 'delay' | 'concurrency' | 'speculative';

export interface WorkerSpec {
  engine: 'hermes3' | 'node-llama-cpp';
  /** node-llama-cpp's entry module */
  entry?: string;
  task: WorkerTask;
  model: string;
  threads: number;
  gpuLayers: number;
  concurrency: number[];
  /** speculative: the draft model (the target is `model`) */
  draft?: string;
}

export const RESULT_MARK = 'BENCH-RESULT ';

async function speed(engine: BenchEngine, model: string): Promise<Samples> {
  const t0 = now();
  await engine.load(model);
  const loadMs = now() - t0;
  const ctx = await engine.createContext({ nCtx: 1024, nSeq: 1, nBatch: 512 });
  const seq = ctx.sequence();
  const bos = engine.bos;
  // warm-up, as llama-bench does: one prompt batch and one generated token, not counted
  await seq.prefill(prompt(bos, PROMPT_TOKENS));
  await seq.clear();
  await seq.generate([bos], 1, () => {});
  await seq.clear();
  let t = now();
  const { first } = await timedGenerate(seq, prompt(bos, CONC_PROMPT, 1), 1);
  const ttftMs = first - t;
  await seq.clear();
  t = now();
  await seq.prefill(prompt(bos, PROMPT_TOKENS));
  const pp512 = (PROMPT_TOKENS * 1000) / (now() - t);
  await ctx.dispose();
  // tg128 as llama-bench counts it: BOS, then 128 tokens one at a time, on a context of its own
  // (llama-bench makes one per test; generation on a context that has decoded a 512-token batch
  // runs slower, see the README)
  const tgCtx = await engine.createContext({ nCtx: 1024, nSeq: 1, nBatch: 512 });
  const tgSeq = tgCtx.sequence();
  await tgSeq.generate([bos], 1, () => {});
  await tgSeq.clear();
  t = now();
  const { last } = await timedGenerate(tgSeq, [bos], GEN_TOKENS);
  const tg128 = (GEN_TOKENS * 1000) / (last - t);
  await tgCtx.dispose();
  return { loadMs, ttftMs, pp512, tg128, peakRssMiB: process.resourceUsage().maxRSS / 1024 };
}

async function delay(engine: BenchEngine, model: string): Promise<Samples> {
  const monitor = new DelayMonitor();
  monitor.start();
  await engine.load(model);
  const load = monitor.stop();
  const ctx = await engine.createContext({ nCtx: 1024, nSeq: DELAY_SEQUENCES, nBatch: 512 });
  const seqs = Array.from({ length: DELAY_SEQUENCES }, () => ctx.sequence());
  await seqs[0].generate([engine.bos], 1, () => {});
  await seqs[0].clear();
  monitor.start();
  await seqs[0].generate(prompt(engine.bos, CONC_PROMPT), GEN_TOKENS, () => {});
  const one = monitor.stop();
  await seqs[0].clear();
  monitor.start();
  await Promise.all(seqs.map((s, i) => s.generate(prompt(engine.bos, CONC_PROMPT, i + 1), CONC_GEN, () => {})));
  const many = monitor.stop();
  await ctx.dispose();
  return {
    delayLoadP99: load.p99,
    delayLoadMax: load.max,
    delayGenP99: one.p99,
    delayGenMax: one.max,
    [`delayGen${DELAY_SEQUENCES}P99`]: many.p99,
    [`delayGen${DELAY_SEQUENCES}Max`]: many.max,
  };
}

/**
 * Aggregate generation speed of n sequences generating at once, defined as llama-batched-bench's
 * S_TG: tokens generated after each sequence's first, over the wall time during which any
 * sequence was between its first and last token (the generation phase).
 */
async function concurrency(engine: BenchEngine, model: string, levels: number[]): Promise<Samples> {
  await engine.load(model);
  const maxN = Math.max(...levels);
  const nCtx = Math.max(1024, Math.ceil((maxN * (CONC_PROMPT + CONC_GEN)) / 256) * 256 * 2);
  const ctx = await engine.createContext({ nCtx, nSeq: maxN, nBatch: 512 });
  const warm = ctx.sequence();
  await warm.generate(prompt(engine.bos, CONC_PROMPT), 4, () => {});
  await warm.dispose();
  const out: Samples = {};
  for (const n of levels) {
    const seqs = Array.from({ length: n }, () => ctx.sequence());
    const runs = await Promise.all(seqs.map((s, i) => timedGenerate(s, prompt(engine.bos, CONC_PROMPT, i + 1), CONC_GEN)));
    const tokens = runs.reduce((sum, r) => sum + r.after, 0);
    out[concurrencyFigure(n)] = (tokens * 1000) / unionLength(runs.map((r) => [r.first, r.last] as const));
    for (const s of seqs) await s.dispose();
  }
  await ctx.dispose();
  return out;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]) as WorkerSpec;
  if (spec.task === 'speculative') {
    const engine = await hermes3Engine(spec.threads, spec.gpuLayers);
    const result = await speculativeTask(engine, spec.model, spec.draft!, spec.threads, spec.gpuLayers);
    await engine.dispose();
    process.stdout.write(RESULT_MARK + JSON.stringify(result) + '\n');
    return;
  }
  const engine = spec.engine === 'hermes3' ? await hermes3Engine(spec.threads, spec.gpuLayers) : await nodeLlamaCppEngine(spec.entry!, spec.threads, spec.gpuLayers);
  let samples: Samples;
  if (spec.task === 'speed') samples = await speed(engine, spec.model);
  else if (spec.task === 'delay') samples = await delay(engine, spec.model);
  else samples = await concurrency(engine, spec.model, spec.concurrency);
  const about = engine.describe();
  await engine.dispose();
  process.stdout.write(RESULT_MARK + JSON.stringify({ samples, about }) + '\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) {
  // The benchmark holds this pipe (a socket, as node makes them) open (runChild): it closes when
  // the benchmark's process ends. Nothing is left to report then, and a plain exit could wait
  // for ever on a thread stuck in a read (libuv joins its pool at exit): end at once.
  const stdin = fstatSync(0);
  const orphaned = () => process.kill(process.pid, 'SIGKILL');
  if (stdin.isFIFO() || stdin.isSocket()) process.stdin.on('end', orphaned).on('error', orphaned).resume();
  main().then(
    () => process.exit(0),
    (err: Error & { code?: string }) => {
      // the library's own errors say what happened; anything else gets its stack
      process.stderr.write(err instanceof Hermes3Error ? `${err.message} [${err.code}]\n` : `${err.stack ?? err}\n`);
      process.exit(1);
    },
  );
}
