import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { FIXTURES, root } from '../fixtures.js';

it('survives worker threads terminated while loading and while generating', async () => {
  const program = join(root, 'test', 'model', 'programs', 'terminate-workers.mjs');
  const entry = pathToFileURL(join(root, 'dist', 'index.js')).href;
  const { stdout } = await promisify(execFile)(process.execPath, [program, FIXTURES.f16, entry], { encoding: 'utf8' });
  expect(stdout.trim()).toBe('ok');
});
