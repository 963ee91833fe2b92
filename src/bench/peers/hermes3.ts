/** hermes3-native through its public API, each task in a child process of its own. */
import type { Samples } from '../figures.js';
import { PeerError } from '../proc.js';
import { SPEC_BASELINE, type SpeculativeResult } from '../speculative.js';
import type { WorkerSpec, WorkerTask } from '../worker.js';
import type { Peer, PeerRun } from './peer.js';
import { runWorker } from './worker-child.js';

export function hermes3Peer(): Peer & { speculative?: { available: boolean; reason?: string } } {
  const peer: Peer & { speculative?: { available: boolean; reason?: string } } = {
    name: 'hermes3',
    async prepare() {
      try {
        (await import('../../index.js')).getBackendInfo();
      } catch (err) {
        throw new PeerError(`the hermes3-native addon does not load: ${(err as Error).message}`);
      }
    },
    async measure(run: PeerRun) {
      const base = { engine: 'hermes3', model: run.models.model, threads: run.options.threads, gpuLayers: run.options.gpuLayers, concurrency: run.options.concurrency } as const;
      const samples: Samples = {};
      for (const task of ['speed', 'delay', 'concurrency'] as WorkerTask[]) {
        const r = await runWorker<{ samples: Samples; about: Record<string, unknown> }>({ ...base, task }, run, `hermes3 (${task})`);
        Object.assign(samples, r.samples);
        peer.about = r.about;
      }
      const pair = run.models.speculative;
      if (pair && peer.speculative?.available !== false) {
        const spec: WorkerSpec = { ...base, task: 'speculative', model: pair.target, draft: pair.draft };
        const r = await runWorker<SpeculativeResult>(spec, run, 'hermes3 (speculative)');
        if (!r.available && !peer.speculative) run.log(`speculative: not available in this build (${r.reason})`);
        peer.speculative = { available: r.available, reason: r.reason };
        // the target's speed alone is measured either way
        Object.assign(samples, r.available ? r.samples : { [SPEC_BASELINE]: r.samples[SPEC_BASELINE] });
      }
      return samples;
    },
  };
  return peer;
}
