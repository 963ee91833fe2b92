#!/usr/bin/env node
// Native loading of mutated models (run from dist/: npm run compile first). Writes a tiny
// synthetic model, then N times replaces a few random bytes in its first 64 KiB (the metadata
// and the start of the token list) and loads the mutant with loadModel in a child process with a
// timeout. The child reads the header with the TypeScript reader first: mutants it refuses
// (GgufFormatError) are counted and not loaded. Outcomes: loaded (and tokenized), a typed error
// (by class), or a crash (a signal, or an exit without a typed error), printed with its stderr.
//
//   node scripts/fuzz-native.mjs [--runs 300] [--seed 1] [--jobs 2] [--timeout-s 60] [--max-seconds 900] [--model path]
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const dist = new URL('../dist/', import.meta.url);
const self = fileURLToPath(import.meta.url);

if (process.argv[2] === '--child') {
  // one mutant: read its header in TypeScript, then load it natively and tokenize with its vocabulary
  const path = process.argv[3];
  const say = (o) => process.stdout.write(`@@RESULT ${JSON.stringify(o)}\n`);
  const { readGgufHeader } = await import(new URL('gguf/reader.js', dist).href);
  const { loadModel, Hermes3Error } = await import(new URL('index.js', dist).href);
  try {
    await readGgufHeader(path);
  } catch (err) {
    say({ outcome: "reader", class: err?.constructor?.name, code: err?.code, message: String(err?.message).slice(0, 300) });
    process.exit(0);
  }
  try {
    const model = await loadModel({ modelPath: path });
    const tokens = model.tokenize('Hello <|im_start|>user\nwörld 🦙<|im_end|>', { special: true });
    model.detokenize(tokens);
    await model.dispose();
    say({ outcome: 'loaded' });
  } catch (err) {
    say({ outcome: err instanceof Hermes3Error ? 'typed' : 'untyped', class: err?.constructor?.name, code: err?.code, message: String(err?.message).slice(0, 300) });
  }
  process.exit(0);
}

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '300' },
    seed: { type: 'string', default: '1' },
    jobs: { type: 'string', default: String(Math.max(1, Math.min(8, availableParallelism()))) },
    'timeout-s': { type: 'string', default: '60' },
    'max-seconds': { type: 'string', default: '900' },
    model: { type: 'string' },
  },
});
const runs = Number(values.runs);
const jobs = Number(values.jobs);
const timeoutMs = Number(values['timeout-s']) * 1000;
const deadline = Date.now() + Number(values['max-seconds']) * 1000;
const dir = mkdtempSync(join(tmpdir(), 'hermes3-fuzz-native-'));

// a seeded generator (mulberry32), so that a run can be repeated with --seed
let state = Number(values.seed) >>> 0;
const rand = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
};

let basePath = values.model;
if (!basePath) {
  basePath = join(dir, 'tiny.gguf');
  const { writeSyntheticModel } = await import(new URL('testing/index.js', dist).href);
  await writeSyntheticModel({ path: basePath, shape: 'tiny', seed: 1 });
}
if (!existsSync(basePath)) throw new Error(`${basePath} does not exist`);
const REGION = 64 * 1024;
const head = Buffer.alloc(REGION);
{
  const fd = openSync(basePath, 'r');
  readSync(fd, head, 0, REGION, 0);
  closeSync(fd);
}

// Bytes of values (string contents and scalars, not lengths, counts or types) in the region:
// half the edits go there, so that more mutants pass the reader and reach llama.cpp.
const valueBytes = [];
{
  const SIZES = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  let p = 24;
  const str = () => {
    const n = Number(head.readBigUInt64LE(p));
    for (let i = p + 8; i < Math.min(p + 8 + n, REGION); i++) valueBytes.push(i);
    p += 8 + n;
  };
  const scalar = (t) => {
    if (t === 8) return str();
    for (let i = p; i < Math.min(p + SIZES[t], REGION); i++) valueBytes.push(i);
    p += SIZES[t];
  };
  try {
    for (let kv = Number(head.readBigUInt64LE(16)); kv > 0 && p < REGION - 16; kv--) {
      str(); // the key: its text is a value byte too
      const t = head.readUInt32LE(p);
      p += 4;
      if (t !== 9) scalar(t);
      else {
        const et = head.readUInt32LE(p);
        let n = Number(head.readBigUInt64LE(p + 4));
        p += 12;
        while (n-- > 0 && p < REGION - 8) scalar(et);
      }
    }
  } catch {
    // the walk ran off the region's end
  }
}

// one copy of the model per job: a mutant is written into it and undone after its child ends
const slots = Array.from({ length: jobs }, (_, i) => {
  const path = join(dir, `slot${i}.gguf`);
  copyFileSync(basePath, path);
  return path;
});
const patch = (path, edits) => {
  const fd = openSync(path, 'r+');
  for (const [at, value] of edits) writeSync(fd, Buffer.from([value]), 0, 1, at);
  closeSync(fd);
};

function runChild(path) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [self, '--child', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('@@RESULT '));
      const result = line ? JSON.parse(line.slice(9)) : undefined;
      if (timedOut) resolve({ outcome: 'timeout', stderr });
      else if (result && code === 0) resolve(result);
      else resolve({ outcome: 'crash', code, signal, result, stderr });
    });
  });
}

const counts = { reader: 0, loaded: 0, typed: {}, untyped: 0, crash: 0, timeout: 0 };
const problems = [];
const typedKinds = {};
let next = 0;
let slowest = { ms: 0 };
const t0 = Date.now();
async function worker(slot) {
  while (next < runs && Date.now() < deadline) {
    const n = next++;
    const k = 1 + Math.floor(rand() * 4);
    const edits = [];
    const anywhere = rand() < 0.5;
    for (let i = 0; i < k; i++) edits.push([anywhere ? Math.floor(rand() * REGION) : valueBytes[Math.floor(rand() * valueBytes.length)], Math.floor(rand() * 256)]);
    patch(slots[slot], edits);
    const t = Date.now();
    const r = await runChild(slots[slot]);
    const ms = Date.now() - t;
    patch(slots[slot], edits.map(([at]) => [at, head[at]]).reverse());
    if (ms > slowest.ms) slowest = { ms, n, outcome: r.outcome };
    if (r.outcome === 'typed') {
      counts.typed[r.class] = (counts.typed[r.class] ?? 0) + 1;
      const kind = r.message.replace(/^.*?: /, '').replace(/\d+/g, 'N').slice(0, 220);
      typedKinds[kind] = (typedKinds[kind] ?? 0) + 1;
    }
    else counts[r.outcome]++;
    if (r.outcome === 'crash' || r.outcome === 'timeout' || r.outcome === 'untyped') {
      problems.push({ n, edits, ...r });
      console.log(`#${n} ${r.outcome}: edits ${JSON.stringify(edits)} code ${r.code} signal ${r.signal} ${r.class ?? ''} ${r.message ?? ''}\n  stderr: ${(r.stderr ?? '').trim().split('\n').slice(-6).join('\n  stderr: ')}`);
    }
    if ((n + 1) % 50 === 0) console.log(`${n + 1} mutants, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
}
console.log(`native fuzz: ${runs} mutants of ${basePath} (bytes 0..${REGION}), seed ${values.seed}, ${jobs} jobs, ${timeoutMs / 1000} s a child`);
await Promise.all(slots.map((_, i) => worker(i)));
const done = counts.reader + counts.loaded + Object.values(counts.typed).reduce((a, b) => a + b, 0) + counts.untyped + counts.crash + counts.timeout;
console.log(`mutants: ${done} in ${((Date.now() - t0) / 1000).toFixed(0)} s${done < runs ? ` (stopped at --max-seconds)` : ''}`);
console.log(`refused by the TypeScript reader (GgufFormatError): ${counts.reader}`);
console.log(`loaded natively: ${counts.loaded}`);
console.log(`typed errors from loadModel: ${JSON.stringify(counts.typed)}`);
for (const [kind, n] of Object.entries(typedKinds).sort((a, b) => b[1] - a[1])) console.log(`  ${n} × ${kind}`);
console.log(`untyped errors: ${counts.untyped}, crashes: ${counts.crash}, timeouts: ${counts.timeout}`);
console.log(`slowest child: ${slowest.ms} ms (#${slowest.n}, ${slowest.outcome})`);
rmSync(dir, { recursive: true, force: true });
if (problems.length > 0) process.exitCode = 1;
