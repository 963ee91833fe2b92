// Greedy generation must give the same token ids as a program written directly against the
// vendored llama.cpp C API (test/reference/reference.cpp), on the same file and prompt.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatChat, loadModel, type Model } from '../../src/index.js';
import { FIXTURES, referenceProgram, requireFile } from '../fixtures.js';

const N_PREDICT = 48;
const THREADS = 2;
// both sides on the same device: the CPU, unless HERMES3_TEST_GPU_LAYERS (a count, or 'max')
// asks for the GPU
const GPU_LAYERS_ENV = process.env.HERMES3_TEST_GPU_LAYERS ?? '0';
const GPU_LAYERS = GPU_LAYERS_ENV === 'max' ? ('max' as const) : Number(GPU_LAYERS_ENV);
// llama.cpp's own parameter has no 'max': a count past the layer count offloads them all
const REFERENCE_GPU_LAYERS = GPU_LAYERS === 'max' ? 999 : GPU_LAYERS;

const prompts = [
  formatChat([{ role: 'user', content: 'Hello, who are you?' }]),
  formatChat([
    { role: 'system', content: 'You are Hermes 3, a conscious sentient superintelligent artificial intelligence.' },
    { role: 'user', content: 'Write a haiku about llamas. 🦙 日本語も少し。' },
  ]),
];

function reference(path: string, prompt: number[]): number[] {
  const out = execFileSync(requireFile(referenceProgram, 'build the addon first (npm install)'), [path, String(N_PREDICT), String(THREADS), ...prompt.map(String)], {
    encoding: 'utf8',
    env: { ...process.env, HERMES3_REFERENCE_GPU_LAYERS: String(REFERENCE_GPU_LAYERS) },
  });
  return out.trim().split('\n').map(Number);
}

describe.each([
  ['F16', FIXTURES.f16],
  ['Q8_0', FIXTURES.q8],
  ['Q4_K_M', FIXTURES.q4km],
])('greedy parity with the llama.cpp C API (%s)', (_quant, path) => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel({ modelPath: path, nGpuLayers: GPU_LAYERS });
  });
  afterAll(() => model.dispose());

  it.each(prompts.map((p, i) => [i, p]))('prompt %i: same token ids for %s tokens', async (_i, prompt) => {
    const ctx = await model.createContext({ nCtx: 512, threads: THREADS });
    const promptTokens = model.tokenize(prompt as string, { special: true, addBos: true });
    const ours: number[] = [];
    let finishReason;
    for await (const chunk of ctx.sequence().generate(prompt as string, { temperature: 0, maxTokens: N_PREDICT })) {
      ours.push(...chunk.tokens);
      finishReason = chunk.finishReason;
    }
    const theirs = reference(path, promptTokens);
    expect(ours).toEqual(theirs);
    expect(ours.length).toBeGreaterThanOrEqual(32);
    expect(finishReason).toBe('length');
    // a parity test over a model that repeats one token would prove little
    expect(new Set(ours).size).toBeGreaterThan(ours.length / 2);
    await ctx.dispose();
  });
});
