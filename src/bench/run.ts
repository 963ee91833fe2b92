/**
 * One benchmark run: every peer measured in turn, repetition by repetition (rep 1 of every peer,
 * then rep 2, ...), so that a drift in the machine's speed spreads over all of them; medians at
 * the end. A peer that fails is marked with its error and the others go on.
 */
import { figureOrder, type PeerName, type Samples } from './figures.js';
import { currentLoad, describeMachine, type Machine } from './machine.js';
import { benchModels } from './models.js';
import type { BenchOptions } from './options.js';
import { hermes3Peer } from './peers/hermes3.js';
import { batchedBenchPeer, llamaBenchPeer } from './peers/llama-tools.js';
import { nodeLlamaCppPeer } from './peers/node-llama-cpp.js';
import type { Peer, PeerRun } from './peers/peer.js';
import { median } from './stats.js';

export interface PeerResult {
  status: 'ok' | 'failed';
  error?: string;
  about?: Record<string, unknown>;
  /** figure -> one value per repetition */
  samples: Record<string, number[]>;
  /** figure -> median of the samples */
  median: Record<string, number>;
}

export interface BenchResult {
  date: string;
  machine: Machine;
  options: Omit<BenchOptions, 'jsonPath' | 'svgPath'>;
  model: string;
  figures: string[];
  peers: Partial<Record<PeerName, PeerResult>>;
  speculative?: { available: boolean; reason?: string; target: string; draft: string };
}

const FACTORIES: Record<PeerName, () => Peer> = {
  hermes3: hermes3Peer,
  'llama-bench': llamaBenchPeer,
  'batched-bench': batchedBenchPeer,
  'node-llama-cpp': nodeLlamaCppPeer,
};

export async function runBench(options: BenchOptions, log: (line: string) => void, signal: AbortSignal): Promise<BenchResult> {
  const machine = await describeMachine();
  const models = await benchModels(options, log);
  const run: PeerRun = { options, models, signal, log };
  const peers = options.only.map((name) => FACTORIES[name]());
  const results: Partial<Record<PeerName, PeerResult>> = {};
  const live: Peer[] = [];
  for (const peer of peers) {
    results[peer.name] = { status: 'ok', samples: {}, median: {} };
    try {
      await peer.prepare(run);
      live.push(peer);
    } catch (err) {
      fail(peer, err);
    }
  }
  function fail(peer: Peer, err: unknown) {
    const message = (err as Error).message ?? String(err);
    results[peer.name] = { ...results[peer.name]!, status: 'failed', error: message };
    log(`${peer.name}: failed, going on without it: ${message}`);
  }

  for (let rep = 1; rep <= options.reps; rep++) {
    for (const peer of [...live]) {
      if (signal.aborted) throw signal.reason;
      log(`rep ${rep}/${options.reps}: ${peer.name}`);
      try {
        const samples: Samples = await peer.measure(run);
        const r = results[peer.name]!;
        for (const [figure, value] of Object.entries(samples)) (r.samples[figure] ??= []).push(value);
        r.about = peer.about;
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        fail(peer, err);
        live.splice(live.indexOf(peer), 1);
      }
    }
  }
  for (const r of Object.values(results)) for (const [figure, values] of Object.entries(r!.samples)) r!.median[figure] = median(values)!;
  machine.loadAverage.end = currentLoad();
  const hermes3 = peers.find((p) => p.name === 'hermes3') as (Peer & { speculative?: { available: boolean; reason?: string } }) | undefined;
  const { jsonPath: _json, svgPath: _svg, ...shown } = options;
  return {
    date: new Date().toISOString(),
    machine,
    options: shown,
    model: models.model,
    figures: figureOrder(options.concurrency),
    peers: results,
    speculative: models.speculative && hermes3?.speculative ? { ...hermes3.speculative, ...models.speculative } : undefined,
  };
}
