// The native threads' scheduling priority: 'low' (the default) puts ggml's compute threads, and
// the threads that create and free contexts, under SCHED_IDLE on Linux, so every thread of normal
// priority, the event loop first, preempts them on busy cores; 'normal' leaves them as llama.cpp
// does. Results do not depend on it.
import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OptionsError, loadModel, type Model } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';
import { generate } from './helpers.js';

const SCHED_OTHER = 0;
const SCHED_BATCH = 3;
const SCHED_IDLE = 5;
/** threads of this process under `policy` (from /proc/self/task/N/sched) */
function threadsUnder(policy: number): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const m = /^policy\s*:\s*(\d+)/m.exec(readFileSync(`/proc/self/task/${tid}/sched`, 'utf8'));
      if (m && Number(m[1]) === policy) n++;
    } catch {
      // the thread ended meanwhile
    }
  }
  return n;
}
const idleThreads = () => threadsUnder(SCHED_IDLE);

/** polls until the count of SCHED_IDLE threads is `n` (threads end shortly after a dispose resolves) */
async function settlesAt(n: number): Promise<number> {
  for (let i = 0; i < 100 && idleThreads() !== n; i++) await new Promise((r) => setTimeout(r, 50));
  return idleThreads();
}

describe.runIf(process.platform === 'linux')('threadPriority', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.q8 });
  });
  afterAll(() => model.dispose());

  it("'low' runs the context's threads under SCHED_IDLE, 'normal' does not, and both generate the same tokens", async () => {
    const before = idleThreads();
    const normalBefore = threadsUnder(SCHED_OTHER);
    // the library's worker threads (started by the load) are in SCHED_BATCH: a normal thread's
    // weight, but their wakeups never preempt the event loop
    const batchBefore = threadsUnder(SCHED_BATCH);
    expect(batchBefore).toBeGreaterThanOrEqual(4);
    const low = await model.createContext({ nCtx: 256, threads: 3 });
    // the 2 workers of a pool of 3 and the compute thread that will run the graphs are lowered
    // before anything is generated; the scheduler thread, which shares locks with the event
    // loop, is not lowered but in SCHED_BATCH
    expect(idleThreads() - before).toBe(3);
    expect(threadsUnder(SCHED_BATCH) - batchBefore).toBe(1);
    expect(threadsUnder(SCHED_OTHER) - normalBefore).toBe(0);
    const lowTokens = (await generate(low.sequence(), 'Hello there', { maxTokens: 8 })).tokens;
    expect(idleThreads() - before).toBeGreaterThanOrEqual(3);
    await low.dispose();
    // none is left behind: not the workers, not the thread that ran the graphs, and no libuv
    // worker (the lowered work runs on a thread of its own, joined when it is done)
    expect(await settlesAt(before)).toBe(before);

    const normal = await model.createContext({ nCtx: 256, threads: 3, threadPriority: 'normal' });
    // at 'normal' the scheduler thread (which decodes) and ggml's 2 workers are in SCHED_OTHER,
    // as llama.cpp's threads are
    expect(threadsUnder(SCHED_OTHER) - normalBefore).toBe(3);
    expect(threadsUnder(SCHED_BATCH)).toBe(batchBefore);
    const normalTokens = (await generate(normal.sequence(), 'Hello there', { maxTokens: 8 })).tokens;
    expect(idleThreads()).toBe(before);
    await normal.dispose();
    expect(normalTokens).toEqual(lowTokens);
  });

  it("a model loaded with threadPriority 'normal' gives its contexts normal threads unless they ask for 'low'", async () => {
    const normalModel = await loadModel({ modelPath: FIXTURES.q8, threadPriority: 'normal' });
    expect(normalModel.threadPriority).toBe('normal');
    expect(model.threadPriority).toBe('low');
    const before = idleThreads();
    const inherited = await normalModel.createContext({ nCtx: 256, threads: 2 });
    await generate(inherited.sequence(), 'Hello', { maxTokens: 2 });
    expect(idleThreads()).toBe(before);
    const low = await normalModel.createContext({ nCtx: 256, threads: 2, threadPriority: 'low' });
    await generate(low.sequence(), 'Hello', { maxTokens: 2 });
    expect(idleThreads() - before).toBeGreaterThanOrEqual(2);
    await Promise.all([inherited.dispose(), low.dispose()]);
    await normalModel.dispose();
    expect(await settlesAt(before)).toBe(before);
  });

  it('refuses other values', async () => {
    await expect(model.createContext({ threadPriority: 'high' as never })).rejects.toThrow(OptionsError);
    await expect(model.createContext({ threadPriority: 'high' as never })).rejects.toThrow(/threadPriority.*expected 'low' or 'normal'/);
    await expect(loadModel({ modelPath: FIXTURES.q8, threadPriority: 'idle' as never })).rejects.toThrow(/threadPriority.*expected 'low' or 'normal'/);
  });
});
