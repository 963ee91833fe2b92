import { AbortError, ContextOverflowError, DisposedError, OptionsError, fromNative } from '../errors.js';
import { getAddon, type NativeEmbeddingContext } from '../native/index.js';
import { DEFAULT_EMBEDDING_CTX, POOLING_IDS, embedSchema, embeddingContextSchema, type EmbedOptions, type EmbeddingContextOptions, type Pooling } from './embedding-options.js';
import type { Model } from './model.js';
import { physicalCores } from './threads.js';
import { parseOptions } from './validate.js';

/** One input: text, or token ids already tokenized with the model's vocabulary. */
export type EmbeddingInput = string | readonly number[];

/** What one embed call computed, beside the vectors. */
export interface EmbeddingResult {
  /** one vector per input (pooling 'none': each input's token vectors, one after another) */
  embeddings: Float32Array[];
  /** tokens of each input, after truncation */
  tokenCounts: number[];
  /** inputs that were cut to nCtx tokens */
  truncated: number[];
  /** llama_decode calls made: the inputs share them, as many as fit one */
  decodes: number;
}

/**
 * A context that turns text into embedding vectors. Inputs are batched: as many as fit nCtx
 * tokens and nSeqMax sequences go through one decode. Calls on one context run one at a time.
 */
export class EmbeddingContext {
  readonly nCtx: number;
  readonly nSeqMax: number;
  /** length of one vector */
  readonly nEmbd: number;
  readonly pooling: Pooling;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly running = new Set<Int32Array>();
  private disposed = false;
  private disposing: Promise<void> | undefined;

  private constructor(
    readonly model: Model,
    private readonly native: NativeEmbeddingContext,
    private readonly onDispose: (c: EmbeddingContext) => void,
  ) {
    const stats = native.stats();
    this.nCtx = stats.nCtx;
    this.nSeqMax = stats.nSeqMax;
    this.nEmbd = stats.nEmbd;
    this.pooling = stats.pooling as Pooling;
  }

  /** @internal */
  static async create(model: Model, options: EmbeddingContextOptions, onDispose: (c: EmbeddingContext) => void): Promise<EmbeddingContext> {
    const opts = parseOptions(embeddingContextSchema, options, 'createEmbeddingContext');
    const info = model.info;
    const nCtx = opts.nCtx ?? Math.min(info.nCtxTrain || DEFAULT_EMBEDDING_CTX, DEFAULT_EMBEDDING_CTX);
    // the file's pooling, when it names one; a generative model names none and gets mean pooling
    const filePooling = info.metadata[`${info.architecture}.pooling_type`];
    const pooling = opts.pooling !== undefined ? POOLING_IDS[opts.pooling] : filePooling !== undefined ? -1 : POOLING_IDS.mean;
    try {
      const native = await getAddon().createEmbeddingContext(model.native, {
        nCtx,
        nSeqMax: opts.nSeqMax,
        threads: opts.threads ?? physicalCores(),
        pooling,
        flashAttention: opts.flashAttention === 'auto' ? -1 : opts.flashAttention ? 1 : 0,
      });
      return new EmbeddingContext(model, native, onDispose);
    } catch (err) {
      throw fromNative(err, 'cannot create the embedding context');
    }
  }

  /**
   * The embedding of each input: one Float32Array of nEmbd numbers per input (with pooling
   * 'none', nEmbd per token). Normalized to unit length unless `normalize: false`.
   */
  async embed(inputs: EmbeddingInput | readonly EmbeddingInput[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    return (await this.embedWithUsage(inputs, options)).embeddings;
  }

  /** embed(), with the token count of each input and the number of decodes made. */
  async embedWithUsage(inputs: EmbeddingInput | readonly EmbeddingInput[], options: EmbedOptions = {}): Promise<EmbeddingResult> {
    this.assertLive();
    const opts = parseOptions(embedSchema, options, 'embed');
    const list = toList(inputs);
    const tokenLists = list.map((input, i) => this.tokens(input, i, opts));
    const truncated: number[] = [];
    tokenLists.forEach((t, i) => {
      if (t.length <= this.nCtx) return;
      if (!opts.truncate) {
        throw new ContextOverflowError(
          `input ${i} has ${t.length} tokens, more than the embedding context's nCtx (${this.nCtx}): split it, create the context with a larger nCtx, or pass truncate: true to keep its first ${this.nCtx} tokens`,
        );
      }
      const keepsEos = this.model.info.specialTokens.addEos && t[t.length - 1] === this.model.info.specialTokens.eos;
      tokenLists[i] = keepsEos ? [...t.slice(0, this.nCtx - 1), t[t.length - 1]!] : t.slice(0, this.nCtx);
      truncated.push(i);
    });
    if (opts.signal?.aborted) throw new AbortError('embedding was aborted before it started');
    const control = new Int32Array(2);
    const onAbort = () => Atomics.store(control, 0, 1);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const run = this.queue.then(async () => {
      if (this.disposed || this.model.isDisposed) throw new AbortError('the embedding context was disposed before this embed() ran');
      if (opts.signal?.aborted) throw new AbortError('embedding was aborted before it started');
      this.running.add(control);
      try {
        return await this.native.embed(Int32Array.from(tokenLists.flat()), Int32Array.from(tokenLists.map((t) => t.length)), control);
      } catch (err) {
        if (Atomics.load(control, 0) === 1) throw new AbortError(this.disposed ? 'the embedding context was disposed during embed()' : 'embedding was aborted', { cause: err });
        throw fromNative(err, 'embedding failed');
      } finally {
        this.running.delete(control);
        opts.signal?.removeEventListener('abort', onAbort);
      }
    });
    this.queue = run.catch(() => undefined);
    const { data, decodes } = await run;
    const embeddings: Float32Array[] = [];
    let offset = 0;
    for (const t of tokenLists) {
      const size = this.pooling === 'none' ? t.length * this.nEmbd : this.nEmbd;
      const v = data.slice(offset, offset + size);
      offset += size;
      if (opts.normalize) normalize(v, this.nEmbd);
      embeddings.push(v);
    }
    return { embeddings, tokenCounts: tokenLists.map((t) => t.length), truncated, decodes };
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Aborts a running embed(), waits for it, then frees the context. Safe to call twice. */
  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      this.disposed = true;
      for (const control of this.running) Atomics.store(control, 0, 1);
      await this.queue;
      await this.native.dispose();
      this.onDispose(this);
    })();
    return this.disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  private tokens(input: EmbeddingInput, index: number, opts: { special: boolean }): number[] {
    if (typeof input === 'string') {
      if (input.length === 0) throw new OptionsError(`input ${index} is empty: an embedding needs at least one character of text`);
      return this.model.tokenize(input, { addBos: true, special: opts.special });
    }
    const nVocab = this.model.info.nVocab;
    if (input.length === 0) throw new OptionsError(`input ${index} has no tokens: an embedding needs at least one`);
    for (const t of input) {
      if (!Number.isInteger(t) || t < 0 || t >= nVocab) {
        throw new OptionsError(`input ${index} has token id ${String(t)}, outside the vocabulary (0 to ${nVocab - 1}): pass text, or ids from model.tokenize()`);
      }
    }
    return [...input];
  }

  private assertLive(): void {
    if (this.disposed) throw new DisposedError('the embedding context has been disposed');
    if (this.model.isDisposed) throw new DisposedError('the model of this embedding context has been disposed');
  }
}

function toList(inputs: unknown): EmbeddingInput[] {
  const isTokens = (v: unknown) => Array.isArray(v) && v.every((t) => typeof t === 'number');
  if (typeof inputs === 'string' || (isTokens(inputs) && (inputs as unknown[]).length > 0)) return [inputs as EmbeddingInput];
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw new OptionsError('embed() takes a string, an array of token ids, or a non-empty array of them');
  }
  inputs.forEach((v, i) => {
    if (typeof v !== 'string' && !isTokens(v)) throw new OptionsError(`input ${i} is neither a string nor an array of token ids`);
  });
  return inputs as EmbeddingInput[];
}

/** Scales each nEmbd-long vector in `v` to unit Euclidean length (a zero vector stays zero). */
function normalize(v: Float32Array, nEmbd: number): void {
  for (let start = 0; start < v.length; start += nEmbd) {
    let sum = 0;
    for (let i = start; i < start + nEmbd; i++) sum += v[i]! * v[i]!;
    const norm = Math.sqrt(sum);
    if (norm === 0) continue;
    for (let i = start; i < start + nEmbd; i++) v[i] = v[i]! / norm;
  }
}
