#!/usr/bin/env node
// Throughput through llama.cpp's RPC backend on loopback: a model split over two
// `hermes3 rpc-server` processes (1 thread each), beside llama-bench of the same build with the
// same --rpc servers, and the same model run locally; plus the bytes the servers received per
// generated token (/proc/PID/io). Interleaved, medians of REPS.
//   node scripts/rpc-bench.mjs [MODEL.gguf] [--reps 3] [--threads 2]
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../dist/index.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { reps: { type: 'string', default: '3' }, threads: { type: 'string', default: '2' } } });
const modelPath = positionals[0] ?? join(homedir(), '.cache', 'hermes3', 'bench', '1b-q4_k_m-seed1.gguf');
const reps = Number(values.reps);
const threads = Number(values.threads);
const cli = new URL('../dist/cli/index.js', import.meta.url).pathname;
const llamaBench = new URL('../build/Release/llama-bench', import.meta.url).pathname;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function server() {
  const child = spawn(process.execPath, [cli, 'rpc-server', '--port', '0', '--threads', '1'], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\S+:\d+)\n/.exec(out);
      if (m) resolve({ child, endpoint: m[1] });
    });
  });
}
// bytes through the loopback interface (this benchmark is all that uses it while it runs)
const loopbackBytes = () => Number(/^\s*lo:\s*(\d+)/m.exec(readFileSync('/proc/net/dev', 'utf8'))[1]);

const servers = [await server(), await server()];
const rpc = servers.map((s) => s.endpoint);
const prompt = Array.from({ length: 127 }, (_, i) => 1000 + i); // with BOS: 128 tokens

async function ours(remote) {
  const model = await loadModel({ modelPath, ...(remote ? { rpcServers: rpc, nGpuLayers: 'max' } : { nGpuLayers: 0 }) });
  const ctx = await model.createContext({ nCtx: 512, threads });
  let pp = 0;
  for await (const c of ctx.sequence().generate(prompt, { maxTokens: 1, temperature: 0 })) if (c.timings) pp = c.timings.promptTokensPerSecond;
  await ctx.dispose();
  const ctx2 = await model.createContext({ nCtx: 512, threads });
  const before = loopbackBytes();
  let tg = 0;
  let n = 0;
  for await (const c of ctx2.sequence().generate([1000], { maxTokens: 64, temperature: 0 })) {
    if (c.timings) {
      tg = c.timings.generateTokensPerSecond;
      n = c.timings.generatedTokens;
    }
  }
  const bytes = remote ? (loopbackBytes() - before) / n : 0;
  await model.dispose();
  return { pp, tg, bytes };
}

function anchor(remote) {
  const args = ['-m', modelPath, '-p', '128', '-n', '64', '-t', String(threads), '-r', '1', '-o', 'json', ...(remote ? ['-ngl', '99', '--rpc', rpc.join(',')] : ['-ngl', '0'])];
  const rows = JSON.parse(execFileSync(llamaBench, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  return { pp: rows.find((r) => r.n_prompt > 0).avg_ts, tg: rows.find((r) => r.n_gen > 0).avg_ts };
}

const rows = { oursRpc: [], benchRpc: [], oursLocal: [], benchLocal: [] };
for (let r = 0; r < reps; r++) {
  rows.benchRpc.push(anchor(true));
  rows.oursRpc.push(await ours(true));
  rows.benchLocal.push(anchor(false));
  rows.oursLocal.push(await ours(false));
}
const m = (k, f) => median(rows[k].map((x) => x[f]));
console.log(`model ${modelPath}; ${threads} threads locally; two rpc-servers on 127.0.0.1 with 1 thread each; medians of ${reps}`);
console.log('| | pp128 tok/s | tg64 tok/s |');
console.log('|---|---|---|');
console.log(`| hermes3, layers on 2 rpc-servers | ${m('oursRpc', 'pp').toFixed(1)} | ${m('oursRpc', 'tg').toFixed(1)} |`);
console.log(`| llama-bench -ngl 99 --rpc (same servers) | ${m('benchRpc', 'pp').toFixed(1)} | ${m('benchRpc', 'tg').toFixed(1)} |`);
console.log(`| ratio | ${(m('oursRpc', 'pp') / m('benchRpc', 'pp')).toFixed(2)} | ${(m('oursRpc', 'tg') / m('benchRpc', 'tg')).toFixed(2)} |`);
console.log(`| hermes3, local CPU | ${m('oursLocal', 'pp').toFixed(1)} | ${m('oursLocal', 'tg').toFixed(1)} |`);
console.log(`| llama-bench, local CPU | ${m('benchLocal', 'pp').toFixed(1)} | ${m('benchLocal', 'tg').toFixed(1)} |`);
console.log(`bytes over loopback per generated token (both directions): ${(m('oursRpc', 'bytes') / 1024).toFixed(1)} KiB`);
for (const s of servers) s.child.kill();
