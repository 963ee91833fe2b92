/**
 * The two in-process engines the benchmark drives with the same measurement code: hermes3-native
 * through its public API, and node-llama-cpp (loaded from the folder it was installed in). Both
 * generate greedily and never stop early: end-of-generation tokens are banned (hermes3) or
 * yielded and passed over (node-llama-cpp), so every run generates the tokens asked for.
 */
import { pathToFileURL } from 'node:url';
import type { Model } from '../engine/model.js';
import type { Context } from '../engine/context.js';
import type { Sequence } from '../engine/sequence.js';

export interface BenchSequence {
  /** evaluates the tokens without generating */
  prefill(tokens: number[]): Promise<void>;
  /** evaluates the tokens, then generates `n` tokens; `onTokens(k)` runs as each k tokens arrive */
  generate(tokens: number[], n: number, onTokens: (k: number) => void): Promise<void>;
  clear(): Promise<void>;
  dispose(): Promise<void>;
}

export interface BenchContext {
  sequence(): BenchSequence;
  dispose(): Promise<void>;
}

export interface BenchEngine {
  name: string;
  load(path: string): Promise<void>;
  bos: number;
  createContext(o: { nCtx: number; nSeq: number; nBatch: number }): Promise<BenchContext>;
  /** what the engine says about its build (CPU variant, ...) */
  describe(): Record<string, unknown>;
  dispose(): Promise<void>;
}

export async function hermes3Engine(threads: number, gpuLayers: number): Promise<BenchEngine & { model(): Model }> {
  const api = await import('../index.js');
  // the addon is loaded here, not inside the timed load (node-llama-cpp's getLlama does the same)
  api.getBackendInfo();
  let model: Model | undefined;
  let ban: Record<number, number> = {};
  const wrapSequence = (seq: Sequence): BenchSequence => ({
    async prefill(tokens) {
      for await (const chunk of seq.generate(tokens, { maxTokens: 0 })) void chunk;
    },
    async generate(tokens, n, onTokens) {
      for await (const c of seq.generate(tokens, { maxTokens: n, temperature: 0, logitBias: ban })) if (c.tokens.length) onTokens(c.tokens.length);
    },
    clear: () => seq.clear(),
    dispose: () => seq.dispose(),
  });
  const wrapContext = (ctx: Context): BenchContext => ({ sequence: () => wrapSequence(ctx.sequence()), dispose: () => ctx.dispose() });
  const engine: BenchEngine & { model(): Model } = {
    name: 'hermes3',
    bos: 0,
    async load(path) {
      model = await api.loadModel({ modelPath: path, nGpuLayers: gpuLayers });
      engine.bos = model.info.specialTokens.bos;
      ban = Object.fromEntries(model.info.specialTokens.eog.map((t) => [t, -Infinity]));
    },
    async createContext({ nCtx, nSeq, nBatch }) {
      return wrapContext(await model!.createContext({ nCtx, nSeqMax: nSeq, nBatch, threads }));
    },
    describe() {
      const info = api.getBackendInfo();
      return { cpuVariant: info.cpu.variant, dynamic: info.dynamic };
    },
    model: () => model!,
    dispose: async () => model?.dispose(),
  };
  return engine;
}

// node-llama-cpp is imported from the folder it was installed in, without its types
export async function nodeLlamaCppEngine(entry: string, threads: number, gpuLayers: number): Promise<BenchEngine> {
  const nlc: any = await import(pathToFileURL(entry).href);
  const llama: any = await nlc.getLlama({ gpu: gpuLayers > 0 ? 'auto' : false, build: 'never', maxThreads: threads, logLevel: 'error', progressLogs: false });
  let model: any;
  const wrapSequence = (seq: any): BenchSequence => ({
    prefill: (tokens) => seq.evaluateWithoutGeneratingNewTokens(tokens),
    async generate(tokens, n, onTokens) {
      let count = 0;
      for await (const token of seq.evaluate(tokens, { temperature: 0, yieldEogToken: true })) {
        void token;
        onTokens(1);
        if (++count >= n) break;
      }
    },
    clear: () => seq.clearHistory(),
    dispose: async () => seq.dispose(),
  });
  const engine: BenchEngine = {
    name: 'node-llama-cpp',
    bos: 0,
    async load(path) {
      model = await llama.loadModel({ modelPath: path, gpuLayers });
      engine.bos = model.tokens.bos;
    },
    async createContext({ nCtx, nSeq, nBatch }) {
      const ctx = await model.createContext({ contextSize: nCtx, sequences: nSeq, batchSize: nBatch, threads: { ideal: threads, min: threads } });
      return { sequence: () => wrapSequence(ctx.getSequence()), dispose: () => ctx.dispose() };
    },
    describe: () => ({ buildType: llama.buildType, gpu: llama.gpu, llamaCppRelease: llama.llamaCppRelease }),
    dispose: async () => {
      await model?.dispose();
      await llama.dispose();
    },
  };
  return engine;
}
