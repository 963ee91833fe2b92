/** Ollama's API: /api/chat, /api/generate (NDJSON streams), /api/tags, /api/show, /api/version, /api/ps. */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { normalizeMessages, normalizeTools } from '../chat/normalize.js';
import type { ChatMessage } from '../chat/messages.js';
import type { GenerationEvent, GenerationRequest, ReplyToolCall, Sampling } from './engine.js';
import { ApiError, disconnectSignal, parseBody } from './http.js';
import { ollamaChatSchema, ollamaGenerateSchema, ollamaShowSchema, type OllamaOptions } from './ollama-schemas.js';
import type { ServerState } from './state.js';

type Done = Extract<GenerationEvent, { type: 'done' }>;

function sampling(state: ServerState, o: OllamaOptions | null | undefined): Sampling {
  const s: Sampling = {};
  if (!o) return s;
  if (o.temperature != null) s.temperature = o.temperature;
  if (o.top_k != null) s.topK = o.top_k;
  if (o.top_p != null) s.topP = o.top_p;
  if (o.min_p != null) s.minP = o.min_p;
  if (o.typical_p != null) s.typicalP = o.typical_p;
  if (o.repeat_penalty != null) s.repeatPenalty = o.repeat_penalty;
  if (o.repeat_last_n != null) s.penaltyLastN = o.repeat_last_n;
  if (o.presence_penalty != null) s.presencePenalty = o.presence_penalty;
  if (o.frequency_penalty != null) s.frequencyPenalty = o.frequency_penalty;
  if (o.seed != null && o.seed >= 0) s.seed = o.seed >>> 0;
  if (o.stop != null) s.stop = o.stop;
  if (o.mirostat != null) s.mirostat = o.mirostat as 0 | 1 | 2;
  if (o.mirostat_tau != null) s.mirostatTau = o.mirostat_tau;
  if (o.mirostat_eta != null) s.mirostatEta = o.mirostat_eta;
  // -1 (no limit) and -2 (fill the context) leave the server's limit
  if (o.num_predict != null && o.num_predict >= 0) {
    state.checkMaxTokens(o.num_predict, 'options.num_predict');
    s.maxTokens = o.num_predict;
  }
  return s;
}

function json(format: unknown): GenerationRequest['json'] {
  if (format === undefined || format === null || format === '') return undefined;
  if (format === 'json') return {};
  return { schema: format as Record<string, unknown> };
}

/** Ollama's messages (tool calls with object arguments, tool results with tool_name) in OpenAI's shapes. */
function messagesOf(raw: unknown[]): ChatMessage[] {
  const mapped = raw.map((m) => {
    if (m === null || typeof m !== 'object') return m;
    const msg = { ...(m as Record<string, unknown>) };
    if (Array.isArray(msg.images) && msg.images.length > 0) throw new ApiError(400, 'images are not supported: Hermes 3 reads text only');
    delete msg.images;
    delete msg.thinking;
    if (Array.isArray(msg.tool_calls)) {
      msg.tool_calls = msg.tool_calls.map((c: unknown, i: number) => {
        const fn = (c as { function?: Record<string, unknown> })?.function;
        return { id: (c as { id?: string }).id ?? `call_${i}`, type: 'function', function: { name: fn?.name, arguments: fn?.arguments ?? {} } };
      });
    }
    if (msg.role === 'tool' && typeof msg.tool_name === 'string' && msg.name === undefined) msg.name = msg.tool_name;
    delete msg.tool_name;
    return msg;
  });
  return normalizeMessages(mapped, 'messages');
}

function durations(state: ServerState, done: Done, started: number) {
  const t = done.timings;
  return {
    done_reason: done.finishReason === 'length' ? 'length' : 'stop',
    total_duration: Math.round((performance.now() - started) * 1e6),
    load_duration: 0,
    prompt_eval_count: done.usage.promptTokens,
    prompt_eval_duration: Math.round(t.promptMs * 1e6),
    eval_count: done.usage.completionTokens,
    eval_duration: Math.round(t.generateMs * 1e6),
  };
}

export function details(state: ServerState) {
  const info = state.model.info;
  const b = info.nParams;
  const size = b >= 1e9 ? `${(b / 1e9).toFixed(1)}B` : `${Math.round(b / 1e6)}M`;
  return { parent_model: '', format: 'gguf', family: info.architecture, families: [info.architecture], parameter_size: size, quantization_level: info.fileType };
}

/** An identity of the model file (name, size, time), not a hash of its bytes. */
function digest(state: ServerState): string {
  return createHash('sha256').update(`${state.modelId}\0${state.fileSize}\0${state.modifiedAt.toISOString()}`).digest('hex');
}

export function registerOllama(app: FastifyInstance, state: ServerState): void {
  const entry = () => ({ name: state.modelId, model: state.modelId, modified_at: state.modifiedAt.toISOString(), size: state.fileSize, digest: digest(state), details: details(state) });
  app.get('/api/version', async () => ({ version: state.version }));
  app.get('/api/tags', async () => ({ models: [entry()] }));
  app.get('/api/ps', async () => ({
    models: [{ ...entry(), expires_at: new Date(Date.now() + 365 * 86400_000).toISOString(), size_vram: state.model.nGpuLayers > 0 ? state.fileSize : 0 }],
  }));
  app.post('/api/show', async (request) => {
    const body = parseBody(ollamaShowSchema, request.body);
    const name = body.model ?? body.name!;
    state.checkModel(name);
    const info = state.model.info;
    return {
      license: '',
      modelfile: `# served by hermes3-native ${state.version}\nFROM ${state.model.path.split(/[\\/]/).pop()}\n`,
      parameters: '',
      template: info.chatTemplate ?? '',
      details: details(state),
      model_info: {
        'general.architecture': info.architecture,
        'general.name': info.name,
        'general.parameter_count': info.nParams,
        'general.file_type': info.fileType,
        [`${info.architecture}.context_length`]: info.nCtxTrain,
        [`${info.architecture}.embedding_length`]: info.nEmbd,
        [`${info.architecture}.block_count`]: info.nLayer,
        [`${info.architecture}.attention.head_count`]: info.nHead,
        [`${info.architecture}.attention.head_count_kv`]: info.nHeadKv,
        'tokenizer.ggml.vocab_size': info.nVocab,
      },
      capabilities: ['completion', 'tools'],
      modified_at: state.modifiedAt.toISOString(),
    };
  });

  const respond = async (request: FastifyRequest, reply: FastifyReply, req: Omit<GenerationRequest, 'signal'>, stream: boolean, kind: 'chat' | 'generate') => {
    const started = performance.now();
    const controller = disconnectSignal(request, reply, state.shutdown);
    const events = state.engine.generate({ ...req, signal: controller.signal });
    const first = await events.next();
    const base = () => ({ model: state.modelId, created_at: new Date().toISOString() });
    const piece = (text: string, calls?: unknown[]) =>
      kind === 'chat' ? { ...base(), message: { role: 'assistant', content: text, ...(calls ? { tool_calls: calls } : {}) }, done: false } : { ...base(), response: text, done: false };
    const call = (c: ReplyToolCall, index: number) => ({ function: { index, name: c.name, arguments: c.value } });
    if (!stream) {
      let ev = first;
      while (!ev.done && ev.value.type !== 'done') ev = await events.next();
      if (ev.done) throw new ApiError(500, 'the generation ended without a result', 'server_error');
      const done = ev.value as Done;
      if (done.finishReason === 'abort') throw new ApiError(503, 'the server shut down before the reply was complete; retry', 'server_error');
      const calls = done.toolCalls.map(call);
      return kind === 'chat'
        ? { ...base(), message: { role: 'assistant', content: done.content, ...(calls.length > 0 ? { tool_calls: calls } : {}) }, done: true, ...durations(state, done, started) }
        : { ...base(), response: done.content, done: true, ...durations(state, done, started) };
    }
    async function* lines(): AsyncGenerator<string> {
      try {
        let ev = first;
        while (!ev.done) {
          const e = ev.value;
          if (e.type === 'text') yield JSON.stringify(piece(e.text)) + '\n';
          else if (e.type === 'call_end' && kind === 'chat') yield JSON.stringify(piece('', [call(e.call, e.index)])) + '\n';
          else if (e.type === 'done') {
            const end = kind === 'chat' ? { ...base(), message: { role: 'assistant', content: '' }, done: true } : { ...base(), response: '', done: true };
            yield JSON.stringify({ ...end, ...durations(state, e, started) }) + '\n';
          }
          ev = await events.next();
        }
      } catch (err) {
        yield JSON.stringify({ error: state.apiError(err, `${request.method} ${request.url} (while streaming)`).message }) + '\n';
      } finally {
        controller.abort();
        await events.return(undefined);
      }
    }
    return reply.header('content-type', 'application/x-ndjson').send(Readable.from(lines()));
  };

  app.post('/api/chat', async (request, reply) => {
    const body = parseBody(ollamaChatSchema, request.body);
    state.checkModel(body.model);
    const req: Omit<GenerationRequest, 'signal'> = { messages: messagesOf(body.messages ?? []), sampling: sampling(state, body.options), json: json(body.format) };
    if (body.tools && body.tools.length > 0) {
      if (req.json) throw new ApiError(400, 'format (JSON mode) and tools cannot be combined in one request');
      req.tools = normalizeTools(body.tools, 'tools');
      const choice = body.tool_choice;
      if (choice != null) req.toolChoice = typeof choice === 'string' ? choice : { name: choice.function.name };
    } else if (body.tool_choice != null && body.tool_choice !== 'none' && body.tool_choice !== 'auto') {
      throw new ApiError(400, 'tool_choice needs tools: send the tools the model may call');
    }
    if (req.messages!.length === 0) {
      // Ollama answers an empty conversation by loading the model
      return { model: state.modelId, created_at: new Date().toISOString(), message: { role: 'assistant', content: '' }, done_reason: 'load', done: true };
    }
    return respond(request, reply, req, body.stream !== false, 'chat');
  });

  app.post('/api/generate', async (request, reply) => {
    const body = parseBody(ollamaGenerateSchema, request.body);
    state.checkModel(body.model);
    if (!body.prompt) return { model: state.modelId, created_at: new Date().toISOString(), response: '', done_reason: 'load', done: true };
    const base = { sampling: sampling(state, body.options), json: json(body.format) };
    const req: Omit<GenerationRequest, 'signal'> = body.raw
      ? { ...base, prompt: body.prompt }
      : { ...base, messages: [...(body.system ? [{ role: 'system' as const, content: body.system }] : []), { role: 'user' as const, content: body.prompt }] };
    return respond(request, reply, req, body.stream !== false, 'generate');
  });
}
