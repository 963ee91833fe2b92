import { BusyError, DisposedError, OptionsError, fromNative } from '../errors.js';
import { getAddon, type NativeContext, type NativeContextOptions } from '../native/index.js';
import { checkLoraUses, type LoraAdapter } from './lora.js';
import type { Model } from './model.js';
import { KV_CACHE_TYPES, NGRAM_SIZES, THREAD_PRIORITIES, loraUsesSchema, type contextSchema } from './options.js';
import { parseOptions } from './validate.js';
import { Sequence } from './sequence.js';
import { physicalCores } from './threads.js';
import type { z } from 'zod';

type ParsedContextOptions = z.output<typeof contextSchema> & { nCtx: number };

/**
 * A llama.cpp context: the KV cache for up to nSeqMax sequences, and its compute buffers. The
 * sequences that generate at the same time share its decode steps (continuous batching).
 */
export class Context {
  readonly nCtx: number;
  readonly nSeqMax: number;
  readonly threads: number;
  private readonly sequences = new Map<number, Sequence>();
  #lora: ReadonlyArray<{ adapter: LoraAdapter; scale: number }> = [];
  #settingLoras = false;
  private disposed = false;
  private disposing: Promise<void> | undefined;

  private constructor(
    readonly model: Model,
    /** @internal */ readonly native: NativeContext,
    private readonly onDispose: (c: Context) => void,
  ) {
    const stats = native.stats();
    this.nCtx = stats.nCtx;
    this.nSeqMax = stats.nSeqMax;
    this.threads = stats.threads;
  }

  /** @internal */
  static async create(model: Model, opts: ParsedContextOptions, onDispose: (c: Context) => void): Promise<Context> {
    const threads = opts.threads ?? physicalCores();
    const draft = opts.draft ? draftOptions(model, opts.draft) : undefined;
    const nBatch = Math.min(opts.nBatch, opts.nCtx);
    const lora = checkLoraUses(model, opts.lora ?? [], 'createContext');
    try {
      const native = await getAddon().createContext(model.native, {
        nCtx: opts.nCtx,
        nBatch,
        nUbatch: Math.min(opts.nUbatch ?? nBatch, nBatch),
        nSeqMax: opts.nSeqMax,
        threads,
        threadsBatch: opts.threadsBatch ?? threads,
        threadPriority: THREAD_PRIORITIES[opts.threadPriority ?? model.threadPriority],
        flashAttention: opts.flashAttention === 'auto' ? -1 : opts.flashAttention ? 1 : 0,
        typeK: KV_CACHE_TYPES[opts.kvCacheType],
        typeV: KV_CACHE_TYPES[opts.kvCacheTypeV ?? opts.kvCacheType],
        kvUnified: opts.kvUnified,
        draft,
        lora: lora.map(({ adapter, scale }) => ({ adapter: adapter.native, scale })),
      });
      const ctx = new Context(model, native, onDispose);
      ctx.#lora = lora;
      return ctx;
    } catch (err) {
      throw fromNative(err, 'cannot create the context');
    }
  }

  /** Context length available to one sequence. */
  get nCtxPerSequence(): number {
    return this.native.stats().nCtxSeq;
  }

  /**
   * What the context's scheduler has done so far: llama_decode calls, tokens decoded in them,
   * and the most sequences one call has served (above 1 when generations shared a step).
   */
  get batchStats(): { decodeSteps: number; decodedTokens: number; widestStep: number } {
    this.assertLive();
    const { decodeSteps, decodedTokens, widestStep } = this.native.stats();
    return { decodeSteps, decodedTokens, widestStep };
  }

  /** The LoRA adapters the context applies, with their scales ([]: the base model). */
  get lora(): ReadonlyArray<{ adapter: LoraAdapter; scale: number }> {
    return this.#lora;
  }

  /**
   * Replaces the LoRA adapters the context applies (an empty array: the base model). Adapters
   * apply per context: every sequence of it generates with them. While a sequence generates this
   * fails with BusyError (a generation runs with one set of adapters from start to end). When the
   * adapters in effect change, the sequences' KV caches are dropped (they were computed with the
   * old weights): their next generation evaluates their tokens again.
   */
  async setLoras(loras: ReadonlyArray<{ adapter: LoraAdapter; scale?: number }>): Promise<void> {
    this.assertLive();
    const list = checkLoraUses(this.model, parseOptions(loraUsesSchema, loras, 'setLoras'), 'setLoras');
    if (this.#settingLoras) throw new BusyError('the adapters of this context are being set; wait for that first');
    if ([...this.sequences.values()].some((s) => s.isGenerating)) {
      throw new BusyError('a sequence of this context is generating: its adapters can change once it is done (abort it, or wait for it)');
    }
    this.#settingLoras = true;
    try {
      const changed = await this.native.setLoras(list.map(({ adapter, scale }) => ({ adapter: adapter.native, scale })));
      this.#lora = list;
      if (changed) for (const s of this.sequences.values()) s.forgetCache();
    } catch (err) {
      throw fromNative(err, 'cannot set the LoRA adapters');
    } finally {
      this.#settingLoras = false;
    }
  }

  /** @internal setLoras() is under way: no generation may start */
  get settingLoras(): boolean {
    return this.#settingLoras;
  }

  /** Takes a free sequence slot of this context. */
  sequence(): Sequence {
    this.assertLive();
    for (let id = 0; id < this.nSeqMax; id++) {
      if (!this.sequences.has(id)) {
        const seq = new Sequence(this, id, () => this.sequences.delete(id));
        this.sequences.set(id, seq);
        return seq;
      }
    }
    throw new BusyError(
      `all ${this.nSeqMax} sequences of this context are in use; dispose one, or create the context with a larger nSeqMax`,
    );
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Aborts running generations, waits for them, then frees the KV cache. Safe to call twice. */
  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      this.disposed = true;
      await Promise.all([...this.sequences.values()].map((s) => s.dispose()));
      await this.native.dispose();
      this.onDispose(this);
    })();
    return this.disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  /** @internal */
  assertLive(): void {
    if (this.disposed) throw new DisposedError('the context has been disposed');
    if (this.model.isDisposed) throw new DisposedError('the model of this context has been disposed');
  }
}

/** Checks a speculative decoding option against the model and turns it into the native shape. */
function draftOptions(model: Model, draft: NonNullable<ParsedContextOptions['draft']>): NativeContextOptions['draft'] {
  const ngram = draft.ngram === true ? NGRAM_SIZES : draft.ngram;
  if (ngram && ngram.min > ngram.max) throw new OptionsError(`Invalid draft.ngram: min (${ngram.min}) is above max (${ngram.max})`);
  if (!draft.model) return { nDraft: draft.nDraft, ngramMin: ngram!.min, ngramMax: ngram!.max, pMin: 0, adaptive: draft.adaptive };
  const d = draft.model;
  if (d.isDisposed) throw new DisposedError('the draft model has been disposed');
  const a = model.info;
  const b = d.info;
  if (a.nVocab !== b.nVocab || a.specialTokens.bos !== b.specialTokens.bos || a.specialTokens.eos !== b.specialTokens.eos) {
    throw new OptionsError(
      `the draft model's vocabulary does not match the model's (${b.nVocab} tokens, BOS ${b.specialTokens.bos}, EOS ${b.specialTokens.eos}; expected ${a.nVocab}, ${a.specialTokens.bos}, ${a.specialTokens.eos}): use a draft model of the same tokenizer, or draft: { ngram: true }`,
    );
  }
  return { nDraft: draft.nDraft, ngramMin: 0, ngramMax: 0, pMin: draft.pMin, adaptive: draft.adaptive, model: (d as Model).native };
}
