/**
 * A chat: the conversation's history and the KV cache of one sequence. Each turn evaluates only
 * what follows the longest prefix already cached; the model's replies are kept as the token ids
 * it generated, so that prefix covers them too. In ChatML the token ids of each message are kept
 * as well (turn-tokens.ts), so a turn tokenizes only its own messages.
 */
import { z } from 'zod';
import { BusyError, ContextOverflowError, DisposedError, OptionsError, SchemaValidationError } from '../errors.js';
import type { Context } from '../engine/context.js';
import type { Model } from '../engine/model.js';
import { generateSchema, type GenerateOptions } from '../engine/options.js';
import type { Chunk, FinishReason, Sequence } from '../engine/sequence.js';
import { parseOptions } from '../engine/validate.js';
import { TOOL_CALL_TRIGGER, toToolSpec, toolCallGrammar } from '../tools/define.js';
import { schemaToGrammar } from '../tools/grammar.js';
import { ToolCallStream, parseToolCalls, type ParsedToolCall } from '../tools/parse.js';
import { parseLooseJson } from '../tools/pyliteral.js';
import type { ChatMessage, ToolSpec } from './messages.js';
import { normalizeMessages, type ChatMessageInput } from './normalize.js';
import { promptTokens } from './prompt.js';
import { ChatSaver, saveSchema, type ChatLoadResult, type ChatSaveResult, type SaveOptions } from './saving.js';
import { ChatTokens } from './turn-tokens.js';
import { chatSchema, generationShape, turnSchema, type ChatEvent, type ChatOptions, type ChatResult, type ChatUsage, type SendOptions, type TurnOptions } from './types.js';
import { jsonModePrompt } from './json-mode.js';
import { runToolCalls, toolResponse } from './tool-runner.js';

export type { ChatFormatter } from './prompt.js';
export type { ChatOptions, SendOptions, ChatUsage, ChatEvent, ChatResult } from './types.js';
export type { ChatLoadResult, ChatSaveResult, SaveOptions as ChatSaveOptions } from './saving.js';

export class Chat {
  private readonly options: z.output<typeof chatSchema>;
  /** generation options the caller set on the chat (applied to every turn) */
  private readonly defaults: Record<string, unknown>;
  private messages: ChatMessage[];
  /** token ids the model generated, by index into messages, for replies whose text is unchanged */
  private replies = new Map<number, number[]>();
  private ownContext: Context | undefined;
  private starting: Promise<Sequence> | undefined;
  private busy = false;
  private disposed = false;
  private readonly promptCache: ChatTokens;
  private readonly saver: ChatSaver;

  /** @internal use model.chat() */
  constructor(
    readonly model: Model,
    options: ChatOptions = {},
  ) {
    this.options = parseOptions(chatSchema, options, 'chat');
    this.defaults = Object.fromEntries(Object.entries(options).filter(([k, v]) => k in generationShape && v !== undefined));
    this.messages = normalizeMessages(this.options.history ?? [], 'history');
    this.promptCache = new ChatTokens(model);
    this.saver = new ChatSaver(model);
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

  /**
   * Replaces the conversation with messages in the project's shape or OpenAI's (see
   * normalizeMessages); the KV cache keeps whatever prefix still matches.
   */
  setHistory(messages: readonly ChatMessageInput[]): void {
    this.assertIdle();
    this.messages = normalizeMessages(messages);
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
  send<S extends z.ZodType = z.ZodType>(text: string, options: SendOptions<S> = {}): AsyncGenerator<ChatEvent, void> {
    this.assertIdle();
    if (typeof text !== 'string') throw new OptionsError(`Invalid message for send: expected a string, received ${typeof text}`);
    const { signal, tools, toolChoice, maxSteps, schema, ...rest } = options ?? {};
    const turn = parseOptions(turnSchema, { tools, toolChoice, maxSteps, schema }, 'send');
    const opts = parseOptions(generateSchema, { ...this.defaults, ...rest, signal }, 'send');
    if (turn.schema && (turn.tools?.length ?? 0) > 0) throw new OptionsError('Invalid options for send: schema (JSON mode) and tools cannot be combined in one turn');
    if (turn.schema && opts.grammar) throw new OptionsError('Invalid options for send: schema (JSON mode) brings its own grammar; drop grammar');
    if (typeof turn.toolChoice === 'object' && !turn.tools?.some((t) => t.name === (turn.toolChoice as { name: string }).name)) {
      throw new OptionsError(`Invalid option toolChoice for send: no tool named ${JSON.stringify(turn.toolChoice.name)} among tools`);
    }
    return this.turn(text, opts, turn as TurnOptions);
  }

  /** Sends a user message and resolves with the whole reply (and, with a schema, the typed object). */
  async ask<S extends z.ZodType = z.ZodType>(text: string, options: SendOptions<S> = {}): Promise<ChatResult<z.output<S>>> {
    let result: ChatResult<z.output<S>> | undefined;
    for await (const ev of this.send(text, options)) {
      if (ev.type === 'done') {
        result = { text: ev.text, finishReason: ev.finishReason, usage: ev.usage, timings: ev.timings, toolCalls: ev.toolCalls, object: ev.object as z.output<S>, steps: ev.steps };
      }
    }
    return result!;
  }

  /**
   * Saves the conversation and its KV cache; load() resumes it without evaluating it again. The
   * first save to a path writes the whole state; later saves of this chat to it append only what
   * changed since (the new turns' messages and KV cells). A save cut short (the process stopped)
   * leaves the file's previous state loadable.
   */
  async save(path: string, options: SaveOptions = {}): Promise<ChatSaveResult> {
    this.assertIdle();
    if (typeof path !== 'string' || path === '') throw new OptionsError(`Invalid path for save: expected a file path, received ${JSON.stringify(path)}`);
    const opts = parseOptions(saveSchema, options, 'save');
    this.busy = true;
    try {
      const seq = await this.ensureSequence();
      return await this.saver.save(path, seq, { systemPrompt: this.options.systemPrompt, messages: this.messages, replies: this.replies }, opts);
    } finally {
      this.busy = false;
    }
  }

  /**
   * Restores a conversation saved by save(), with its KV cache. A file of another model, a
   * damaged or foreign file is a ChatFileError, and the chat keeps its own conversation.
   */
  async load(path: string): Promise<ChatLoadResult> {
    this.assertIdle();
    if (typeof path !== 'string' || path === '') throw new OptionsError(`Invalid path for load: expected a file path, received ${JSON.stringify(path)}`);
    this.busy = true;
    try {
      const seq = await this.ensureSequence();
      const { snap, result } = await this.saver.load(path, seq);
      this.options.systemPrompt = snap.systemPrompt;
      this.messages = snap.messages;
      this.replies = snap.replies;
      return result;
    } finally {
      this.busy = false;
    }
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
    if (this.busy) throw new BusyError('the chat is answering, saving or loading; wait for it (or abort the reply) first');
  }

  private ensureSequence(): Promise<Sequence> {
    this.starting ??= (async () => {
      if (this.options.context) return this.options.context.sequence();
      // a second slot (cells shared, no memory of its own) lets save() write ranges of the cache
      this.ownContext = await this.model.createContext({ nCtx: this.options.nCtx, nSeqMax: 2 });
      return this.ownContext.sequence();
    })();
    return this.starting;
  }

  /** One generation of a turn (a seam for tests that script the model's output). */
  protected generate(seq: Sequence, tokens: number[], options: GenerateOptions): AsyncIterable<Chunk> {
    return seq.generateFrom(tokens, options);
  }

  private system(extra?: string): ChatMessage[] {
    const out: ChatMessage[] = [];
    if (this.options.systemPrompt !== undefined) out.push({ role: 'system', content: this.options.systemPrompt });
    if (extra !== undefined) out.push({ role: 'system', content: extra });
    return out;
  }

  /** The prompt for a step, dropping the oldest turns (or raising) when it does not fit. */
  private fit(pending: ChatMessage[], room: number, reserve: number, tools: ToolSpec[], extraSystem?: string): { tokens: number[]; dropped: number } {
    let dropped = 0;
    for (;;) {
      const system = this.system(extraSystem);
      const tokens =
        this.options.chatFormat === 'chatml'
          ? this.promptCache.prompt(system, tools, [...this.messages, ...pending], this.replies)
          : promptTokens(this.model, this.options.chatFormat, [...system, ...this.messages, ...pending], {
              tools,
              replies: new Map([...this.replies].map(([i, t]) => [i + system.length, t])),
            });
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

  private async *turn(text: string, opts: z.output<typeof generateSchema>, turn: TurnOptions): AsyncGenerator<ChatEvent, void> {
    if (this.busy) throw new BusyError('the chat is already answering; wait for the reply or abort it first');
    this.busy = true;
    const offered = turn.toolChoice === 'none' ? [] : (turn.tools ?? []);
    const specs = offered.map(toToolSpec);
    const jsonSchema = turn.schema ? (z.toJSONSchema(turn.schema, { io: 'output' }) as Record<string, unknown>) : undefined;
    if (jsonSchema) delete jsonSchema.$schema;
    const schemaPrompt = jsonSchema ? jsonModePrompt(jsonSchema) : undefined;
    // messages of this turn, joined to the history when the turn ends (or is abandoned)
    const pending: ChatMessage[] = [{ role: 'user', content: text }];
    const replyTokens = new Map<number, number[]>();
    let committed = false;
    const commit = () => {
      if (committed) return;
      committed = true;
      const base = this.messages.length;
      this.messages.push(...pending);
      for (const [i, t] of replyTokens) this.replies.set(base + i, t);
    };
    const usage: ChatUsage = { promptTokens: 0, cachedTokens: 0, completionTokens: 0 };
    const allCalls: ParsedToolCall[] = [];
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const seq = await this.ensureSequence();
      const room = seq.context.nCtxPerSequence;
      const reserve = Math.min(opts.maxTokens, Math.floor(room / 2));
      let dropped = 0;
      for (let step = 1; ; step++) {
        const grammar = jsonSchema
          ? { grammar: schemaToGrammar(jsonSchema) }
          : offered.length === 0
            ? {}
            : step === 1 && turn.toolChoice !== 'auto' && turn.toolChoice !== undefined
              ? { grammar: toolCallGrammar(typeof turn.toolChoice === 'object' ? offered.filter((t) => t.name === (turn.toolChoice as { name: string }).name) : offered) }
              : { grammar: toolCallGrammar(offered), grammarTriggerPatterns: [TOOL_CALL_TRIGGER] };
        const fitted = this.fit(pending, room, reserve, specs, schemaPrompt);
        dropped += fitted.dropped;
        const parser = offered.length > 0 ? new ToolCallStream() : undefined;
        let raw = '';
        const generated: number[] = [];
        const calls: ParsedToolCall[] = [];
        let last: Chunk | undefined;
        const emit = function* (events: ReturnType<ToolCallStream['push']>): Generator<ChatEvent> {
          for (const ev of events) {
            // whitespace between tool-call blocks is not part of any reply
            if (ev.type === 'text') {
              if (calls.length === 0 || ev.text.trim()) yield { type: 'text', text: ev.text };
            }
            else {
              calls.push(ev.call);
              yield { type: 'tool_call', call: ev.call, step };
            }
          }
        };
        for await (const chunk of this.generate(seq, fitted.tokens, { ...opts, ...grammar })) {
          generated.push(...chunk.tokens);
          raw += chunk.text;
          if (parser) yield* emit(parser.push(chunk.text));
          else if (chunk.text) yield { type: 'text', text: chunk.text };
          if (chunk.finishReason) last = chunk;
        }
        if (parser) yield* emit(parser.end());
        if (!last?.timings || !last.finishReason) throw new OptionsError('the generation produced no result');
        usage.promptTokens += last.timings.promptTokens;
        usage.cachedTokens += last.timings.cachedTokens;
        usage.completionTokens += last.timings.generatedTokens;
        const parsed = parser ? parseToolCalls(raw) : { content: raw, toolCalls: [] };
        let finishReason: FinishReason = last.finishReason;
        if (calls.length === 0) {
          pending.push({ role: 'assistant', content: raw });
          const eog = this.model.info.specialTokens.eog;
          const body = generated.length > 0 && eog.includes(generated[generated.length - 1]) ? generated.slice(0, -1) : generated;
          // the generated ids stand for the reply only when they spell exactly the text kept
          if (this.model.detokenize(body) === raw) replyTokens.set(pending.length - 1, body);
        } else {
          allCalls.push(...calls);
          pending.push({ role: 'assistant', content: parsed.content, toolCalls: calls.map((c) => ({ name: c.name, arguments: c.arguments })) });
          if (finishReason !== 'abort') {
            if (offered.some((t) => calls.some((c) => c.name === t.name) && !t.handler)) finishReason = 'tool_call';
            else if (step >= turn.maxSteps) finishReason = 'max_steps';
          }
        }
        const done = calls.length === 0 || finishReason === 'abort' || finishReason === 'tool_call' || finishReason === 'max_steps';
        if (!done) {
          const outcomes = await runToolCalls(calls, offered, controller.signal);
          for (const o of outcomes) {
            pending.push({ role: 'tool', name: o.call.name, content: toolResponse(o) });
            yield { type: 'tool_result', call: o.call, result: o.result, error: o.error, step };
          }
          if (controller.signal.aborted) finishReason = 'abort';
          else continue;
        }
        commit();
        let object: unknown;
        if (jsonSchema && finishReason !== 'abort') {
          const value = parseLooseJson(raw);
          if (value === undefined && finishReason === 'length') {
            // the grammar keeps the JSON valid, so a reply that does not parse was cut short
            throw new SchemaValidationError(
              `the reply was cut at maxTokens (${opts.maxTokens}) after ${last.timings.generatedTokens} tokens, before the JSON closed: raise maxTokens ` +
                '(or ask for a shorter object); the partial text is in the error\'s text',
              raw,
            );
          }
          const checked = turn.schema!.safeParse(value);
          if (!checked.success) {
            throw new SchemaValidationError(
              `the reply does not match the schema: ${checked.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`,
              raw,
            );
          }
          object = checked.data;
        }
        yield {
          type: 'done',
          text: calls.length === 0 ? raw : parsed.content,
          finishReason,
          usage,
          timings: last.timings,
          toolCalls: allCalls,
          object,
          steps: step,
          droppedMessages: dropped,
        };
        return;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      // a consumer that stops early keeps what it was shown
      if (pending.length > 1) commit();
      this.busy = false;
    }
  }
}

