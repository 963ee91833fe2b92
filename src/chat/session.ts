/**
 * A chat: the conversation's history and the KV cache of one sequence. Each turn renders the
 * whole conversation and evaluates only what follows the longest prefix already cached; the
 * model's replies are kept as the token ids it generated, so that prefix covers them too.
 */
import { z } from 'zod';
import { BusyError, ContextOverflowError, DisposedError, OptionsError } from '../errors.js';
import type { Context } from '../engine/context.js';
import type { Model } from '../engine/model.js';
import { generateSchema, type GenerateOptions } from '../engine/options.js';
import type { FinishReason, GenerationTimings, Sequence } from '../engine/sequence.js';
import { int, parseOptions } from '../engine/validate.js';
import { renderChat } from './format.js';
import type { ChatMessage, PromptPart } from './messages.js';
import { readChatFile, writeChatFile } from './persist.js';
import { renderModelTemplate } from './template.js';
import { tokenizeParts } from './tokenize.js';

export type ChatFormatter = (messages: readonly ChatMessage[], options: { addGenerationPrompt: boolean }) => string;

const ownOptions = {
  /** the system turn that opens every prompt */
  systemPrompt: z.string({ error: 'expected a string' }).optional(),
  /** a context to take a sequence from (default: a context of the chat's own) */
  context: z.custom<Context>((v) => typeof v === 'object' && v !== null && 'sequence' in v, { error: 'expected a Context' }).optional(),
  /** context length of the chat's own context */
  nCtx: int(16, 1 << 24).optional(),
  /** 'chatml' (Hermes 3's format), 'model' (the GGUF's Jinja template) or a function */
  chatFormat: z
    .union([z.literal('chatml'), z.literal('model'), z.custom<ChatFormatter>((v) => typeof v === 'function')], {
      error: "expected 'chatml', 'model' or a function",
    })
    .default('chatml'),
  /** when the conversation outgrows the context: drop the oldest turns, or raise ContextOverflowError */
  contextOverflow: z.enum(['drop-oldest', 'error'], { error: "expected 'drop-oldest' or 'error'" }).default('drop-oldest'),
  /** messages to start from */
  history: z.array(z.custom<ChatMessage>((v) => typeof v === 'object' && v !== null && 'role' in v), { error: 'expected an array of messages' }).optional(),
};
const { signal: _signal, parseSpecial: _parseSpecial, ...generationShape } = generateSchema.shape;
const chatSchema = z.strictObject({ ...ownOptions, ...generationShape });
/** Options of model.chat(): the chat's own and default generation options for every turn. */
export type ChatOptions = z.input<typeof chatSchema>;
/** Options of one turn: generation options (see GenerateOptions) and a signal. */
export type SendOptions = Omit<GenerateOptions, 'parseSpecial'>;

export interface ChatUsage {
  /** tokens of the prompt of this turn, cached or not */
  promptTokens: number;
  /** prompt tokens reused from the KV cache */
  cachedTokens: number;
  completionTokens: number;
}

export type ChatEvent =
  | { type: 'text'; text: string }
  | { type: 'done'; text: string; finishReason: FinishReason; usage: ChatUsage; timings: GenerationTimings; droppedMessages: number };

export interface ChatResult {
  text: string;
  finishReason: FinishReason;
  usage: ChatUsage;
  timings: GenerationTimings;
  toolCalls: never[];
}

export class Chat {
  private readonly options: z.output<typeof chatSchema>;
  /** generation options the caller set on the chat (applied to every turn) */
  private readonly defaults: Record<string, unknown>;
  private messages: ChatMessage[];
  /** token ids the model generated, by index into messages, for replies whose text is unchanged */
  private replies = new Map<number, number[]>();
  private sequence: Sequence | undefined;
  private ownContext: Context | undefined;
  private starting: Promise<Sequence> | undefined;
  private busy = false;
  private disposed = false;

  /** @internal use model.chat() */
  constructor(
    readonly model: Model,
    options: ChatOptions = {},
  ) {
    this.options = parseOptions(chatSchema, options, 'chat');
    this.defaults = Object.fromEntries(Object.entries(options).filter(([k, v]) => k in generationShape && v !== undefined));
    this.messages = [...(this.options.history ?? [])];
  }

  get systemPrompt(): string | undefined {
    return this.options.systemPrompt;
  }

  set systemPrompt(value: string | undefined) {
    if (value !== undefined && typeof value !== 'string') throw new OptionsError('Invalid systemPrompt: expected a string');
    this.options.systemPrompt = value;
  }

  /** The conversation so far (without the system prompt). */
  get history(): ChatMessage[] {
    return this.messages.map((m) => ({ ...m }));
  }

  /** Replaces the conversation; the KV cache keeps whatever prefix still matches. */
  setHistory(messages: readonly ChatMessage[]): void {
    this.assertIdle();
    this.messages = messages.map((m) => ({ ...m }));
    this.replies = new Map();
  }

  /** Forgets the conversation (the system prompt stays). */
  reset(): void {
    this.setHistory([]);
  }

  /**
   * Sends a user message and streams the reply: `text` events, then one `done` event with the
   * finish reason, token usage and timings. The reply joins the history when the turn ends,
   * also when it is aborted (as far as it was streamed).
   */
  send(text: string, options: SendOptions = {}): AsyncGenerator<ChatEvent, void> {
    this.assertIdle();
    if (typeof text !== 'string') throw new OptionsError(`Invalid message for send: expected a string, received ${typeof text}`);
    const { signal, ...rest } = options;
    const opts = parseOptions(generateSchema, { ...this.defaults, ...rest, signal }, 'send');
    return this.turn(text, opts);
  }

  /** Sends a user message and resolves with the whole reply. */
  async ask(text: string, options: SendOptions = {}): Promise<ChatResult> {
    let result: ChatResult | undefined;
    for await (const ev of this.send(text, options)) {
      if (ev.type === 'done') result = { text: ev.text, finishReason: ev.finishReason, usage: ev.usage, timings: ev.timings, toolCalls: [] };
    }
    return result!;
  }

  /** Saves the conversation and its KV cache; load() resumes it without evaluating it again. */
  async save(path: string): Promise<void> {
    this.assertIdle();
    const seq = await this.ensureSequence();
    const { tokens, state } = await seq.saveState();
    await writeChatFile(path, {
      model: this.modelIdentity(),
      systemPrompt: this.options.systemPrompt,
      messages: this.messages,
      replies: [...this.replies],
      tokens,
    }, state);
  }

  /** Restores a conversation saved by save(), with its KV cache. */
  async load(path: string): Promise<void> {
    this.assertIdle();
    const { header, state } = await readChatFile(path);
    const mine = this.modelIdentity();
    if (JSON.stringify(header.model) !== JSON.stringify(mine)) {
      throw new OptionsError(`${path} was saved with another model (${JSON.stringify(header.model)}); this chat runs ${JSON.stringify(mine)}`);
    }
    const seq = await this.ensureSequence();
    await seq.restoreState({ tokens: header.tokens, state });
    this.options.systemPrompt = header.systemPrompt;
    this.messages = header.messages;
    this.replies = new Map(header.replies);
  }

  /** Frees the chat's sequence (and its own context). */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const seq = await this.starting?.catch(() => undefined);
    await seq?.dispose();
    await this.ownContext?.dispose();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  private assertIdle(): void {
    if (this.disposed) throw new DisposedError('the chat has been disposed');
    if (this.busy) throw new BusyError('the chat is answering; wait for the reply or abort it first');
  }

  private modelIdentity() {
    const { architecture, nParams, nVocab, fileType } = this.model.info;
    return { architecture, nParams, nVocab, fileType };
  }

  private ensureSequence(): Promise<Sequence> {
    this.starting ??= (async () => {
      if (this.options.context) return this.options.context.sequence();
      this.ownContext = await this.model.createContext({ nCtx: this.options.nCtx });
      return this.ownContext.sequence();
    })();
    return this.starting.then((s) => (this.sequence = s));
  }

  private conversation(user: ChatMessage): ChatMessage[] {
    const system: ChatMessage[] = this.options.systemPrompt !== undefined ? [{ role: 'system', content: this.options.systemPrompt }] : [];
    return [...system, ...this.messages, user];
  }

  private promptTokens(messages: ChatMessage[]): number[] {
    const format = this.options.chatFormat;
    if (format === 'chatml') {
      const offset = messages.length - this.messages.length - 1;
      const replies = new Map([...this.replies].map(([i, t]) => [i + offset, t]));
      return tokenizeParts(this.model, renderChat(messages), { addBos: true, replies });
    }
    const text =
      format === 'model'
        ? renderModelTemplate(this.model.info.chatTemplate ?? '', messages, {
            addGenerationPrompt: true,
            eosToken: this.model.detokenize([this.model.info.specialTokens.eos], { special: true }),
          })
        : format(messages, { addGenerationPrompt: true });
    // a template string mixes template and content: special tokens are parsed throughout
    const parts: PromptPart[] = [{ text, special: true }];
    const tokens = tokenizeParts(this.model, parts, { addBos: true });
    const bos = this.model.info.specialTokens.bos;
    if (tokens[0] === bos && tokens[1] === bos) tokens.shift();
    return tokens;
  }

  /** The prompt for a turn, dropping the oldest turns (or raising) when it does not fit. */
  private fit(user: ChatMessage, room: number, reserve: number): { tokens: number[]; dropped: number } {
    let dropped = 0;
    for (;;) {
      const tokens = this.promptTokens(this.conversation(user));
      if (tokens.length + reserve <= room) return { tokens, dropped };
      if (this.options.contextOverflow === 'error' || this.messages.length === 0) {
        throw new ContextOverflowError(
          `the conversation needs ${tokens.length} tokens and ${reserve} more for the reply, but the context holds ${room}` +
            (this.messages.length === 0 ? ' even without earlier turns' : '') +
            '; use a larger nCtx, a shorter message or maxTokens' +
            (this.options.contextOverflow === 'error' ? ", or contextOverflow: 'drop-oldest'" : ''),
        );
      }
      // drop the oldest turn: everything before the second user message
      const next = this.messages.findIndex((m, i) => i > 0 && m.role === 'user');
      const n = next === -1 ? this.messages.length : next;
      this.messages.splice(0, n);
      this.replies = new Map([...this.replies].filter(([i]) => i >= n).map(([i, t]) => [i - n, t]));
      dropped += n;
    }
  }

  private async *turn(text: string, opts: z.output<typeof generateSchema>): AsyncGenerator<ChatEvent, void> {
    if (this.busy) throw new BusyError('the chat is already answering; wait for the reply or abort it first');
    this.busy = true;
    const user: ChatMessage = { role: 'user', content: text };
    let reply = '';
    const generated: number[] = [];
    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      this.messages.push(user, { role: 'assistant', content: reply });
      const eog = this.model.info.specialTokens.eog;
      const body = generated.length > 0 && eog.includes(generated[generated.length - 1]) ? generated.slice(0, -1) : generated;
      // the generated ids stand for the reply only when they spell exactly the text kept
      if (this.model.detokenize(body) === reply) this.replies.set(this.messages.length - 1, body);
    };
    try {
      const seq = await this.ensureSequence();
      const room = seq.context.nCtxPerSequence;
      const reserve = Math.min(opts.maxTokens, Math.floor(room / 2));
      const { tokens, dropped } = this.fit(user, room, reserve);
      let started = false;
      for await (const chunk of seq.generateFrom(tokens, { ...opts })) {
        started = true;
        generated.push(...chunk.tokens);
        if (chunk.text) {
          reply += chunk.text;
          yield { type: 'text', text: chunk.text };
        }
        if (chunk.finishReason && chunk.timings) {
          record();
          const t = chunk.timings;
          yield {
            type: 'done',
            text: reply,
            finishReason: chunk.finishReason,
            usage: { promptTokens: t.promptTokens, cachedTokens: t.cachedTokens, completionTokens: t.generatedTokens },
            timings: t,
            droppedMessages: dropped,
          };
        }
      }
      if (!started) throw new OptionsError('the generation produced no result');
    } finally {
      // a consumer that stops early keeps what it was shown
      if (reply.length > 0 || generated.length > 0) record();
      this.busy = false;
    }
  }
}
