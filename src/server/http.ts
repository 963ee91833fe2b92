/**
 * HTTP concerns shared by the routes: the API's error shapes and statuses, the API key check,
 * request bodies parsed with zod, client disconnects.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { AbortError, ContextOverflowError, DisposedError, Hermes3Error, OptionsError } from '../errors.js';
import { ServerBusyError } from './slots.js';

/** An error with its HTTP status and OpenAI's type/code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

export type ApiFlavor = 'openai' | 'ollama';

/** Which API a path belongs to: Ollama's under /api, OpenAI's shape for everything else. */
export function flavorOf(url: string): ApiFlavor {
  return url.startsWith('/api/') || url === '/api' ? 'ollama' : 'openai';
}

/** Any error as status, headers and body for the API; messages never carry a stack trace. */
export function toApiError(err: unknown): ApiError & { retryAfter?: number } {
  if (err instanceof ApiError) return err;
  if (err instanceof ServerBusyError) {
    const e = new ApiError(503, err.message, 'server_overloaded', 'server_busy') as ApiError & { retryAfter?: number };
    e.retryAfter = err.retryAfterSeconds;
    return e;
  }
  if (err instanceof ContextOverflowError) return new ApiError(400, err.message, 'invalid_request_error', 'context_length_exceeded', 'messages');
  if (err instanceof OptionsError) return new ApiError(400, err.message, 'invalid_request_error', 'invalid_value');
  if (err instanceof AbortError) return new ApiError(499, 'the request was cancelled', 'invalid_request_error', 'cancelled');
  if (err instanceof DisposedError) return new ApiError(503, 'the server is shutting down', 'server_error', 'shutting_down');
  if (err instanceof Hermes3Error) return new ApiError(500, err.message, 'server_error', err.code);
  const fe = err as { statusCode?: number; code?: string; message?: string };
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const messages: Record<string, string> = {
      FST_ERR_CTP_BODY_TOO_LARGE: 'the request body is larger than the server accepts (see --body-limit)',
      FST_ERR_CTP_INVALID_MEDIA_TYPE: 'expected a JSON body with content-type: application/json',
      FST_ERR_CTP_EMPTY_JSON_BODY: 'the request body is empty: expected a JSON object',
      FST_ERR_CTP_INVALID_JSON_BODY: 'the request body is not valid JSON',
    };
    const message = messages[fe.code ?? ''] ?? (fe instanceof SyntaxError ? `the request body is not valid JSON (${fe.message})` : (fe.message ?? 'bad request'));
    return new ApiError(fe.statusCode, message, 'invalid_request_error', fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'body_too_large' : 'invalid_body');
  }
  return new ApiError(500, 'internal server error: the request failed; see the server log', 'server_error', 'internal_error');
}

/** Sends an error in the API's shape: OpenAI's `{ error: { message, type, param, code } }`, Ollama's `{ error }`. */
export function sendError(reply: FastifyReply, flavor: ApiFlavor, err: unknown): FastifyReply {
  const e = toApiError(err);
  if (e.retryAfter !== undefined) reply.header('retry-after', String(e.retryAfter));
  const body = flavor === 'ollama' ? { error: e.message } : { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
  return reply.code(e.status).type('application/json; charset=utf-8').send(body);
}

/** A request's key against the server's, compared in constant time (both hashed to equal length). */
export function keyMatches(request: FastifyRequest, apiKey: string): boolean {
  const auth = request.headers.authorization;
  let given: string | undefined;
  if (typeof auth === 'string' && /^bearer\s+/i.test(auth)) given = auth.replace(/^bearer\s+/i, '').trim();
  else if (typeof request.headers['x-api-key'] === 'string') given = request.headers['x-api-key'];
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(apiKey).digest();
  return timingSafeEqual(a, b);
}

/** Parses a body with a zod schema; a failure is a 400 naming the field, what was expected and what came. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'expected a JSON object as the request body');
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    throw new ApiError(400, `unknown field${(issue as { keys: string[] }).keys.length > 1 ? 's' : ''} ${(issue as { keys: string[] }).keys.join(', ')}${path ? ` in ${path}` : ''}`, 'invalid_request_error', 'unknown_field', path || null);
  }
  throw new ApiError(400, `invalid ${path || 'body'}: ${issue.message}`, 'invalid_request_error', 'invalid_value', path || null);
}

/** An AbortSignal that fires when the client goes away before the response is complete. */
export function disconnectSignal(request: FastifyRequest, reply: FastifyReply, also?: AbortSignal): AbortController {
  const controller = new AbortController();
  const onAlso = () => controller.abort();
  const onClose = () => {
    also?.removeEventListener('abort', onAlso);
    if (!reply.raw.writableFinished) controller.abort();
  };
  reply.raw.once('close', onClose);
  request.raw.once('aborted', onClose);
  if (also?.aborted) controller.abort();
  else also?.addEventListener('abort', onAlso, { once: true });
  return controller;
}
