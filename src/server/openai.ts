/** OpenAI's API: /v1/chat/completions, /v1/completions, /v1/models. */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { normalizeMessages, normalizeTools } from '../chat/normalize.js';
import type { GenerationEvent, GenerationRequest, Sampling, Usage } from './engine.js';
import { ApiError, disconnectSignal, parseBody } from './http.js';
import { chatCompletionSchema, completionSchema, type ChatCompletionRequest, type CompletionRequest } from './openai-schemas.js';
import type { ServerState } from './state.js';

type Done = Extract<GenerationEvent, { type: 'done' }>;

function sampling(body: ChatCompletionRequest | CompletionRequest, maxTokens: number | null | undefined): Sampling {
  const s: Sampling = {};
  if (body.temperature != null) s.temperature = body.temperature;
  if (body.top_p != null) s.topP = body.top_p;
  if (body.top_k != null) s.topK = body.top_k;
  if (body.min_p != null) s.minP = body.min_p;
  if (body.typical_p != null) s.typicalP = body.typical_p;
  if (body.repeat_penalty != null) s.repeatPenalty = body.repeat_penalty;
  if (body.presence_penalty != null) s.presencePenalty = body.presence_penalty;
  if (body.frequency_penalty != null) s.frequencyPenalty = body.frequency_penalty;
  if (body.seed != null) s.seed = body.seed >>> 0;
  if (body.stop != null) s.stop = typeof body.stop === 'string' ? [body.stop] : body.stop;
  if (body.logit_bias != null) {
    // OpenAI's -100 bans a token; 100 makes it all but certain
    s.logitBias = Object.fromEntries(Object.entries(body.logit_bias).map(([k, v]) => [k, v <= -100 ? -Infinity : v]));
  }
  if (maxTokens != null) s.maxTokens = maxTokens;
  return s;
}

function usageOf(u: Usage) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
  };
}

function chatRequest(state: ServerState, body: ChatCompletionRequest): Omit<GenerationRequest, 'signal'> {
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  state.checkMaxTokens(maxTokens);
  const req: Omit<GenerationRequest, 'signal'> = { messages: normalizeMessages(body.messages, 'messages'), sampling: sampling(body, maxTokens) };
  if (body.tools && body.tools.length > 0) {
    req.tools = normalizeTools(body.tools, 'tools');
    const choice = body.tool_choice;
    req.toolChoice = choice == null ? 'auto' : typeof choice === 'string' ? choice : { name: choice.function.name };
    if (body.parallel_tool_calls != null) req.parallelToolCalls = body.parallel_tool_calls;
  } else if (body.tool_choice != null && body.tool_choice !== 'none' && body.tool_choice !== 'auto') {
    throw new ApiError(400, 'tool_choice needs tools: send the tools the model may call', 'invalid_request_error', 'invalid_value', 'tool_choice');
  }
  const format = body.response_format;
  if (format?.type === 'json_object') req.json = {};
  else if (format?.type === 'json_schema') req.json = { schema: format.json_schema.schema ?? { type: 'object' } };
  if (req.json && req.tools && req.toolChoice !== 'none') {
    throw new ApiError(400, 'response_format (JSON mode) and tools cannot be combined in one request', 'invalid_request_error', 'invalid_value', 'response_format');
  }
  return req;
}

/** Runs a request up to its first event: errors before it become HTTP errors, not stream events. */
async function begin(state: ServerState, request: FastifyRequest, reply: FastifyReply, req: Omit<GenerationRequest, 'signal'>) {
  const controller = disconnectSignal(request, reply, state.shutdown);
  const events = state.engine.generate({ ...req, signal: controller.signal });
  const first = await events.next();
  // an error that ends the stream after its status was sent: logged where a 500 would be
  const failed = (err: unknown) => state.apiError(err, `${request.method} ${request.url} (while streaming)`);
  return { controller, events, first, failed };
}

async function collect(run: Awaited<ReturnType<typeof begin>>): Promise<Done> {
  let ev = run.first;
  while (!ev.done) {
    if (ev.value.type === 'done') return ev.value;
    ev = await run.events.next();
  }
  throw new ApiError(500, 'the generation ended without a result', 'server_error');
}

/** Server-sent events: each chunk as `data: JSON`, then `data: [DONE]`; an error mid-stream as an error object. */
function sse(run: Awaited<ReturnType<typeof begin>>, render: (ev: GenerationEvent) => unknown[]): Readable {
  async function* lines(): AsyncGenerator<string> {
    try {
      let ev = run.first;
      while (!ev.done) {
        for (const chunk of render(ev.value)) yield `data: ${JSON.stringify(chunk)}\n\n`;
        ev = await run.events.next();
      }
      yield 'data: [DONE]\n\n';
    } catch (err) {
      const e = run.failed(err);
      yield `data: ${JSON.stringify({ error: { message: e.message, type: e.type, param: e.param, code: e.code } })}\n\n`;
    } finally {
      run.controller.abort();
      await run.events.return(undefined);
    }
  }
  return Readable.from(lines());
}

function streamReply(reply: FastifyReply, body: Readable): FastifyReply {
  return reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-cache').header('x-accel-buffering', 'no').send(body);
}

/** The reply of a request the server cut short at shutdown, while the client still waits. */
function checkFinished(done: Done): void {
  if (done.finishReason === 'abort') throw new ApiError(503, 'the server shut down before the reply was complete; retry', 'server_error', 'shutting_down');
}

export function registerOpenAI(app: FastifyInstance, state: ServerState): void {
  app.get('/v1/models', async () => ({ object: 'list', data: [state.modelCard()] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    state.checkModel(request.params.id);
    return state.modelCard();
  });

  app.post('/v1/chat/completions', async (request, reply) => {
    const body = parseBody(chatCompletionSchema, request.body);
    state.checkModel(body.model);
    const run = await begin(state, request, reply, chatRequest(state, body));
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = state.modelId;
    if (!body.stream) {
      const done = await collect(run);
      checkFinished(done);
      const toolCalls = done.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
      return {
        id, object: 'chat.completion', created, model, system_fingerprint: state.fingerprint,
        choices: [{
          index: 0,
          message: { role: 'assistant', content: toolCalls.length > 0 && done.content === '' ? null : done.content, refusal: null, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) },
          logprobs: null,
          finish_reason: done.finishReason === 'abort' ? 'stop' : done.finishReason,
        }],
        usage: usageOf(done.usage),
      };
    }
    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
      id, object: 'chat.completion.chunk', created, model, system_fingerprint: state.fingerprint,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
    let opened = false;
    return streamReply(reply, sse(run, (ev) => {
      const out: unknown[] = [];
      if (!opened) {
        opened = true;
        out.push(chunk({ role: 'assistant', content: '', refusal: null }));
      }
      if (ev.type === 'text') out.push(chunk({ content: ev.text }));
      else if (ev.type === 'call_start') out.push(chunk({ tool_calls: [{ index: ev.index, id: ev.id, type: 'function', function: { name: ev.name, arguments: '' } }] }));
      else if (ev.type === 'call_args') out.push(chunk({ tool_calls: [{ index: ev.index, function: { arguments: ev.text } }] }));
      else if (ev.type === 'done') {
        out.push(chunk({}, ev.finishReason === 'abort' ? 'stop' : ev.finishReason));
        if (includeUsage) out.push({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: state.fingerprint, choices: [], usage: usageOf(ev.usage) });
      }
      return out;
    }));
  });

  app.post('/v1/completions', async (request, reply) => {
    const body = parseBody(completionSchema, request.body);
    state.checkModel(body.model);
    state.checkMaxTokens(body.max_tokens);
    const prompt = typeof body.prompt === 'string' ? body.prompt : body.prompt[0];
    // OpenAI's default for text completions is 16 tokens
    const run = await begin(state, request, reply, { prompt, sampling: sampling(body, body.max_tokens ?? 16) });
    const id = `cmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = state.modelId;
    if (!body.stream) {
      const done = await collect(run);
      checkFinished(done);
      return {
        id, object: 'text_completion', created, model, system_fingerprint: state.fingerprint,
        choices: [{ index: 0, text: done.content, logprobs: null, finish_reason: done.finishReason === 'abort' ? 'stop' : done.finishReason }],
        usage: usageOf(done.usage),
      };
    }
    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (text: string, finish: string | null) => ({
      id, object: 'text_completion', created, model, system_fingerprint: state.fingerprint,
      choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
    return streamReply(reply, sse(run, (ev) => {
      if (ev.type === 'text') return [chunk(ev.text, null)];
      if (ev.type !== 'done') return [];
      const out: unknown[] = [chunk('', ev.finishReason === 'abort' ? 'stop' : ev.finishReason)];
      if (includeUsage) out.push({ id, object: 'text_completion', created, model, choices: [], usage: usageOf(ev.usage) });
      return out;
    }));
  });
}
