/**
 * Speculative decoding: generation speed of a target model alone and with a draft (a second
 * model of the same vocabulary, or n-gram lookup in the sequence itself), and how many drafted
 * tokens the target accepted. Feature-detected: a build whose createContext rejects `draft`
 * reports that it is not available.
 */
import { OptionsError } from '../errors.js';
import type { ContextOptions } from '../engine/options.js';
import type { GenerationTimings } from '../engine/sequence.js';
import type { Model } from '../engine/model.js';
import type { BenchEngine } from './engines.js';
import { CONC_PROMPT, DRAFT_SIZES, GEN_TOKENS, type Samples } from './figures.js';
import { now, prompt } from './workload.js';

export interface SpeculativeResult {
  available: boolean;
  /** why not, when not available */
  reason?: string;
  samples: Samples;
}

type DraftOption =
  | { model: Model; nDraft: number; pMin: number; adaptive: boolean }
  | { ngram: true; nDraft: number; adaptive: boolean };
/** 'draft': every step drafts nDraft tokens (the raw figures); 'adaptive': the library's default policy */
type SpecKind = 'draft' | 'adaptive' | 'ngram';

/** Figure names of one speculative configuration. */
export const specFigure = (kind: SpecKind, nDraft: number) => ({ speed: `spec-${kind}${nDraft}`, acceptance: `spec-${kind}${nDraft}-acceptance` });
export const SPEC_BASELINE = 'spec-target';
export const SPEC_CONFIGS: ReadonlyArray<{ kind: SpecKind; nDraft: number }> = [
  ...DRAFT_SIZES.map((nDraft) => ({ kind: 'draft' as const, nDraft })),
  { kind: 'adaptive', nDraft: 8 },
  { kind: 'ngram', nDraft: 8 },
];

async function generateRate(model: Model, threads: number, draft?: DraftOption): Promise<{ rate: number; timings: GenerationTimings }> {
  const options = { nCtx: 1024, threads, ...(draft ? { draft } : {}) } as ContextOptions;
  const ctx = await model.createContext(options);
  try {
    const seq = ctx.sequence();
    const ban = Object.fromEntries(model.info.specialTokens.eog.map((t) => [t, -Infinity]));
    const input = prompt(model.info.specialTokens.bos, CONC_PROMPT);
    // warm-up, not counted
    for await (const c of seq.generate(input, { maxTokens: 2, temperature: 0, logitBias: ban })) void c;
    await seq.clear();
    let first: number | undefined;
    let last = 0;
    let after = 0;
    let timings: GenerationTimings | undefined;
    for await (const c of seq.generate(input, { maxTokens: GEN_TOKENS, temperature: 0, logitBias: ban })) {
      last = now();
      if (first === undefined) first = last;
      else after += c.tokens.length;
      if (c.timings) timings = c.timings;
    }
    return { rate: (after * 1000) / (last - first!), timings: timings! };
  } finally {
    await ctx.dispose();
  }
}

export async function speculativeTask(
  engine: BenchEngine & { model(): Model },
  targetPath: string,
  draftPath: string,
  threads: number,
  gpuLayers: number,
): Promise<SpeculativeResult> {
  await engine.load(targetPath);
  const target = engine.model();
  const { loadModel } = await import('../index.js');
  const draftModel = await loadModel({ modelPath: draftPath, nGpuLayers: gpuLayers });
  try {
    const samples: Samples = { [SPEC_BASELINE]: (await generateRate(target, threads)).rate };
    for (const { kind, nDraft } of SPEC_CONFIGS) {
      // pMin 0: a random-weight draft model is never sure of its choice, and the figures are
      // about agreement and cost
      const draft: DraftOption =
        kind === 'ngram' ? { ngram: true, nDraft, adaptive: false } : { model: draftModel, nDraft, pMin: 0, adaptive: kind === 'adaptive' };
      let run;
      try {
        run = await generateRate(target, threads, draft);
      } catch (err) {
        if (err instanceof OptionsError) return { available: false, reason: err.message, samples };
        throw err;
      }
      const names = specFigure(kind, nDraft);
      samples[names.speed] = run.rate;
      const { draftTokens, acceptedTokens } = run.timings;
      if (draftTokens > 0) samples[names.acceptance] = acceptedTokens / draftTokens;
    }
    return { available: true, samples };
  } finally {
    await draftModel.dispose();
  }
}
