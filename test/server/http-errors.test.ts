/**
 * Plain HTTP requests, as curl sends them: error shapes and statuses of both APIs, limits,
 * keys, CORS, metrics, the queue and disconnects.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startServer, type Running } from './helpers.js';

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const chat = (extra: Record<string, unknown> = {}) => ({ model: 'tiny-q8_0', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...extra });

describe('the HTTP surface', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startServer({ apiKey: 'secret', parallel: 1, maxQueue: 1, bodyLimit: 64 * 1024, maxTokens: 2000 });
  });
  afterAll(() => s.close());
  const auth = { authorization: 'Bearer secret' };
  const post = (path: string, body: unknown, headers: Record<string, string> = auth) =>
    fetch(s.url + path, { ...json(body), headers: { 'content-type': 'application/json', ...headers } });

  it('checks the key on the APIs, not on /health and the page', async () => {
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    expect((await fetch(`${s.url}/`)).status).toBe(200);
    const none = await fetch(`${s.url}/v1/models`);
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: { type: 'authentication_error', code: 'invalid_api_key' } });
    expect((await fetch(`${s.url}/v1/models`, { headers: { authorization: 'Bearer secreT' } })).status).toBe(401);
    expect((await fetch(`${s.url}/v1/models`, { headers: { authorization: 'Bearer secret' } })).status).toBe(200);
    expect((await fetch(`${s.url}/api/tags`, { headers: { 'x-api-key': 'secret' } })).status).toBe(200);
    const ollama = await fetch(`${s.url}/api/tags`);
    expect(ollama.status).toBe(401);
    expect(await ollama.json()).toEqual({ error: expect.stringMatching(/API key/) });
  });

  it('answers bad JSON, a wrong content type, an unknown route and an oversize body in the API shapes', async () => {
    const bad = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: '{"model": ' });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: { message: string; type: string } };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/not valid JSON/);
    expect(JSON.stringify(body)).not.toMatch(/at .*\.js:\d+/);
    const text = await fetch(`${s.url}/api/chat`, { method: 'POST', headers: { 'content-type': 'text/plain', ...auth }, body: 'hello' });
    expect(text.status).toBe(400);
    expect(await text.json()).toEqual({ error: expect.stringMatching(/not valid JSON/) });
    // curl -d sends form-urlencoded; Ollama's examples count on JSON being read anyway
    const form = await fetch(`${s.url}/api/generate`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth }, body: JSON.stringify({ model: 'tiny-q8_0', prompt: 'x', stream: false, options: { num_predict: 2 } }) });
    expect(form.status).toBe(200);
    expect(await form.json()).toMatchObject({ done: true, eval_count: 2 });
    const missing = await fetch(`${s.url}/v1/nothing`, { headers: auth });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'not_found' } });
    const big = await post('/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'x'.repeat(100_000) }] }));
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error: { code: 'body_too_large' } });
  });

  it('refuses unknown models, bad fields, unsupported options and limits with the field named', async () => {
    const cases: Array<[unknown, number, RegExp]> = [
      [chat({ model: 'gpt-4' }), 404, /does not exist/],
      [chat({ messages: 'hi' }), 400, /invalid messages: expected an array/],
      [chat({ messages: [{ role: 'user', content: 5 }] }), 400, /messages\[0\]\.content/],
      [chat({ temperature: 3 }), 400, /invalid temperature: expected a number between 0 and 2/],
      [chat({ n: 2 }), 400, /n other than 1/],
      [chat({ max_tokens: 5000 }), 400, /at most 2000 tokens/],
      [chat({ tool_choice: 'required' }), 400, /tool_choice needs tools/],
      [chat({ tools: [{ type: 'function', function: { description: 'x' } }] }), 400, /tools\[0\]\.function\.name/],
      [chat({ response_format: { type: 'yaml' } }), 400, /response_format/],
      [chat({ messages: [{ role: 'user', content: 'word '.repeat(1500) }] }), 400, /slot holds 1024/],
    ];
    for (const [body, status, message] of cases) {
      const res = await post('/v1/chat/completions', body);
      const out = (await res.json()) as { error: { message: string } };
      expect([res.status, out.error.message]).toEqual([status, expect.stringMatching(message)]);
    }
    const long = await post('/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'word '.repeat(1500) }] }));
    expect(await long.json()).toMatchObject({ error: { code: 'context_length_exceeded' } });
    const ollama = await post('/api/generate', { model: 'tiny-q8_0', prompt: 'x', template: '{{ .Prompt }}' });
    expect(ollama.status).toBe(400);
    expect(await ollama.json()).toEqual({ error: expect.stringMatching(/custom template is not supported/) });
  });

  it('queues beyond the slots, then answers 503 with Retry-After', async () => {
    const long = chat({ max_tokens: 2000, stream: true });
    const first = new AbortController();
    const second = new AbortController();
    const a = await fetch(`${s.url}/v1/chat/completions`, { ...json(long), headers: { 'content-type': 'application/json', ...auth }, signal: first.signal });
    expect(a.status).toBe(200);
    // the second waits in the queue (its headers come when it gets a slot)
    const b = fetch(`${s.url}/v1/chat/completions`, { ...json(long), headers: { 'content-type': 'application/json', ...auth }, signal: second.signal }).catch((e: Error) => e);
    expect(await eventually(async () => ((await (await fetch(`${s.url}/health`)).json()) as { queue: number }).queue === 1)).toBe(true);
    const c = await post('/v1/chat/completions', chat());
    expect(c.status).toBe(503);
    expect(c.headers.get('retry-after')).toBe('1');
    expect(await c.json()).toMatchObject({ error: { code: 'server_busy' } });
    const metrics = await (await fetch(`${s.url}/metrics`, { headers: auth })).text();
    expect(metrics).toMatch(/^hermes3_requests_queued 1$/m);
    expect(metrics).toMatch(/^hermes3_requests_processing 1$/m);
    // closing the connections aborts the generation and frees the slot at once
    first.abort();
    second.abort();
    await b;
    expect(await eventually(async () => {
      const h = (await (await fetch(`${s.url}/health`)).json()) as { slots_busy: number; queue: number };
      return h.slots_busy === 0 && h.queue === 0;
    })).toBe(true);
    const after = await post('/v1/chat/completions', chat());
    expect(after.status).toBe(200);
  });

  it('aborts a non-streamed request whose client goes away', async () => {
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth } });
      req.on('error', () => resolve());
      req.end(JSON.stringify(chat({ max_tokens: 2000 })));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 300);
    });
    expect(await eventually(async () => ((await (await fetch(`${s.url}/health`)).json()) as { slots_busy: number }).slots_busy === 0, 5000)).toBe(true);
    const metrics = await (await fetch(`${s.url}/metrics`, { headers: auth })).text();
    // the aborted request generated far fewer than its 2000 tokens
    const generated = Number(/^hermes3_generated_tokens_total (\d+)$/m.exec(metrics)![1]);
    expect(generated).toBeLessThan(4000);
  });

  it('serves Prometheus metrics', async () => {
    const res = await fetch(`${s.url}/metrics`, { headers: auth });
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const name of ['hermes3_requests_total', 'hermes3_prompt_tokens_total', 'hermes3_generated_tokens_total', 'hermes3_requests_queued', 'hermes3_generated_tokens_per_second']) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} (counter|gauge)$`, 'm'));
    }
    expect(text).toMatch(/^hermes3_requests_total\{route="\/v1\/chat\/completions",status="200"\} \d+$/m);
  });

  it('sends no CORS headers unless told', async () => {
    const res = await fetch(`${s.url}/health`, { headers: { origin: 'http://evil.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('requests at the same time', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startServer({ parallel: 3 });
  });
  afterAll(() => s.close());

  it('share decode steps (continuous batching)', async () => {
    const ask = () => fetch(`${s.url}/v1/chat/completions`, json(chat({ max_tokens: 64, messages: [{ role: 'user', content: `hi ${Math.random()}` }] })));
    const replies = await Promise.all([ask(), ask(), ask()]);
    for (const r of replies) expect(((await r.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(64);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    const widest = Number(/^hermes3_batch_widest (\d+)$/m.exec(metrics)![1]);
    const steps = Number(/^hermes3_decode_steps_total (\d+)$/m.exec(metrics)![1]);
    expect(widest).toBeGreaterThanOrEqual(2);
    // three replies of 64 tokens took fewer steps than one after another would
    expect(steps).toBeLessThan(3 * 64);
  });
});

describe('server defaults', () => {
  let s: Running;
  let plain: Running;
  beforeAll(async () => {
    s = await startServer({ parallel: 1, systemPrompt: 'You are Hermes, a helpful assistant.', sampling: { temperature: 0 } });
    plain = await startServer({ parallel: 1 });
  });
  afterAll(async () => {
    await s.close();
    await plain.close();
  });
  const ask = async (r: Running, extra: Record<string, unknown> = {}) =>
    (await (await fetch(`${r.url}/v1/chat/completions`, json(chat({ max_tokens: 8, ...extra })))).json()) as { usage: { prompt_tokens: number }; choices: [{ message: { content: string } }] };

  it('add the system prompt to conversations without one, and sample as configured unless the request says', async () => {
    const withDefault = await ask(s);
    const without = await ask(plain);
    const system = s.model.tokenize('<|im_start|>system\nYou are Hermes, a helpful assistant.<|im_end|>\n', { special: true }).length;
    expect(withDefault.usage.prompt_tokens).toBe(without.usage.prompt_tokens + system);
    const own = await ask(s, { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }] });
    expect(own.usage.prompt_tokens).toBeLessThan(withDefault.usage.prompt_tokens);
    // temperature 0 from the defaults: greedy, so the same reply twice; a request's own temperature wins
    expect((await ask(s)).choices[0].message.content).toBe(withDefault.choices[0].message.content);
    const greedyPlain = await ask(plain, { temperature: 0, messages: [{ role: 'system', content: 'You are Hermes, a helpful assistant.' }, { role: 'user', content: 'hi' }] });
    expect(greedyPlain.choices[0].message.content).toBe(withDefault.choices[0].message.content);
  });
});

describe('CORS when allowed', () => {
  let s: Running;
  beforeAll(async () => {
    s = await startServer({ cors: 'http://app.example', parallel: 1 });
  });
  afterAll(() => s.close());

  it('answers the preflight for the allowed origin only', async () => {
    const ok = await fetch(`${s.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'http://app.example', 'access-control-request-method': 'POST' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://app.example');
    const other = await fetch(`${s.url}/v1/models`, { headers: { origin: 'http://evil.example' } });
    // the browser compares the origin it sent with the one allowed, and blocks the response
    expect(other.headers.get('access-control-allow-origin')).not.toBe('http://evil.example');
  });
});
