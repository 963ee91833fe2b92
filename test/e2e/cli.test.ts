import { mkdtempSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatChat, loadModel } from '../../src/index.js';
import { FIXTURES, cliPath, requireFile, runNode } from '../fixtures.js';

const cli = (args: string[]) => runNode([requireFile(cliPath, 'run npm run compile'), ...args]);

async function apiGreedy(prompt: string, maxTokens: number): Promise<number[]> {
  const model = await loadModel({ modelPath: FIXTURES.f16 });
  try {
    const ctx = await model.createContext();
    const tokens: number[] = [];
    for await (const c of ctx.sequence().generate(prompt, { temperature: 0, maxTokens })) tokens.push(...c.tokens);
    return tokens;
  } finally {
    await model.dispose();
  }
}

describe('hermes3 run', () => {
  it('prints one JSON object with the greedy tokens of a ChatML prompt', async () => {
    const r = await cli(['run', '--model', FIXTURES.f16, '--prompt', 'Hello there', '--max-tokens', '12', '--temperature', '0', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out).sort()).toEqual(['finishReason', 'text', 'timings', 'tokens']);
    expect(out.finishReason).toBe('length');
    expect(out.tokens).toEqual(await apiGreedy(formatChat([{ role: 'user', content: 'Hello there' }]), 12));
    expect(out.timings.generatedTokens).toBe(12);
  });

  it('sends --raw prompts as they are, special tokens parsed', async () => {
    const raw = '<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n';
    const r = await cli(['run', '--model', FIXTURES.f16, '--prompt', raw, '--raw', '--max-tokens', '6', '--temperature', '0', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).tokens).toEqual(await apiGreedy(raw, 6));
  });

  it('streams text without --json', async () => {
    const r = await cli(['run', '--model', FIXTURES.f16, '--prompt', 'Hi', '--max-tokens', '8', '--temperature', '0']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().length).toBeGreaterThan(0);
  });

  it('explains usage errors with exit code 2', async () => {
    // without --model: Hermes 3 8B Q4_K_M from the cache, here empty, and a hub that does not answer
    const models = mkdtempSync(join(tmpdir(), 'hermes3-models-'));
    const closed = createNetServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const missing = await runNode([cliPath, 'run', '--prompt', 'x'], { env: { ...process.env, HERMES3_MODELS: models, HF_ENDPOINT: `http://127.0.0.1:${port}` } });
    expect(missing.code).toBe(5);
    expect(missing.stderr).toMatch(/could not (download|reach).*127\.0\.0\.1/);
    const bad = await cli(['run', '--model', FIXTURES.f16, '--prompt', 'x', '--max-tokens', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Invalid --max-tokens: expected an integer >= 0, received 'lots'");
    const unknown = await cli(['run', '--prompt', 'x', '--modle', 'x']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--modle'");
    expect(unknown.stderr).toContain('Did you mean --model?');
    const cmd = await cli(['fly']);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toContain("unknown command 'fly'");
  });

  it('reports a missing model file with exit code 3', async () => {
    const r = await cli(['run', '--model', '/nonexistent/model.gguf', '--prompt', 'x']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('there is no file /nonexistent/model.gguf; pass the path of a GGUF file, or a reference');
  });
});

describe('hermes3 demo', () => {
  it('writes a synthetic model and streams a reply', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hermes3-demo-'));
    const r = await cli(['demo', '--model-dir', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('writing a synthetic model');
    expect(r.stdout).toMatch(/assistant: .+/);
    expect(r.stdout).toMatch(/\[length\] 48 tokens/);
  });
});

describe('hermes3 inspect', () => {
  it('prints a summary, and JSON with --json', async () => {
    const text = await cli(['inspect', FIXTURES.q4km]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/file type +Q4_K_M/);
    const json = await cli(['inspect', FIXTURES.q4km, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ architecture: 'llama', fileType: 'Q4_K_M', shape: { nLayer: 2 } });
    const bad = await cli(['inspect']);
    expect(bad.code).toBe(2);
  });
});

describe('hermes3 plan', () => {
  it('prints the VRAM table for Hermes 3 sizes, quantizations and contexts', async () => {
    const r = await cli(['plan']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^model\s+quant\s+weights\s+4k\s+8k\s+32k\s+128k$/m);
    for (const row of ['8B', '70B', '405B']) for (const q of ['F16', 'Q8_0', 'Q6_K', 'Q5_K_M', 'Q4_K_M', 'IQ4_XS']) expect(r.stdout).toMatch(new RegExp(`^${row}\\s+${q}\\s`, 'm'));
    const json = JSON.parse((await cli(['plan', '--shape', '8b', '--quant', 'Q4_K_M', '--ctx', '8k', '--kv', 'q8_0', '--json'])).stdout);
    expect(json[0].plans[0].kvCacheBytes).toBe(8192 * 131072 * (34 / 32 / 2));
    expect((await cli(['plan', '--kv', 'f8'])).code).toBe(2);
  });

  it('plans a model across hosts with --hosts, and refuses a list it cannot read', async () => {
    const r = await cli(['plan', '--shape', '405b', '--hosts', '4x80GiB,2x24GiB,cpu:64GiB']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^GPU5 +24\.0 +blocks 119-125, output /m);
    expect(r.stdout).toContain('fits: the fullest device, GPU0, uses 68% of its usable memory');
    const bad = await cli(['plan', '--hosts', '4x80']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Invalid --hosts: expected [NAME:][Nx]SIZE");
  });
});

describe('the command line as a whole', () => {
  it('gives every command a --help with its options and an example', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    const names = [...top.stdout.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]).filter((n) => n !== 'help');
    expect(names).toEqual(expect.arrayContaining(['run', 'chat', 'serve', 'inspect', 'plan', 'quantize', 'bench']));
    for (const name of names) {
      const r = await cli([name, '--help']);
      expect(r.code, name).toBe(0);
      expect(r.stdout, name).toMatch(/^Options:$/m);
      expect(r.stdout, name).toMatch(/^Examples?:$/m);
    }
    expect((await cli([])).code).toBe(2);
    expect((await cli(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('quantizes with a result as JSON, and refuses an unknown type', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'hermes3-q-')), 'tiny-q4_0.gguf');
    const r = await cli(['quantize', FIXTURES.f16, out, 'Q4_0', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { bytes: number; inputBytes: number; type: string };
    expect(result.type).toBe('Q4_0');
    expect(result.bytes).toBeLessThan(result.inputBytes / 2);
    const inspected = JSON.parse((await cli(['inspect', out, '--json'])).stdout) as { fileType: string };
    expect(inspected.fileType).toBe('Q4_0');
    const bad = await cli(['quantize', FIXTURES.f16, out, 'Q9_X']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Invalid type 'Q9_X': expected one of");
  });
});
