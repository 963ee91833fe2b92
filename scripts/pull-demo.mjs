#!/usr/bin/env node
// hermes3 pull, ls and doctor against a local stand-in for the Hugging Face Hub (FakeHub from
// hermes3-native/testing) serving a synthetic model under Hermes 3's repository name: a pull
// killed halfway, resumed with an HTTP Range request, verified; then doctor on the whole file
// and on a cut copy. Nothing leaves 127.0.0.1. Usage: node scripts/pull-demo.mjs
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, truncateSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeHub, writeSyntheticModel } from '../dist/testing/index.js';

const cli = new URL('../dist/cli/index.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'hermes3-pull-demo-'));
const source = join(dir, 'source.gguf');
await writeSyntheticModel({ path: source, shape: 'tiny', quant: 'Q8_0', seed: 7 });
const body = readFileSync(source);
const file = 'Hermes-3-Llama-3.1-8B.Q4_K_M.gguf';
const hub = await new FakeHub().start();
hub.addRepo('NousResearch/Hermes-3-Llama-3.1-8B-GGUF', [{ path: file, body }, { path: 'Hermes-3-Llama-3.1-8B.Q8_0.gguf', body }]);
const env = { ...process.env, HF_ENDPOINT: hub.endpoint, HERMES3_MODELS: join(dir, 'models') };
const ref = 'hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q4_K_M';

function hermes3(args, onStart) {
  console.log(`$ hermes3 ${args.join(' ')}`);
  const child = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => process.stdout.write(d.toString().replace(/^/gm, '  ')));
  child.stderr.on('data', (d) => process.stdout.write(d.toString().replace(/^/gm, '  ')));
  onStart?.(child);
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
}

const half = Math.floor(body.length / 2);
const stall = hub.stall(file, half);
const first = await hermes3(['pull', ref], (child) => stall.reached.then(() => setTimeout(() => child.kill('SIGKILL'), 300)));
const partial = join(env.HERMES3_MODELS, 'NousResearch', 'Hermes-3-Llama-3.1-8B-GGUF', `${file}.partial`);
console.log(`  [killed: ${first}; ${statSync(partial).size} of ${body.length} bytes in ${partial}]\n`);
stall.cut();
const second = await hermes3(['pull', ref]);
const ranges = hub.requests('cdn').map((r) => r.range ?? '(whole file)');
console.log(`  [exit ${second}; the CDN saw: ${ranges.join(', ')}]\n`);
await hermes3(['ls']);
console.log();
await hermes3(['doctor', '--model', ref, '--no-probe']);
const path = join(env.HERMES3_MODELS, 'NousResearch', 'Hermes-3-Llama-3.1-8B-GGUF', file);
const cut = join(dir, 'cut.gguf');
copyFileSync(path, cut);
truncateSync(cut, half);
console.log();
const broken = await hermes3(['doctor', '--model', cut, '--no-probe']);
console.log(`  [exit ${broken}]`);
await hub.close();
