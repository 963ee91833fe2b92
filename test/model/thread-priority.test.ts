// The CPU compute threads' scheduling priority: 'low' (the default) puts ggml's workers under
// SCHED_BATCH on Linux, so the process's own threads, the event loop first, run before them on
// busy cores; 'normal' leaves them as llama.cpp does. Results do not depend on it.
import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OptionsError, loadModel, type Model } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';
import { generate } from './helpers.js';

const SCHED_BATCH = 3;
/** threads of this process whose scheduling policy is SCHED_BATCH (from /proc/self/task/N/sched) */
function batchThreads(): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const m = /^policy\s*:\s*(\d+)/m.exec(readFileSync(`/proc/self/task/${tid}/sched`, 'utf8'));
      if (m && Number(m[1]) === SCHED_BATCH) n++;
    } catch {
      // the thread ended meanwhile
    }
  }
  return n;
}

/** polls until the count of SCHED_BATCH threads is `n` (threads end shortly after a dispose resolves) */
async function settlesAt(n: number): Promise<number> {
  for (let i = 0; i < 100 && batchThreads() !== n; i++) await new Promise((r) => setTimeout(r, 50));
  return batchThreads();
}

describe.runIf(process.platform === 'linux')('threadPriority', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.q8 });
  });
  afterAll(() => model.dispose());

  it("'low' runs ggml's worker threads under SCHED_BATCH, 'normal' does not, and both generate the same tokens", async () => {
    const before = batchThreads();
    const low = await model.createContext({ nCtx: 256, threads: 3 });
    const lowTokens = (await generate(low.sequence(), 'Hello there', { maxTokens: 8 })).tokens;
    // a pool of 3 threads has 2 workers besides the thread that runs the graph
    expect(batchThreads() - before).toBeGreaterThanOrEqual(2);
    await low.dispose();
    // none is left behind: not the workers, not the thread that ran the graphs, not libuv's
    expect(await settlesAt(before)).toBe(before);

    const normal = await model.createContext({ nCtx: 256, threads: 3, threadPriority: 'normal' });
    const normalTokens = (await generate(normal.sequence(), 'Hello there', { maxTokens: 8 })).tokens;
    expect(batchThreads()).toBe(before);
    await normal.dispose();
    expect(normalTokens).toEqual(lowTokens);
  });

  it('refuses other values', async () => {
    await expect(model.createContext({ threadPriority: 'high' as never })).rejects.toThrow(OptionsError);
    await expect(model.createContext({ threadPriority: 'high' as never })).rejects.toThrow(/threadPriority.*expected 'low' or 'normal'/);
  });
});
