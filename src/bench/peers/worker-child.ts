/** Runs one worker task (dist/bench/worker.js) in a child node process and reads its result. */
import { fileURLToPath } from 'node:url';
import { runChild, PeerError } from '../proc.js';
import { RESULT_MARK, type WorkerSpec } from '../worker.js';
import type { PeerRun } from './peer.js';

const WORKER = fileURLToPath(new URL('../worker.js', import.meta.url));

export async function runWorker<T>(spec: WorkerSpec, run: PeerRun, what: string): Promise<T> {
  const { stdout } = await runChild(process.execPath, [WORKER, JSON.stringify(spec)], { timeoutS: run.options.timeoutS, what, signal: run.signal });
  const line = stdout.split('\n').findLast((l) => l.startsWith(RESULT_MARK));
  if (!line) throw new PeerError(`${what} printed no result (its output ended: ${stdout.trim().slice(-300) || 'nothing'})`);
  return JSON.parse(line.slice(RESULT_MARK.length)) as T;
}
