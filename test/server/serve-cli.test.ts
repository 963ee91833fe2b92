/** `hermes3 serve` as a real process: the listening line, SIGTERM with a request running, usage errors. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { FIXTURES, cliPath, runNode } from '../fixtures.js';

function start(args: string[]): { child: ChildProcess; url: Promise<string>; exit: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [cliPath, 'serve', '--model', FIXTURES.q8, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
    const s = start(['--parallel', '2', '--ctx', '512', '--grace-ms', '20000']);
    try {
      const url = await s.url;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny-q8_0', messages: [{ role: 'user', content: 'hi' }], max_tokens: 300, stream: true }),
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
    const noModel = await runNode([cliPath, 'serve']);
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toMatch(/needs --model FILE/);
    const badParallel = await runNode([cliPath, 'serve', '--model', FIXTURES.q8, '--parallel', 'many']);
    expect(badParallel.code).toBe(2);
    expect(badParallel.stderr).toMatch(/Invalid --parallel/);
  });
});
