/**
 * llama.cpp's own tools, built from the vendored tree with the addon's flags
 * (HERMES3_BUILD_BENCH): llama-bench for pp512/tg128 and peak RSS, llama-batched-bench for the
 * aggregate speed of concurrent sequences (S_TG); and the C API reference program the parity tests
 * use (test/reference), for llama.cpp's load time and time to first token.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CONC_GEN, CONC_PROMPT, GEN_TOKENS, PROMPT_TOKENS, concurrencyFigure, type Samples } from '../figures.js';
import { GNU_TIME, PeerError, runChild } from '../proc.js';
import type { Peer, PeerRun } from './peer.js';

const exe = (name: string) => (process.platform === 'win32' ? `${name}.exe` : name);

function findTool(run: PeerRun, name: string): string {
  const path = join(run.options.anchorDir, exe(name));
  if (!existsSync(path)) {
    throw new PeerError(
      `${path} is missing: build the anchors with \`npm run bench:anchor\` (HERMES3_BUILD_BENCH=1 node scripts/install.mjs --force), or point --anchors at the folder that holds them`,
    );
  }
  return path;
}

const MiB = 1024 * 1024;

export function llamaBenchPeer(): Peer {
  let tool = '';
  let reference = '';
  return {
    name: 'llama-bench',
    async prepare(run) {
      tool = findTool(run, 'llama-bench');
      reference = findTool(run, 'hermes3-reference');
      if (!existsSync(GNU_TIME)) run.log(`llama-bench: no peak RSS without GNU time (${GNU_TIME}; Debian/Ubuntu: apt-get install time)`);
    },
    async measure(run) {
      const { model } = run.models;
      const t = String(run.options.threads);
      const common = ['-m', model, '-t', t, '-ngl', String(run.options.gpuLayers), '-r', '1', '-o', 'json'];
      const speed = await runChild(tool, [...common, '-p', String(PROMPT_TOKENS), '-n', String(GEN_TOKENS)], { timeoutS: run.options.timeoutS, measureRss: true, what: 'llama-bench', signal: run.signal });
      const rows = parseJson(speed.stdout, 'llama-bench') as Array<{ n_prompt: number; n_gen: number; avg_ts: number }>;
      const pp = rows.find((r) => r.n_prompt === PROMPT_TOKENS && r.n_gen === 0);
      const tg = rows.find((r) => r.n_gen === GEN_TOKENS && r.n_prompt === 0);
      if (!pp || !tg) throw new PeerError(`llama-bench printed no pp${PROMPT_TOKENS}/tg${GEN_TOKENS} rows: ${speed.stdout.slice(0, 300)}`);
      const samples: Samples = { pp512: pp.avg_ts, tg128: tg.avg_ts };
      if (speed.peakRssBytes) samples.peakRssMiB = speed.peakRssBytes / MiB;
      // the same prompt batch with the weights read into memory instead of mapped: peak RSS only
      const noMmap = await runChild(tool, [...common, '-p', String(PROMPT_TOKENS), '-n', '0', '--load-mode', 'none'], { timeoutS: run.options.timeoutS, measureRss: true, what: 'llama-bench --load-mode none', signal: run.signal });
      if (noMmap.peakRssBytes) samples.peakRssNoMmapMiB = noMmap.peakRssBytes / MiB;
      // load and first token through llama.cpp's C API, on the same prompt length
      const ids = Array.from({ length: CONC_PROMPT }, (_, i) => String(1000 + i));
      const ref = await runChild(reference, [model, '1', t, ...ids], {
        timeoutS: run.options.timeoutS,
        what: 'hermes3-reference',
        signal: run.signal,
        env: { ...process.env, HERMES3_REFERENCE_TIMINGS: '1', HERMES3_REFERENCE_GPU_LAYERS: String(run.options.gpuLayers) },
      });
      const load = /load_ms ([\d.]+)/.exec(ref.stderr);
      const ttft = /ttft_ms ([\d.]+)/.exec(ref.stderr);
      if (!load || !ttft) throw new PeerError(`hermes3-reference printed no timings: ${ref.stderr.slice(0, 300)}`);
      samples.loadMs = Number(load[1]);
      samples.ttftMs = Number(ttft[1]);
      return samples;
    },
  };
}

export function batchedBenchPeer(): Peer {
  let tool = '';
  return {
    name: 'batched-bench',
    async prepare(run) {
      tool = findTool(run, 'llama-batched-bench');
    },
    async measure(run) {
      const levels = run.options.concurrency;
      const t = String(run.options.threads);
      // one unified KV cache holding every sequence, as hermes3's contexts have by default
      const nCtx = Math.max(1024, Math.max(...levels) * (CONC_PROMPT + CONC_GEN));
      const args = ['-m', run.models.model, '-t', t, '-tb', t, '-ngl', String(run.options.gpuLayers), '-c', String(nCtx), '-b', '2048', '-ub', '512', '-kvu'];
      args.push('-npp', String(CONC_PROMPT), '-ntg', String(CONC_GEN), '-npl', levels.join(','), '--output-format', 'jsonl');
      const r = await runChild(tool, args, { timeoutS: run.options.timeoutS, what: 'llama-batched-bench', signal: run.signal });
      const samples: Samples = {};
      for (const line of (r.stdout + '\n' + r.stderr).split('\n')) {
        if (!line.startsWith('{"n_kv_max"')) continue;
        const row = JSON.parse(line) as { pl: number; speed_tg: number };
        samples[concurrencyFigure(row.pl)] = row.speed_tg;
      }
      const missing = levels.filter((n) => samples[concurrencyFigure(n)] === undefined);
      if (missing.length) throw new PeerError(`llama-batched-bench printed no result for ${missing.join(', ')} sequences: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
      return samples;
    },
  };
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new PeerError(`${what} printed something other than JSON: ${text.slice(0, 300)}`);
  }
}
