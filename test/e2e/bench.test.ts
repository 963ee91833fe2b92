// `hermes3 bench` end to end on the tiny synthetic shape, one repetition: every figure asked for
// comes back as a number, a peer that cannot run is marked failed while the others go on, and bad
// options say what was expected. No timed assertions: the figures are only checked to exist.
// llama.cpp's tools run where they are built (HERMES3_BUILD_BENCH=1, as CI does).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliPath, requireFile, root, runNode } from '../fixtures.js';
import { eventually } from '../server/helpers.js';
import { runChild } from '../../src/bench/proc.js';

const cli = (args: string[]) => runNode([requireFile(cliPath, 'run npm run compile'), 'bench', ...args]);
const anchors = join(root, 'build', 'Release');
const built = (name: string) => existsSync(join(anchors, name));
const gnuTime = existsSync('/usr/bin/time');
const work = mkdtempSync(join(tmpdir(), 'hermes3-bench-test-'));
const common = ['--shape', 'tiny', '--reps', '1', '--concurrency', '1,2', '--threads', '2', '--cache', join(work, 'cache')];

interface PeerJson {
  status: string;
  error?: string;
  median: Record<string, number>;
  samples: Record<string, number[]>;
}

const HERMES3_FIGURES = ['pp512', 'tg128', 'agg1', 'agg2', 'ttftMs', 'loadMs', 'peakRssMiB', 'delayGenP99', 'delayGenMax', 'delayGen4P99', 'delayGen4Max', 'delayLoadP99', 'delayLoadMax'];

function expectFigures(peer: PeerJson | undefined, figures: string[]) {
  expect(peer?.error).toBeUndefined();
  expect(peer?.status).toBe('ok');
  for (const f of figures) {
    expect(peer!.samples[f], f).toHaveLength(1);
    expect(Number.isFinite(peer!.median[f]) && peer!.median[f] >= 0, `${f} = ${peer!.median[f]}`).toBe(true);
  }
}

describe('hermes3 bench', () => {
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('measures every figure of the peers asked for, writes JSON, an SVG chart and the table', async () => {
    const only = ['hermes3', ...(built('llama-bench') ? ['llama-bench'] : []), ...(built('llama-batched-bench') ? ['batched-bench'] : [])];
    const json = join(work, 'bench.json');
    const svg = join(work, 'bench.svg');
    const r = await cli([...common, '--only', only.join(','), '--json', json, '--svg', svg]);
    expect(r.stderr).toContain('writing the synthetic tiny Q4_K_M model');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(readFileSync(json, 'utf8'));
    expect(Object.keys(out.peers)).toEqual(only);
    expectFigures(out.peers.hermes3, HERMES3_FIGURES);
    expect(out.peers.hermes3.median.pp512).toBeGreaterThan(0);
    if (only.includes('llama-bench')) expectFigures(out.peers['llama-bench'], ['pp512', 'tg128', ...(gnuTime ? ['peakRssMiB', 'peakRssNoMmapMiB'] : [])]);
    if (only.includes('batched-bench')) expectFigures(out.peers['batched-bench'], ['agg1', 'agg2']);
    expect(out.machine.cpu).toBeTruthy();
    expect(out.machine.physicalCores).toBeGreaterThan(0);
    expect(out.machine.cpuVariant).toBeTruthy();
    expect(r.stdout).toContain(`machine: ${out.machine.cpu}`);
    expect(r.stdout).toMatch(/^\| pp512 \| tok\/s ↑ \| \d+/m);
    const chart = readFileSync(svg, 'utf8');
    expect(chart).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(chart.match(/<rect /g)!.length).toBeGreaterThan(HERMES3_FIGURES.length);
  });

  it('marks a peer that cannot run as failed, says what to do, and keeps the others', async () => {
    // a folder of anchors without llama-bench; the peer that goes on is the quickest one built
    const dir = join(work, 'anchors');
    mkdirSync(dir);
    const other = built('llama-batched-bench') ? 'batched-bench' : 'hermes3';
    if (other === 'batched-bench') symlinkSync(join(anchors, 'llama-batched-bench'), join(dir, 'llama-batched-bench'));
    const json = join(work, 'failed.json');
    const r = await cli([...common, '--only', `${other},llama-bench`, '--concurrency', '1', '--anchors', dir, '--json', json]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('llama-bench is missing: build the anchors with `npm run bench:anchor`');
    expect(r.stderr).toContain('[ERR_BENCH_PEER_FAILED]');
    expect(r.stdout).toContain('llama-bench: failed:');
    const out = JSON.parse(readFileSync(json, 'utf8'));
    expect(out.peers['llama-bench'].status).toBe('failed');
    expectFigures(out.peers[other], other === 'hermes3' ? ['pp512', 'tg128', 'agg1'] : ['agg1']);
  });

  // A benchmark killed by SIGTERM (as `timeout` does) skips its exit handlers, so its worker
  // cannot be killed from there: each worker gets a pipe as stdin, which closes when the
  // benchmark's process ends however it ends, and the worker ends with it.
  it('gives each child a pipe as stdin, which it keeps open while the child runs', async () => {
    const { stdout } = await runChild(process.execPath, ['-e', "const s = require('fs').fstatSync(0); process.stdout.write(String(s.isFIFO() || s.isSocket()))"], { timeoutS: 30, what: 'stdin check' });
    expect(stdout).toBe('true');
  });

  it.skipIf(process.platform !== 'linux')('ends a worker whose stdin closes, even while its model load is stuck', async () => {
    // a named pipe as the model: opening it blocks until a writer comes, which never happens
    const fifo = join(work, 'stuck.gguf');
    execFileSync('mkfifo', [fifo]);
    const spec = { engine: 'hermes3', task: 'speed', model: fifo, threads: 1, gpuLayers: 0, concurrency: [1] };
    const worker = spawn(process.execPath, [join(root, 'dist', 'bench', 'worker.js'), JSON.stringify(spec)], { stdio: ['pipe', 'ignore', 'ignore'] });
    const exited = new Promise<string | null>((r) => worker.once('exit', (_code, signal) => r(signal)));
    try {
      // wait until it is inside the load: the addon mapped, the named pipe being opened
      const maps = () => {
        try {
          return readFileSync(`/proc/${worker.pid}/maps`, 'utf8');
        } catch {
          return '';
        }
      };
      const stuck = await eventually(() => maps().includes('.node'), 30_000);
      expect(stuck).toBe(true);
      worker.stdin.end();
      const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 20_000))]);
      expect(code).toBe('SIGKILL');
    } finally {
      worker.kill('SIGKILL');
    }
  });

  it('says what it expected for bad options', async () => {
    const bad = async (args: string[], message: string) => {
      const r = await cli(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(message);
    };
    await bad(['--only', 'hermes3,vllm'], "Invalid --only: expected some of hermes3, llama-bench, batched-bench, node-llama-cpp, received 'vllm'");
    await bad(['--model', join(work, 'missing.gguf')], `Invalid --model: ${join(work, 'missing.gguf')} does not exist`);
    await bad(['--shape', '3b'], "Invalid --shape: expected one of tiny, 1b, 8b, 70b, 405b, received '3b'");
    await bad(['--concurrency', '1,x'], "Invalid --concurrency: expected an integer between 1 and 256, received 'x'");
    await bad(['--model', cliPath, '--shape', '1b'], 'Give one or the other');
    const notGguf = await cli(['--model', join(root, 'package.json'), '--only', 'hermes3']);
    expect(notGguf.code).toBe(1);
    expect(notGguf.stderr).toContain('package.json: not a GGUF file');
  });
});
