import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { FIXTURES, root } from '../fixtures.js';

it('survives worker threads terminated while loading and while generating', async () => {
  const program = join(root, 'test', 'model', 'programs', 'terminate-workers.mjs');
  const entry = pathToFileURL(join(root, 'dist', 'index.js')).href;
  const { stdout } = await promisify(execFile)(process.execPath, [program, FIXTURES.f16, entry], { encoding: 'utf8' }).catch((err: { code?: number; signal?: string; stdout?: string; stderr?: string }) => {
    // a crash prints nothing of its own: say how the program ended
    throw new Error(`terminate-workers.mjs ended with exit code ${err.code}, signal ${err.signal}; stdout: ${err.stdout?.trim() || '(none)'}; stderr: ${err.stderr?.trim() || '(none)'}`);
  });
  expect(stdout.trim()).toBe('ok');
});

it('keeps the event loop alive while a generation runs, and lets the process and its workers end after it', async () => {
  const program = join(root, 'test', 'model', 'programs', 'loop-ref.mjs');
  const entry = pathToFileURL(join(root, 'dist', 'index.js')).href;
  // a process held open by a finished generation would never end: the timeout fails the test
  const { stdout } = await promisify(execFile)(process.execPath, [program, FIXTURES.f16, entry], { encoding: 'utf8', timeout: 60_000 });
  expect(stdout.trim().split('\n')).toEqual(['main 40 worker 40', 'worker exit 0']);
});

it("leaves libuv's thread pool to the application: a file read is not queued behind model loads", async () => {
  const program = join(root, 'test', 'model', 'programs', 'libuv-pool.mjs');
  const entry = pathToFileURL(join(root, 'dist', 'index.js')).href;
  const env = { ...process.env, UV_THREADPOOL_SIZE: '1' };
  const { stdout } = await promisify(execFile)(process.execPath, [program, FIXTURES.f16, entry], { encoding: 'utf8', env });
  const order = stdout.trim().split(' ');
  expect([...order].sort()).toEqual(['load0', 'load1', 'load2', 'load3', 'stat']);
  // on a pool of one thread busy with the loads, the read would come last
  expect(order.indexOf('stat')).toBeLessThan(4);
});
