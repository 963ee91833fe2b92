import { statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { getBackendInfo, planMemory, readGgufHeader } from '../../src/index.js';
import { FIXTURES, hasGpu, root, runNode } from '../fixtures.js';

interface Memory {
  rss: number;
  peak: number;
  /** resident bytes of the model file's mapping */
  mapped: number;
}

interface Run {
  base: Memory;
  loaded: Memory;
  generated: Memory;
  nCtx: number;
}

const program = join(root, 'test', 'model', 'programs', 'memory.mjs');
const entry = pathToFileURL(join(root, 'dist', 'index.js')).href;
const PAGE = 4096;

async function measure(modelPath: string, nCtx: number, useMmap: boolean): Promise<Run> {
  const run = await runNode([program, entry, modelPath, String(nCtx), useMmap ? '1' : '0']);
  if (run.code !== 0) throw new Error(`memory.mjs exited with ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as Run;
}

const cpu = getBackendInfo().cpu.features;
// weights are repacked (copied out of the mapping) on x86 CPUs with ggml's repacking built in,
// and only without a GPU backend
const repacks = process.arch === 'x64' && cpu.includes('REPACK') && cpu.includes('AVX2') && !hasGpu();

describe.runIf(process.platform === 'linux')('peak memory (measured in a child process)', () => {
  it.runIf(repacks)('keeps the mapped pages of the tensors used from the file only, not of those repacked', async () => {
    const run = await measure(FIXTURES.q4km, 512, true);
    const plan = await planMemory({ modelPath: FIXTURES.q4km, nCtx: 512, cpu: { avx2: true, avx512: cpu.includes('AVX512') } });
    expect(plan.repackBytes).toBeGreaterThan(16 * PAGE);
    const nTensors = (await readGgufHeader(FIXTURES.q4km)).tensors.length;
    // what stays mapped: the tensors not repacked, plus at most the two partial pages at the
    // ends of each repacked tensor (they may hold a neighbour)
    const bound = plan.weightsBytes - plan.repackBytes + 2 * PAGE * nTensors;
    expect(run.loaded.mapped).toBeGreaterThan(0);
    expect(run.loaded.mapped).toBeLessThanOrEqual(bound);
    expect(run.generated.mapped).toBeLessThanOrEqual(bound);
  });

  for (const useMmap of [true, false]) {
    it(`stays within 1.15x (file + KV cache + compute buffers) from load to generation, useMmap: ${useMmap}`, async () => {
      const run = await measure(FIXTURES.q4km, 2048, useMmap);
      const plan = await planMemory({ modelPath: FIXTURES.q4km, nCtx: run.nCtx, cpu: { avx2: cpu.includes('AVX2'), avx512: cpu.includes('AVX512') } });
      const budget = 1.15 * (statSync(FIXTURES.q4km).size + plan.kvCacheBytes + plan.computeBytes + plan.outputBytes);
      // the process's own memory (node, the addon) before the model is not the model's
      expect(run.loaded.peak - run.base.rss).toBeLessThanOrEqual(budget);
      expect(run.generated.peak - run.base.rss).toBeLessThanOrEqual(budget);
      if (!useMmap) expect(run.generated.mapped).toBe(0);
    });
  }
});
