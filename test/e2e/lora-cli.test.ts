/** `--lora FILE[:SCALE]` on hermes3 run and serve, as real processes. */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatChat, loadModel } from '../../src/index.js';
import { writeSyntheticLora } from '../../src/testing/index.js';
import { FIXTURES, cliPath, requireFile, runNode } from '../fixtures.js';

const cli = (args: string[]) => runNode([requireFile(cliPath, 'run npm run compile'), ...args]);
const scratch = mkdtempSync(join(tmpdir(), 'hermes3-lora-cli-'));
const ADAPTER = join(scratch, 'adapter.gguf');
const PROMPT = 'Hello there';

async function apiGreedy(scale: number | undefined, maxTokens: number): Promise<number[]> {
  const model = await loadModel({ modelPath: FIXTURES.f16, ...(scale === undefined ? {} : { lora: [{ path: ADAPTER, scale }] }) });
  try {
    const ctx = await model.createContext();
    const tokens: number[] = [];
    for await (const c of ctx.sequence().generate(formatChat([{ role: 'user', content: PROMPT }]), { temperature: 0, maxTokens })) tokens.push(...c.tokens);
    return tokens;
  } finally {
    await model.dispose();
  }
}

const run = (extra: string[]) => cli(['run', '--model', FIXTURES.f16, '--prompt', PROMPT, '--max-tokens', '12', '--temperature', '0', '--json', ...extra]);

beforeAll(async () => {
  await writeSyntheticLora({ path: ADAPTER, modelPath: FIXTURES.f16, rank: 8, seed: 5 });
});

describe('hermes3 run --lora', () => {
  it('applies the adapter with its scale (default 1), as the API does', async () => {
    const withAdapter = await run(['--lora', ADAPTER]);
    expect(withAdapter.code).toBe(0);
    const tokens = JSON.parse(withAdapter.stdout).tokens as number[];
    expect(tokens).toEqual(await apiGreedy(1, 12));
    expect(tokens).not.toEqual(await apiGreedy(undefined, 12));
    const half = await run(['--lora', `${ADAPTER}:0.5`]);
    expect(JSON.parse(half.stdout).tokens).toEqual(await apiGreedy(0.5, 12));
    // scale 0 is the base model
    const off = await run(['--lora', `${ADAPTER}:0`]);
    expect(JSON.parse(off.stdout).tokens).toEqual(await apiGreedy(undefined, 12));
  });

  it('explains a bad --lora value or file, with the usage and not-found exit codes', async () => {
    const scale = await run(['--lora', `${ADAPTER}:strong`]);
    expect(scale.code).toBe(2);
    expect(scale.stderr).toContain(`Invalid --lora: the scale 'strong' is not a number; expected FILE or FILE:SCALE (a LoRA adapter GGUF file and a number, default 1), received '${ADAPTER}:strong'`);
    const empty = await run(['--lora', `${ADAPTER}:`]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain("Invalid --lora: the scale '' is not a number");
    const range = await run(['--lora', `${ADAPTER}:1000`]);
    expect(range.code).toBe(2);
    expect(range.stderr).toContain('Invalid --lora: the scale 1000 is outside -100 to 100');
    const missing = await run(['--lora', join(scratch, 'none.gguf')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain(`LoRA adapter file not found: ${join(scratch, 'none.gguf')}`);
    const model = await run(['--lora', FIXTURES.q8]);
    expect(model.code).toBe(1);
    expect(model.stderr).toContain('is not a LoRA adapter llama.cpp can use: it has no general.type key');
  });
});

describe('--lora in the help of run, chat and serve', () => {
  it('lists the option with its scale', async () => {
    for (const command of ['run', 'chat', 'serve']) {
      const help = await cli([command, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout.replace(/\s+/g, ' ')).toContain('--lora <file[:scale]> apply a LoRA adapter GGUF made for this model, with a scale (default 1; repeatable)');
    }
  });
});

describe('hermes3 inspect on an adapter', () => {
  it('says what it adapts instead of a model shape', async () => {
    const r = await cli(['inspect', ADAPTER]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('adapter       lora for llama (base model Hermes 3 synthetic tiny): synthetic LoRA rank 8 seed 5');
    expect(r.stdout).toContain('lora          alpha 8, rank 8, 14 weights adapted (0.3 MiB)');
    expect(r.stdout).not.toContain('undefined');
  });
});

describe('hermes3 serve --lora', () => {
  it('serves the model with the adapter applied', async () => {
    const child = spawn(process.execPath, [cliPath, 'serve', '--model', FIXTURES.f16, '--port', '0', '--quiet', '--parallel', '1', '--ctx', '512', '--lora', ADAPTER], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /^listening on (http:\/\/\S+)$/m.exec(out);
          if (m) resolve(m[1]);
        });
        child.once('exit', () => reject(new Error(`the server exited before listening: ${err}`)));
      });
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny-f16', messages: [{ role: 'user', content: PROMPT }], max_tokens: 12, temperature: 0 }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
      const expected = JSON.parse((await run(['--lora', ADAPTER])).stdout).text as string;
      expect(body.choices[0].message.content).toBe(expected);
      expect(body.choices[0].message.content).not.toBe(JSON.parse((await run([])).stdout).text);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
