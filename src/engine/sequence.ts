import { BusyError, ContextOverflowError, DisposedError, OptionsError, fromNative } from '../errors.js';
import { getAddon, type NativeGenerationDone, type NativeSampler } from '../native/index.js';
import type { Context } from './context.js';
import { generateSchema, resolveSeed, type GenerateOptions, type ParsedGenerateOptions } from './options.js';
import { StopMatcher } from './stop.js';
import { parseOptions } from './validate.js';

/** 'tool_call': the reply ends in tool calls left to the caller; 'max_steps': a chat's tool loop hit maxSteps */
export type FinishReason = 'stop' | 'length' | 'abort' | 'tool_call' | 'max_steps';

export interface GenerationTimings {
  /** tokens of the prompt, cached or not */
  promptTokens: number;
  /** prompt tokens found in the KV cache and not evaluated again */
  cachedTokens: number;
  /** prompt tokens evaluated: promptTokens - cachedTokens */
  evaluatedTokens: number;
  generatedTokens: number;
  promptMs: number;
  generateMs: number;
  promptTokensPerSecond: number;
  generateTokensPerSecond: number;
  /** speculative decoding (a context with `draft`): tokens proposed, and those the model agreed with */
  draftTokens: number;
  acceptedTokens: number;
}

export interface Chunk {
  /** new text; never splits a UTF-8 character */
  text: string;
  /** token ids sampled for this chunk */
  tokens: number[];
  /** present on the last chunk only */
  finishReason?: FinishReason;
  /** present on the last chunk only */
  timings?: GenerationTimings;
}

interface NativeEvent {
  tokens: Int32Array;
  bytes: Uint8Array;
  done: NativeGenerationDone | null;
  error?: Error;
}

/** Length of the common prefix of two token lists. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * One sequence of a context: its token history and the part of it held in the KV cache. A new
 * request evaluates only the tokens after the longest prefix already cached.
 */
export class Sequence {
  private history: number[] = [];
  private cached = 0;
  private running: { control: Int32Array; finished: Promise<void> } | undefined;
  private disposed = false;

  /** @internal */
  constructor(
    readonly context: Context,
    readonly id: number,
    private readonly onDispose: () => void,
  ) {}

  /** Every token of the sequence so far (prompts and generated tokens). */
  get tokens(): readonly number[] {
    return this.history;
  }

  /** How many leading tokens of `tokens` are in the KV cache. */
  get cachedTokens(): number {
    return this.cached;
  }

  get isGenerating(): boolean {
    return this.running !== undefined;
  }

  /**
   * Appends `input` (text or token ids) to the sequence and streams the continuation.
   * Text is tokenized with special-token parsing (see `parseSpecial`); BOS is added once, at the
   * start of an empty sequence, when the model asks for it.
   */
  generate(input: string | readonly number[], options: GenerateOptions = {}): AsyncGenerator<Chunk, void> {
    this.assertLive();
    const opts = parseOptions(generateSchema, options, 'generate');
    const tokens = this.inputTokens(input, opts.parseSpecial);
    return this.run([...this.history, ...tokens], opts);
  }

  /**
   * Replaces the sequence's content with `tokens` and streams the continuation, evaluating only
   * what follows the longest prefix already in the KV cache.
   */
  generateFrom(tokens: readonly number[], options: GenerateOptions = {}): AsyncGenerator<Chunk, void> {
    this.assertLive();
    const opts = parseOptions(generateSchema, options, 'generate');
    return this.run(this.checkTokens(tokens), opts);
  }

  /** Forgets the history and frees the sequence's KV cache cells. */
  async clear(): Promise<void> {
    this.assertLive();
    if (this.running) throw new BusyError('the sequence is generating; abort it first');
    this.history = [];
    this.cached = 0;
    await this.context.native.removeTokens(this.id, 0, -1);
  }

  /** The KV cache state of the sequence (llama.cpp's format) with the tokens it holds. */
  async saveState(): Promise<{ tokens: number[]; state: Buffer }> {
    this.assertLive();
    if (this.running) throw new BusyError('the sequence is generating; wait for it or abort it first');
    try {
      const state = await this.context.native.saveSequence(this.id);
      return { tokens: this.history.slice(0, this.cached), state };
    } catch (err) {
      throw fromNative(err, 'cannot save the sequence state');
    }
  }

  /** Replaces the sequence with a saved state: its tokens are cached again without evaluation. */
  async restoreState(saved: { tokens: readonly number[]; state: Uint8Array }): Promise<void> {
    this.assertLive();
    if (this.running) throw new BusyError('the sequence is generating; wait for it or abort it first');
    const tokens = this.checkTokens(saved.tokens);
    try {
      const held = await this.context.native.restoreSequence(this.id, saved.state);
      if (held !== tokens.length) {
        await this.context.native.removeTokens(this.id, 0, -1);
        throw new OptionsError(`the saved state holds ${held} tokens but ${tokens.length} token ids came with it; the file does not belong together`);
      }
      this.history = tokens;
      this.cached = tokens.length;
    } catch (err) {
      this.history = [];
      this.cached = 0;
      throw fromNative(err, 'cannot restore the sequence state');
    }
  }

  /** @internal The context dropped the sequence's KV cache (its adapters changed): all of it is evaluated again next time. */
  forgetCache(): void {
    this.cached = 0;
  }

  /**
   * The KV cache state of positions [from, to) (to: default cachedTokens) with their token ids:
   * what appendState() adds after the first `from` tokens. Takes a free sequence slot of the
   * context for a moment (BusyError when there is none) and needs a unified KV cache
   * (kvUnified, the default).
   */
  async saveStateRange(from: number, to: number = this.cached): Promise<{ from: number; tokens: number[]; state: Buffer }> {
    this.assertLive();
    if (this.running) throw new BusyError('the sequence is generating; wait for it or abort it first');
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || from > to || to > this.cached) {
      throw new OptionsError(`Invalid range for saveStateRange: expected integers 0 <= from <= to <= ${this.cached} (the cached tokens), received ${from} and ${to}`);
    }
    const scratch = this.context.sequence();
    try {
      const state = await this.context.native.saveSequenceRange(this.id, scratch.id, from, to);
      return { from, tokens: this.history.slice(from, to), state };
    } catch (err) {
      throw fromNative(err, 'cannot save the sequence state');
    } finally {
      await scratch.dispose();
    }
  }

  /**
   * Keeps the first `saved.from` cached tokens and adds a state saved by saveStateRange(from)
   * after them, its cells at their saved positions. On failure the sequence keeps what it held
   * before `from` (or less), and says so in cachedTokens.
   */
  async appendState(saved: { from: number; tokens: readonly number[]; state: Uint8Array }): Promise<void> {
    this.assertLive();
    if (this.running) throw new BusyError('the sequence is generating; wait for it or abort it first');
    const { from } = saved;
    if (!Number.isInteger(from) || from < 0 || from > this.cached) {
      throw new OptionsError(`Invalid from for appendState: the sequence holds ${this.cached} cached tokens, the state starts at ${from}`);
    }
    const tokens = this.checkTokens(saved.tokens);
    const scratch = this.context.sequence();
    this.history = this.history.slice(0, from);
    this.cached = from;
    try {
      let held = from;
      if (saved.state.length > 0) held = await this.context.native.appendSequence(this.id, scratch.id, from, saved.state);
      else await this.context.native.removeTokens(this.id, from, -1);
      if (held !== from + tokens.length) {
        await this.context.native.removeTokens(this.id, from, -1);
        throw new OptionsError(`the saved state holds ${held - from} tokens but ${tokens.length} token ids came with it; the file does not belong together`);
      }
      this.history.push(...tokens);
      this.cached = this.history.length;
    } catch (err) {
      throw fromNative(err, 'cannot restore the sequence state');
    } finally {
      await scratch.dispose();
    }
  }

  /** Aborts a running generation, frees the KV cells and returns the slot to the context. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (this.running) {
      Atomics.store(this.running.control, 0, 1);
      await this.running.finished;
    }
    if (!this.context.isDisposed) {
      await this.context.native.removeTokens(this.id, 0, -1).catch(() => false);
    }
    this.onDispose();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  private assertLive(): void {
    if (this.disposed) throw new DisposedError('the sequence has been disposed');
    this.context.assertLive();
  }

  private inputTokens(input: string | readonly number[], parseSpecial: boolean): number[] {
    if (typeof input === 'string') {
      const model = this.context.model;
      const addBos = this.history.length === 0 && model.info.specialTokens.addBos;
      const tokens = model.tokenize(input, { special: parseSpecial, addBos });
      // a prompt that already starts with the BOS text must not get a second BOS
      const bos = model.info.specialTokens.bos;
      if (addBos && tokens.length > 1 && tokens[0] === bos && tokens[1] === bos) tokens.shift();
      return tokens;
    }
    return this.checkTokens(input);
  }

  private checkTokens(tokens: readonly number[]): number[] {
    if (!Array.isArray(tokens) && !ArrayBuffer.isView(tokens)) {
      throw new OptionsError('Invalid input for generate: expected a string or an array of token ids');
    }
    const nVocab = this.context.model.info.nVocab;
    const out = Array.from(tokens as ArrayLike<number>);
    for (const t of out) {
      if (!Number.isInteger(t) || t < 0 || t >= nVocab) {
        throw new OptionsError(`Invalid input for generate: token id ${t} is outside the vocabulary (0..${nVocab - 1})`);
      }
    }
    return out;
  }

  private run(full: number[], opts: ParsedGenerateOptions): AsyncGenerator<Chunk, void> {
    if (full.length === 0) throw new OptionsError('Invalid input for generate: the sequence is empty and the input has no tokens');
    return this.stream(full, opts);
  }

  private async *stream(full: number[], opts: ParsedGenerateOptions): AsyncGenerator<Chunk, void> {
    if (this.running) throw new BusyError('the sequence is already generating; wait for it or abort it first');
    const control = new Int32Array(2);
    let settle!: () => void;
    const run = { control, finished: new Promise<void>((r) => (settle = r)) };
    this.running = run;
    const onAbort = () => Atomics.store(control, 0, 1);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    let sampler: NativeSampler | undefined;
    // Frees the sampler and the sequence slot. Runs when the native loop ends,
    // even if the consumer has stopped pulling chunks, so dispose() never waits on a consumer.
    const finish = () => {
      opts.signal?.removeEventListener('abort', onAbort);
      sampler?.dispose();
      sampler = undefined;
      if (this.running === run) this.running = undefined;
      settle();
    };
    let started = false;
    try {
      this.assertLive();
      if (this.context.settingLoras) throw new BusyError('the LoRA adapters of this context are being set; wait for setLoras() first');
      const nCtxSeq = this.context.nCtxPerSequence;
      if (full.length >= nCtxSeq) {
        throw new ContextOverflowError(
          `the prompt needs ${full.length} tokens but a sequence of this context holds ${nCtxSeq}; create the context with a larger nCtx, or shorten the prompt`,
        );
      }
      const maxTokens = Math.min(opts.maxTokens, nCtxSeq - full.length);
      // keep at least one token to evaluate: its logits give the first sampled token
      const keep = Math.min(commonPrefix(this.history.slice(0, this.cached), full), full.length - 1);
      sampler = this.makeSampler(opts);

      const events: NativeEvent[] = [];
      let wake: (() => void) | undefined;
      this.context.native.generate(
        this.id, keep, Int32Array.from(full), sampler,
        { maxTokens, window: opts.bufferTokens, special: opts.renderSpecial },
        control,
        (tokens, bytes, done, error) => {
          this.history.push(...tokens);
          if (done) {
            this.cached = done.nPast;
            finish();
          }
          events.push({ tokens, bytes, done, error });
          wake?.();
        },
      );
      started = true;
      this.history = full.slice();
      this.cached = keep;

      const decoder = new TextDecoder('utf-8');
      const stopper = new StopMatcher(opts.stop);
      let consumed = 0;
      for (;;) {
        while (events.length === 0) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        const ev = events.shift()!;
        const tokens = Array.from(ev.tokens);
        let text = stopper.push(decoder.decode(ev.bytes, { stream: ev.done === null }));
        if (stopper.stopped) onAbort();
        if (ev.done) {
          if (ev.error) throw fromNative(ev.error);
          text += stopper.flush();
          const finishReason: FinishReason = stopper.stopped ? 'stop' : (ev.done.finishReason ?? 'abort');
          yield { text, tokens, finishReason, timings: timings(ev.done, keep) };
          return;
        }
        consumed += tokens.length;
        if (text.length > 0 || (tokens.length > 0 && !stopper.stopped)) yield { text, tokens };
        // the consumer asked for more: let the native loop run further ahead
        Atomics.store(control, 1, consumed);
      }
    } finally {
      if (started) {
        // the consumer stopped early or threw: end the native loop; finish() runs when it has
        onAbort();
        await run.finished;
      } else {
        finish();
      }
    }
  }

  private makeSampler(opts: ParsedGenerateOptions): NativeSampler {
    const logitBias = opts.logitBias ? Object.entries(opts.logitBias).map(([k, v]) => [Number(k), v]) : undefined;
    try {
      return new (getAddon().Sampler)(this.context.model.native, { ...opts, seed: resolveSeed(opts.seed), logitBias, signal: undefined });
    } catch (err) {
      throw fromNative(err);
    }
  }
}

function timings(done: NativeGenerationDone, cachedTokens: number): GenerationTimings {
  const rate = (n: number, ms: number) => (ms > 0 ? (n * 1000) / ms : 0);
  return {
    promptTokens: cachedTokens + done.nPromptTokens,
    cachedTokens,
    evaluatedTokens: done.nPromptTokens,
    generatedTokens: done.nGenerated,
    promptMs: done.promptMs,
    generateMs: done.generateMs,
    promptTokensPerSecond: rate(done.nPromptTokens, done.promptMs),
    generateTokensPerSecond: rate(done.nGenerated, done.generateMs),
    draftTokens: done.draftTokens,
    acceptedTokens: done.acceptedTokens,
  };
}
