// hermes3 pull, ls and rm as functions: what they print on stdout and stderr.
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceInfo } from '../../src/engine/backends.js';
import { InsufficientMemoryError, ModelNotFoundError, OptionsError } from '../../src/errors.js';
import { lsCommand, rmCommand } from '../../src/cli/models.js';
import { modelPathForCli, pullCommand } from '../../src/cli/pull.js';
import { FakeHub } from '../../src/testing/fake-hub.js';
import { someBytes } from './models.js';

let hub: FakeHub;
let tmp: string;
let n = 0;
const env = () => ({ HF_ENDPOINT: hub.endpoint, HERMES3_MODELS: join(tmp, `models-${++n}`) });
const GiB = 2 ** 30;
const devices: DeviceInfo[] = [{ name: 'CPU', description: 'test', type: 'cpu', backend: 'CPU', freeBytes: 12 * GiB, totalBytes: 64 * GiB }];

/** A stream that keeps what is written to it (not a TTY: plain progress lines). */
function sink() {
  const s = new PassThrough() as PassThrough & { text: () => string; isTTY?: boolean };
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.text = () => Buffer.concat(chunks).toString('utf8');
  return s;
}
const io = () => ({ out: sink(), err: sink(), signal: new AbortController().signal });

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hermes3-cli-'));
  hub = await new FakeHub().start();
  hub.addRepo('acme/small-GGUF', [{ path: 'small.Q4_K_M.gguf', body: someBytes(1_500_000) }]);
  hub.addRepo(
    'NousResearch/Hermes-3-Llama-3.1-8B-GGUF',
    ['Q8_0', 'Q6_K', 'Q5_K_M', 'Q4_K_M'].map((q) => ({ path: `Hermes-3-Llama-3.1-8B.${q}.gguf`, body: someBytes(1000) })),
  );
});

afterAll(async () => {
  await hub.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('hermes3 pull', () => {
  it('prints the path on stdout and progress on stderr; a second pull says it is there', async () => {
    const e = env();
    const a = io();
    await pullCommand('hf:acme/small-GGUF:Q4_K_M', {}, a.out, a.signal, { env: e, stderr: a.err as never });
    const path = join(e.HERMES3_MODELS, 'acme/small-GGUF/small.Q4_K_M.gguf');
    expect(a.out.text()).toBe(`${path}\n`);
    expect(a.err.text()).toMatch(/^pulling small\.Q4_K_M\.gguf: done in \d+s\n$/);
    const b = io();
    await pullCommand('hf:acme/small-GGUF:Q4_K_M', {}, b.out, b.signal, { env: e, stderr: b.err as never });
    expect(b.err.text()).toBe('hf:acme/small-GGUF:Q4_K_M is already pulled\n');
    const c = io();
    await pullCommand('hf:acme/small-GGUF:Q4_K_M', { json: true }, c.out, c.signal, { env: e, stderr: c.err as never });
    expect(JSON.parse(c.out.text())).toEqual({ ref: 'hf:acme/small-GGUF:Q4_K_M', path, files: [path], cached: true, size: 1_500_000 });
  });

  it('--recommend explains its choice, and --dry-run downloads nothing', async () => {
    const e = env();
    const a = io();
    await pullCommand(undefined, { recommend: true, dryRun: true }, a.out, a.signal, { env: e, stderr: a.err as never, devices });
    const lines = a.err.text().trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ {2}✗ Q8_0 needs 9\.89 GB of RAM on the CPU .* does not fit$/);
    expect(lines[1]).toMatch(/^ {2}✓ Q6_K needs 7\.94 GB of RAM/);
    expect(lines.at(-1)).toMatch(/^no GPU: Q6_K is the largest quantization that fits in RAM at 8192 tokens/);
    expect(a.out.text()).toBe(`NousResearch/Hermes-3-Llama-3.1-8B-GGUF/Hermes-3-Llama-3.1-8B.Q6_K.gguf  1 kB\nwould download hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q6_K to ${e.HERMES3_MODELS}\n`);
  });

  it('--recommend falls back to the usual quantizations offline, and fails when nothing fits', async () => {
    // a port nothing listens on
    const closed = createServer().listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const offline = { HF_ENDPOINT: `http://127.0.0.1:${port}`, HERMES3_MODELS: join(tmp, 'offline') };
    const a = io();
    await pullCommand(undefined, { recommend: true, dryRun: true, json: true, shape: '8b', ctx: '8192' }, a.out, a.signal, { env: offline, stderr: a.err as never, devices });
    expect(a.err.text()).toMatch(/^could not list NousResearch\/Hermes-3-Llama-3\.1-8B-GGUF \(could not download from 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    expect(JSON.parse(a.out.text())).toMatchObject({ ref: 'hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q6_K', dir: offline.HERMES3_MODELS, recommendation: { quant: 'Q6_K', nCtx: 8192 } });
    const b = io();
    await expect(pullCommand(undefined, { recommend: true, shape: '405b' }, b.out, b.signal, { env: offline, stderr: b.err as never, devices })).rejects.toThrow(InsufficientMemoryError);
  });

  it('refuses options that do not go together', async () => {
    const a = io();
    await expect(pullCommand('hf:o/r:Q4_K_M', { recommend: true }, a.out, a.signal, { env: env(), devices })).rejects.toThrow(
      new OptionsError("--recommend picks the quantization: pass hf:OWNER/REPO without :QUANT or a file, or no REF, received 'hf:o/r:Q4_K_M'"),
    );
    await expect(pullCommand('hf:o/r', { shape: '8b' }, a.out, a.signal, { env: env() })).rejects.toThrow('--shape and --ctx go with --recommend');
    await expect(pullCommand(undefined, { recommend: true, shape: '7b' }, a.out, a.signal, { env: env(), devices })).rejects.toThrow("Invalid --shape: expected one of 8b, 70b, 405b, received '7b'");
  });
});

describe('hermes3 ls and rm', () => {
  it('lists, removes, and says when there is nothing', async () => {
    const e = env();
    const a = io();
    await lsCommand({}, a.out, e);
    expect(a.out.text()).toBe(`no models in ${e.HERMES3_MODELS}; hermes3 pull REF downloads one\n`);
    const path = await modelPathForCli('hf:acme/small-GGUF:Q4_K_M', { yes: true, signal: a.signal, env: e, stderr: a.err as never });
    const b = io();
    await lsCommand({}, b.out, e);
    const [head, row] = b.out.text().trim().split('\n');
    expect(head).toMatch(/^REF +SIZE +PULLED +PATH$/);
    expect(row).toMatch(new RegExp(`^hf:acme/small-GGUF:Q4_K_M +1\\.5 MB +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d +${path.replace(/[.]/g, '\\.')}$`));
    const c = io();
    await lsCommand({ json: true }, c.out, e);
    expect(JSON.parse(c.out.text())).toEqual([{ ref: 'hf:acme/small-GGUF:Q4_K_M', path, files: [path], size: 1_500_000, pulledAt: expect.any(String), complete: true }]);
    const d = io();
    await rmCommand('hf:acme/small-GGUF:Q4_K_M', {}, d.out, e);
    expect(d.out.text()).toBe(`removed ${path}\nremoved ${path}.hermes3.json\n`);
    await expect(rmCommand('hf:acme/small-GGUF:Q4_K_M', {}, d.out, e)).rejects.toThrow(ModelNotFoundError);
  });
});
