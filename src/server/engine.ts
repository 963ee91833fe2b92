/**
 * What every API route runs: a conversation (or a raw prompt) rendered in Hermes's format,
 * a slot of the shared context, the generation with its grammar (tools, JSON mode), and the
 * reply as events: text, tool calls piece by piece, then one `done` with usage.
 */
import { randomBytes } from 'node:crypto';
import { ContextOverflowError, OptionsError } from '../errors.js';
import type { Context } from '../engine/context.js';
import type { Model } from '../engine/model.js';
import type { GenerateOptions } from '../engine/options.js';
import type { GenerationTimings } from '../engine/sequence.js';
import type { ChatMessage, ToolSpec } from '../chat/messages.js';
import { promptTokens } from '../chat/prompt.js';
import { jsonModePrompt } from '../chat/json-mode.js';
import { TOOL_CALL_TRIGGER, toolCallGrammar, type Tool } from '../tools/define.js';
import { ToolCallDeltaStream, type ToolDeltaEvent } from '../tools/deltas.js';
import { schemaToGrammar } from '../tools/grammar.js';
import type { Metrics } from './metrics.js';
import { SlotPool } from './slots.js';

/** Sampling and limits a request may set (the engine's GenerateOptions, as the APIs map them). */
export type Sampling = Pick<
  GenerateOptions,
  | 'temperature' | 'topK' | 'topP' | 'minP' | 'typicalP' | 'repeatPenalty' | 'presencePenalty' | 'frequencyPenalty' | 'penaltyLastN'
  | 'seed' | 'mirostat' | 'mirostatTau' | 'mirostatEta' | 'logitBias' | 'stop' | 'maxTokens'
>;

export interface GenerationRequest {
  /** a conversation, rendered as ChatML with the Hermes tool prompt */
  messages?: ChatMessage[];
  /** or a raw prompt, tokenized as it is (special tokens parsed) */
  prompt?: string;
  tools?: ToolSpec[];
  toolChoice?: 'auto' | 'none' | 'required' | { name: string };
  /** false: at most one call per reply */
  parallelToolCalls?: boolean;
  /** JSON mode: a JSON Schema, or `{}` for any JSON object */
  json?: { schema?: Record<string, unknown> };
  sampling: Sampling;
  signal: AbortSignal;
}

export interface Usage {
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
}

export interface ReplyToolCall {
  id: string;
  name: string;
  /** JSON text, as streamed: a call cut short (maxTokens) ends where its text ended */
  arguments: string;
  /** the arguments as an object; for a call cut short, what could be read of them */
  value: Record<string, unknown>;
}

export type GenerationEvent =
  | { type: 'text'; text: string }
  | { type: 'call_start'; index: number; id: string; name: string }
  | { type: 'call_args'; index: number; text: string }
  | { type: 'call_end'; index: number; id: string; call: ReplyToolCall }
  | { type: 'done'; finishReason: 'stop' | 'length' | 'tool_calls' | 'abort'; content: string; toolCalls: ReplyToolCall[]; usage: Usage; timings: GenerationTimings };

/** Token ids of replies this server generated, by their text, so a resent conversation reuses its cache. */
class ReplyMemory {
  private readonly map = new Map<string, number[]>();
  constructor(private readonly limit: number) {}
  get(text: string): number[] | undefined {
    return this.map.get(text);
  }
  set(text: string, tokens: number[]): void {
    this.map.delete(text);
    this.map.set(text, tokens);
    if (this.map.size > this.limit) this.map.delete(this.map.keys().next().value!);
  }
}

export class ServerEngine {
  readonly pool: SlotPool;
  private readonly replies = new ReplyMemory(512);

  constructor(
    readonly model: Model,
    readonly context: Context,
    readonly limits: { maxTokens: number; maxQueue: number },
    private readonly metrics: Metrics,
    private readonly defaults: { systemPrompt?: string; sampling?: Sampling } = {},
  ) {
    this.pool = new SlotPool(context, limits.maxQueue);
  }

  /** Context length of one request slot. */
  get slotContext(): number {
    return this.context.nCtxPerSequence;
  }

  /** Renders the request: its prompt tokens and the grammar options. */
  prepare(req: GenerationRequest): { tokens: number[]; grammar: Partial<GenerateOptions>; tools: boolean } {
    const offered = req.toolChoice === 'none' ? [] : (req.tools ?? []);
    (req.tools ?? []).forEach((t, i) => {
      if (!/^[a-zA-Z0-9_-]{1,64}$/.test(t.name)) {
        throw new OptionsError(`Invalid tools[${i}].function.name ${JSON.stringify(t.name.slice(0, 80))}: expected 1 to 64 letters, digits, _ or - (as OpenAI requires)`);
      }
    });
    let tokens: number[];
    if (req.messages) {
      let messages = req.messages;
      if (this.defaults.systemPrompt !== undefined && !messages.some((m) => m.role === 'system')) {
        messages = [{ role: 'system', content: this.defaults.systemPrompt }, ...messages];
      }
      if (req.json?.schema) {
        const system: ChatMessage = { role: 'system', content: jsonModePrompt(req.json.schema) };
        const lead = messages.findIndex((m) => m.role !== 'system');
        const at = lead === -1 ? messages.length : lead;
        messages = [...messages.slice(0, at), system, ...messages.slice(at)];
      }
      const replies = new Map<number, number[]>();
      messages.forEach((m, i) => {
        if (m.role === 'assistant' && m.toolCalls === undefined) {
          const t = this.replies.get(m.content);
          if (t) replies.set(i, t);
        }
      });
      tokens = promptTokens(this.model, 'chatml', messages, { tools: offered, replies });
    } else {
      const info = this.model.info.specialTokens;
      tokens = this.model.tokenize(req.prompt ?? '', { special: true, addBos: info.addBos });
      if (tokens.length > 1 && tokens[0] === info.bos && tokens[1] === info.bos) tokens.shift();
      if (tokens.length === 0) throw new OptionsError('the prompt is empty: send at least one token of text');
    }
    let grammar: Partial<GenerateOptions> = {};
    if (req.json) {
      grammar = { grammar: schemaToGrammar(req.json.schema ?? { type: 'object' }) };
    } else if (offered.length > 0) {
      const tools = offered.map(asGrammarTool);
      const parallel = req.parallelToolCalls !== false;
      const choice = req.toolChoice ?? 'auto';
      if (choice === 'auto') grammar = { grammar: toolCallGrammar(tools, { parallel }), grammarTriggerPatterns: [TOOL_CALL_TRIGGER] };
      else if (choice === 'required') grammar = { grammar: toolCallGrammar(tools, { parallel }) };
      else {
        const named = tools.filter((t) => t.name === (choice as { name: string }).name);
        if (named.length === 0) throw new OptionsError(`tool_choice names ${JSON.stringify((choice as { name: string }).name)}, which is not among tools`);
        grammar = { grammar: toolCallGrammar(named, { parallel: false }) };
      }
    }
    return { tokens, grammar, tools: offered.length > 0 };
  }

  async *generate(req: GenerationRequest): AsyncGenerator<GenerationEvent, void> {
    const { tokens, grammar, tools } = this.prepare(req);
    const room = this.slotContext;
    if (tokens.length >= room) {
      throw new ContextOverflowError(`the prompt has ${tokens.length} tokens but a request slot holds ${room}; shorten the conversation, or start the server with a larger --ctx`);
    }
    const maxTokens = Math.min(req.sampling.maxTokens ?? this.limits.maxTokens, this.limits.maxTokens, room - tokens.length);
    this.metrics.queued(+1);
    let slot;
    try {
      slot = await this.pool.acquire(tokens, req.signal);
    } finally {
      this.metrics.queued(-1);
    }
    this.metrics.processing(+1);
    const started = performance.now();
    const parser = tools ? new ToolCallDeltaStream() : undefined;
    const calls: ReplyToolCall[] = [];
    const ids: string[] = [];
    let content = '';
    const generated: number[] = [];
    let timings: GenerationTimings | undefined;
    let finish: 'stop' | 'length' | 'abort' | undefined;
    const relay = function* (events: ToolDeltaEvent[]): Generator<GenerationEvent> {
      for (const ev of events) {
        if (ev.type === 'text') {
          // whitespace between tool-call blocks belongs to no reply
          if (calls.length === 0 && ids.length === 0) {
            content += ev.text;
            yield ev;
          } else if (ev.text.trim()) {
            content += ev.text;
            yield ev;
          }
        } else if (ev.type === 'call_start') {
          ids[ev.index] = `call_${randomBytes(12).toString('hex')}`;
          yield { type: 'call_start', index: ev.index, id: ids[ev.index], name: ev.name };
        } else if (ev.type === 'call_args') {
          yield ev;
        } else {
          const call = { id: ids[ev.index], name: ev.call.name, arguments: ev.arguments, value: ev.call.arguments };
          calls.push(call);
          yield { type: 'call_end', index: ev.index, id: call.id, call };
        }
      }
    };
    try {
      const options: GenerateOptions = { ...this.defaults.sampling, ...req.sampling, ...grammar, maxTokens, signal: req.signal };
      for await (const chunk of slot.sequence.generateFrom(tokens, options)) {
        generated.push(...chunk.tokens);
        if (parser) yield* relay(parser.push(chunk.text));
        else if (chunk.text) {
          content += chunk.text;
          yield { type: 'text', text: chunk.text };
        }
        if (chunk.finishReason) {
          timings = chunk.timings;
          finish = chunk.finishReason === 'length' ? 'length' : chunk.finishReason === 'abort' ? 'abort' : 'stop';
        }
      }
      if (parser) yield* relay(parser.end());
    } finally {
      this.pool.release(slot);
      this.metrics.processing(-1);
      if (timings) this.metrics.generation(timings, performance.now() - started);
    }
    if (!timings || !finish) throw new OptionsError('the generation ended without a result');
    if (calls.length === 0 && finish !== 'abort') {
      const eog = this.model.info.specialTokens.eog;
      const body = generated.length > 0 && eog.includes(generated[generated.length - 1]) ? generated.slice(0, -1) : generated;
      if (this.model.detokenize(body) === content) this.replies.set(content, body);
    }
    const usage = { promptTokens: timings.promptTokens, cachedTokens: timings.cachedTokens, completionTokens: timings.generatedTokens };
    const finishReason = finish === 'abort' || finish === 'length' ? finish : calls.length > 0 ? 'tool_calls' : 'stop';
    yield { type: 'done', finishReason, content: calls.length > 0 ? content.trim() : content, toolCalls: calls, usage, timings };
  }
}

/** A tool of a request as the grammar builder needs it (its JSON Schema; no handler). */
function asGrammarTool(spec: ToolSpec): Tool {
  const schema = spec.parameters && Object.keys(spec.parameters).length > 0 ? spec.parameters : { type: 'object', properties: {} };
  return { name: spec.name, description: spec.description ?? '', parameters: undefined as never, jsonSchema: schema };
}
