#!/usr/bin/env node
// Mutation fuzzing of the GGUF reader from dist/ (npm run compile first): the properties of
// test/unit/fuzz-gguf.test.ts, for many more runs. Each mutant of a small varied GGUF must be
// read or refused with GgufFormatError within --limit-ms. The cases run in a worker thread
// watched from here, so a hang is reported (with its mutations) instead of hanging the script.
//
//   node scripts/fuzz.mjs [--runs 10000] [--seed N] [--limit-ms 200] [--max-seconds 600]
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

if (isMainThread) {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '10000' },
      seed: { type: 'string' },
      'limit-ms': { type: 'string', default: '200' },
      'max-seconds': { type: 'string', default: '600' },
    },
  });
  const opts = {
    runs: Number(values.runs),
    seed: values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed),
    limitMs: Number(values['limit-ms']),
    maxSeconds: Number(values['max-seconds']),
  };
  console.log(`GGUF reader fuzz: ${opts.runs} runs, seed ${opts.seed}, ${opts.limitMs} ms a case`);
  const worker = new Worker(new URL(import.meta.url), { workerData: opts });
  let current = '';
  let last = Date.now();
  let done = false;
  const watchdog = setInterval(() => {
    if (Date.now() - last > Math.max(5000, opts.limitMs * 20)) {
      console.error(`HANG: no case finished for ${((Date.now() - last) / 1000).toFixed(0)} s; the case running: ${current}`);
      clearInterval(watchdog);
      void worker.terminate();
      process.exitCode = 1;
    }
  }, 500);
  worker.on('message', (m) => {
    last = Date.now();
    if (m.type === 'case') current = m.text;
    else if (m.type === 'done') {
      done = true;
      clearInterval(watchdog);
      const s = m.stats;
      console.log(`runs: ${s.runs} (${s.accepted} accepted, ${s.refused} refused with GgufFormatError) in ${(s.ms / 1000).toFixed(1)} s`);
      console.log(`slowest case: ${s.slowest.ms.toFixed(2)} ms (${s.slowest.outcome}): ${s.slowest.text}`);
      console.log(`refusals by kind: ${JSON.stringify(s.kinds)}`);
      if (m.failure) {
        console.error(`FAILED: ${m.failure}`);
        process.exitCode = 1;
      } else if (s.interrupted) console.log(`stopped after --max-seconds ${opts.maxSeconds}`);
      void worker.terminate();
    }
  });
  worker.on('error', (err) => {
    clearInterval(watchdog);
    console.error('worker failed:', err);
    process.exitCode = 1;
  });
  worker.on('exit', () => {
    clearInterval(watchdog);
    if (!done && !process.exitCode) process.exitCode = 1;
  });
} else {
  const fc = (await import('fast-check')).default;
  const { applyMutations, checkGgufCase, describeMutations, ggufFuzzBase, ggufMutations } = await import('../dist/testing/gguf-fuzz.js');
  const { runs, seed, limitMs, maxSeconds } = workerData;
  const base = ggufFuzzBase();
  const KINDS = [
    ['wrong magic', /not a GGUF file/],
    ['wrong version', /unsupported GGUF version/],
    ['count or length over the limit', /more than the limit/],
    ['truncated inside the header', /file ends while reading/],
    ['tensor data past the end of the file', /needs bytes .* but the file has/],
    ['unknown value type', /unknown value type/],
    ['bool not 0 or 1', /is a bool with value/],
    ['bad dimension count', /has \d+ dimensions/],
    ['nested array', /nested array/],
    ['bad general.alignment', /general\.alignment is/],
    ['array of an unknown type', /is an array of unknown value type/],
  ];
  const stats = { runs: 0, accepted: 0, refused: 0, ms: 0, slowest: { ms: -1, outcome: '', text: '' }, kinds: {}, interrupted: false };
  const t0 = performance.now();
  const result = fc.check(
    fc.property(ggufMutations(base), (mutations) => {
      const text = describeMutations(base, mutations);
      parentPort.postMessage({ type: 'case', text });
      const r = checkGgufCase(applyMutations(base, mutations), limitMs);
      stats.runs++;
      stats[r.outcome]++;
      if (r.message) {
        // the kind of refusal
        const kind = KINDS.find(([, re]) => re.test(r.message))?.[0] ?? 'other';
        stats.kinds[kind] = (stats.kinds[kind] ?? 0) + 1;
      }
      if (r.ms > stats.slowest.ms) stats.slowest = { ms: r.ms, outcome: r.outcome, text };
    }),
    { numRuns: runs, seed, interruptAfterTimeLimit: maxSeconds * 1000, markInterruptAsFailure: false },
  );
  stats.ms = performance.now() - t0;
  stats.interrupted = result.interrupted;
  const failure = result.failed ? `${result.errorInstance?.message ?? result.error} (seed ${result.seed}, path ${result.counterexamplePath}; mutations: ${describeMutations(base, result.counterexample[0])})` : undefined;
  parentPort.postMessage({ type: 'done', stats, failure });
}
