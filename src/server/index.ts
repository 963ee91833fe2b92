/**
 * `createServer()`: Hermes 3 over HTTP with OpenAI's and Ollama's APIs and a chat page. One
 * context holds a slot (sequence) per parallel request, so requests share decode steps.
 */
import { readFileSync } from 'node:fs';
import cors from '@fastify/cors';
import Fastify, { type FastifyInstance } from 'fastify';
import { parseOptions } from '../engine/validate.js';
import { ServerEngine } from './engine.js';
import { ApiError, flavorOf, keyMatches, sendError } from './http.js';
import { Metrics } from './metrics.js';
import { registerOllama } from './ollama.js';
import { ServerEmbeddings, registerEmbeddings } from './embeddings.js';
import { registerOpenAI } from './openai.js';
import { modelId, serverSchema, type ServerOptions } from './options.js';
import { ServerState } from './state.js';
import { registerWebPage } from './web.js';

export type { ServerOptions } from './options.js';

export interface Hermes3Server {
  /** the fastify instance (for hooks, extra routes, or inject() in tests) */
  readonly app: FastifyInstance;
  /** the name the APIs give the model */
  readonly modelId: string;
  /** Starts listening (127.0.0.1 and port 8080 unless told; port 0 takes a free port); resolves with the URL. */
  listen(options?: { host?: string; port?: number }): Promise<string>;
  /** Stops accepting, lets running requests finish for graceMs, aborts the rest, frees the context. Safe to call twice. */
  close(): Promise<void>;
}

const PUBLIC = new Set(['/', '/health', '/index.html', '/app.js', '/markdown.js', '/style.css', '/marked.js']);

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export async function createServer(options: ServerOptions): Promise<Hermes3Server> {
  const opts = parseOptions(serverSchema, options, 'createServer');
  const id = modelId(opts);
  const metrics = new Metrics();
  const context = await opts.model.createContext({ nCtx: opts.ctx * opts.parallel, nSeqMax: opts.parallel, kvUnified: false, threads: opts.threads });
  const engine = new ServerEngine(opts.model, context, { maxTokens: opts.maxTokens, maxQueue: opts.maxQueue }, metrics, { systemPrompt: opts.systemPrompt, sampling: opts.sampling });
  metrics.setSlots(engine.pool.size);
  const state = new ServerState(opts.model, id, engine, metrics, opts.maxTokens, VERSION, opts.log);

  const app = Fastify({ bodyLimit: opts.bodyLimit, logger: false, return503OnClosing: true, forceCloseConnections: 'idle' });
  // bodies are JSON whatever their content type says: curl -d sends form-urlencoded, and
  // Ollama's own examples rely on that
  app.removeContentTypeParser(['text/plain']);
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, (body as string).length === 0 ? undefined : JSON.parse(body as string));
    } catch (err) {
      done(new ApiError(400, `the request body is not valid JSON (${(err as Error).message})`, 'invalid_request_error', 'invalid_body'), undefined);
    }
  });
  if (opts.cors) await app.register(cors, { origin: opts.cors === '*' ? true : opts.cors, methods: ['GET', 'POST', 'HEAD', 'OPTIONS'] });

  app.addHook('onRequest', async (request, reply) => {
    if (!opts.apiKey || request.method === 'OPTIONS') return;
    const path = request.url.split('?')[0];
    if (PUBLIC.has(path)) return;
    if (!keyMatches(request, opts.apiKey)) {
      reply.header('www-authenticate', 'Bearer');
      return sendError(reply, flavorOf(path), new ApiError(401, 'missing or wrong API key: send Authorization: Bearer <key>', 'authentication_error', 'invalid_api_key'));
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.request(route, reply.statusCode);
    opts.log?.(`${request.method} ${request.url.split('?')[0]} ${reply.statusCode} ${reply.elapsedTime.toFixed(0)} ms`);
  });
  app.setErrorHandler((err, request, reply) => {
    return sendError(reply, flavorOf(request.url), state.apiError(err, `${request.method} ${request.url}`));
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, flavorOf(request.url), new ApiError(404, `no route ${request.method} ${request.url.split('?')[0]}; the APIs are under /v1 (OpenAI) and /api (Ollama)`, 'invalid_request_error', 'not_found')),
  );

  app.get('/health', async () => ({ status: 'ok', model: id, slots: engine.pool.size, slots_busy: engine.pool.busyCount, queue: engine.pool.queueDepth }));
  app.get('/metrics', async (_request, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.render(context.batchStats)));
  registerOpenAI(app, state);
  registerOllama(app, state);
  const embeddings = opts.embeddings ? new ServerEmbeddings(state, { ...opts.embeddings, threads: opts.threads }, opts.maxQueue) : undefined;
  if (embeddings) registerEmbeddings(app, state, embeddings);
  if (opts.webPage) registerWebPage(app, state);
  await app.ready();

  let closing: Promise<void> | undefined;
  return {
    app,
    modelId: id,
    async listen(o = {}) {
      await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 8080 });
      const addr = app.server.address();
      if (addr === null || typeof addr === 'string') return String(addr);
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      return `http://${host}:${addr.port}`;
    },
    close() {
      closing ??= (async () => {
        const grace = setTimeout(() => state.abortAll(), opts.graceMs);
        // keep-alive connections would hold close() open for fastify's 72 s keep-alive timeout:
        // each is closed as soon as its last response is done
        const idle = setInterval(() => app.server.closeIdleConnections(), 50);
        try {
          engine.pool.close();
          await app.close();
        } finally {
          clearTimeout(grace);
          clearInterval(idle);
          state.abortAll();
          await context.dispose();
          await embeddings?.close();
          if (opts.ownsModel) await opts.model.dispose();
        }
      })();
      return closing;
    },
  };
}
