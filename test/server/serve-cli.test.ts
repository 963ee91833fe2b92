/** `hermes3 serve` as a real process: the listening line, SIGTERM with a request running, usage errors. */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, cliPath, runNode } from '../fixtures.js';

function startWith(args: string[]) {
  return start(args, false);
}

function start(args: string[], withModel = true): { child: ChildProcess; url: Promise<string>; exit: Promise<number | null>; stderr: () => string } {
  const base = withModel ? ['--model', FIXTURES.q8, '--port', '0'] : [];
  const child = spawn(process.execPath, [cliPath, 'serve', ...base, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TEST_KEY: 'from-env' } });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^listening on (http:\/\/\S+)$/m.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', () => reject(new Error(`the server exited before listening: ${err}`)));
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, url, exit, stderr: () => err };
}

describe('hermes3 serve', () => {
  it('prints its address, logs requests, and on SIGTERM lets a running request finish, then exits 0', async () => {
    const s = start(['--parallel', '2', '--ctx', '512', '--grace-ms', '120000']);
    try {
      const url = await s.url;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny-q8_0', messages: [{ role: 'user', content: 'hi' }], max_tokens: 100, stream: true }),
      });
      const reader = res.body!.getReader();
      const first = await reader.read();
      expect(first.done).toBe(false);
      s.child.kill('SIGTERM');
      // new connections are refused while the running stream completes
      let text = new TextDecoder().decode(first.value);
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
      expect(text).toMatch(/"finish_reason":"length"/);
      expect(await s.exit).toBe(0);
      expect(s.stderr()).toMatch(/POST \/v1\/chat\/completions 200/);
      expect(s.stderr()).toMatch(/stopped/);
    } finally {
      s.child.kill('SIGKILL');
    }
  });

  it('aborts what is still running when the grace period ends', async () => {
    const s = start(['--parallel', '1', '--ctx', '4096', '--grace-ms', '200', '--max-tokens', '4000', '--quiet']);
    try {
      const url = await s.url;
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny-q8_0', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4000, stream: true }),
      });
      const reader = res.body!.getReader();
      await reader.read();
      s.child.kill('SIGINT');
      let text = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      // cut short: the stream still ends properly
      expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
      expect(text).not.toMatch(/"finish_reason":"length"/);
      expect(await s.exit).toBe(0);
    } finally {
      s.child.kill('SIGKILL');
    }
  });

  it('reads a config file (relative model path, key from the environment, defaults), with flags winning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hermes3-config-'));
    copyFileSync(FIXTURES.q8, join(dir, 'model.gguf'));
    const config = join(dir, 'hermes3.json');
    writeFileSync(config, JSON.stringify({ model: './model.gguf', name: 'hermes3', port: 1, parallel: 1, ctx: 512, apiKeyEnv: 'TEST_KEY', systemPrompt: 'You are Hermes.', sampling: { temperature: 0 } }));
    const s = startWith(['--config', config, '--port', '0', '--quiet']);
    try {
      const url = await s.url;
      expect((await fetch(`${url}/v1/models`)).status).toBe(401);
      const models = (await (await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer from-env' } })).json()) as { data: { id: string }[] };
      expect(models.data[0].id).toBe('hermes3');
      const health = (await (await fetch(`${url}/health`)).json()) as { slots: number };
      expect(health.slots).toBe(1);
      s.child.kill('SIGTERM');
      expect(await s.exit).toBe(0);
    } finally {
      s.child.kill('SIGKILL');
    }
    const bad = await runNode([cliPath, 'serve', '--config', join(dir, 'missing.json')]);
    expect(bad.code).toBe(2);
    writeFileSync(config, JSON.stringify({ model: './model.gguf', modle: 1 }));
    const unknown = await runNode([cliPath, 'serve', '--config', config]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown option modle for config file');
  });

  it('says what to do when the port is taken or an option is wrong', async () => {
    const blocker = createNetServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const taken = await runNode([cliPath, 'serve', '--model', FIXTURES.q8, '--port', String(port)]);
      expect(taken.code).toBe(2);
      expect(taken.stderr).toMatch(new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use: choose another --port`));
    } finally {
      blocker.close();
    }
    // without --model: the default model, not in an empty cache; the hub stand-in is a closed port
    const closed = createNetServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const hub = `http://127.0.0.1:${(closed.address() as { port: number }).port}`;
    await new Promise((r) => closed.close(r));
    const noModel = await runNode([cliPath, 'serve', '--port', '0'], { env: { ...process.env, HERMES3_MODELS: mkdtempSync(join(tmpdir(), 'hermes3-models-')), HF_ENDPOINT: hub } });
    expect(noModel.code).toBe(5);
    expect(noModel.stderr).toMatch(/could not (download|reach)/);
    const badParallel = await runNode([cliPath, 'serve', '--model', FIXTURES.q8, '--parallel', 'many']);
    expect(badParallel.code).toBe(2);
    expect(badParallel.stderr).toMatch(/Invalid --parallel/);
  });

  it('serves embeddings with --embedding-ctx and --pooling, refuses a bad --pooling, and --no-embeddings turns them off', async () => {
    const s = start(['--embedding-ctx', '24', '--pooling', 'last']);
    try {
      const url = await s.url;
      const post = (input: string) => fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny-q8_0', input, encoding_format: 'float' }) });
      const ok = (await (await post('The sea is blue.')).json()) as { data: { embedding: number[] }[] };
      expect(ok.data[0]!.embedding.length).toBeGreaterThan(0);
      const long = await post(Array.from({ length: 30 }, (_, i) => `word${i}`).join(' '));
      expect(long.status).toBe(400);
      expect(((await long.json()) as { error: { message: string } }).error.message).toMatch(/nCtx \(24\)/);
    } finally {
      s.child.kill('SIGTERM');
      expect(await s.exit).toBe(0);
    }
    const bad = await runNode([cliPath, 'serve', '--model', FIXTURES.q8, '--pooling', 'max']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Invalid --pooling: expected mean, cls, last or none/);
    const off = start(['--no-embeddings']);
    try {
      const res = await fetch(`${await off.url}/api/embed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny-q8_0', input: 'a' }) });
      expect(res.status).toBe(404);
    } finally {
      off.child.kill('SIGTERM');
      await off.exit;
    }
  });
});
