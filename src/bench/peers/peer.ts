/** What every peer of the benchmark provides. */
import type { PeerName, Samples } from '../figures.js';
import type { BenchModels } from '../models.js';
import type { BenchOptions } from '../options.js';

export interface PeerRun {
  options: BenchOptions;
  models: BenchModels;
  signal: AbortSignal;
  log: (line: string) => void;
}

export interface Peer {
  name: PeerName;
  /** one-time setup (finding or installing the tool); throws PeerError saying what to do */
  prepare(run: PeerRun): Promise<void>;
  /** one repetition of every figure this peer measures */
  measure(run: PeerRun): Promise<Samples>;
  /** what the peer reported about its build, after a measurement */
  about?: Record<string, unknown>;
}
