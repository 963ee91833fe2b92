/** The config file of `hermes3 serve --config FILE`: validation, messages that name the field and the file, the mapping to createServer(). */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OptionsError } from '../../src/errors.js';
import { configToServeOptions, loadServeConfig, type ServeConfigFile } from '../../src/server/config.js';
import { serverSchema } from '../../src/server/options.js';
import { root } from '../fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'hermes3-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
/** Writes `value` (JSON unless a string) to a fresh file in a subfolder; returns its path. */
function write(value: ServeConfigFile | Record<string, unknown> | string): string {
  const folder = join(dir, `c${++n}`);
  mkdirSync(folder);
  writeFileSync(join(folder, 'hermes3.json'), typeof value === 'string' ? value : JSON.stringify(value));
  return join(folder, 'hermes3.json');
}

const full: ServeConfigFile = {
  model: 'models/hermes.gguf',
  host: '0.0.0.0',
  port: 9090,
  ctx: 8192,
  gpuLayers: 'max',
  parallel: 8,
  threads: 16,
  maxQueue: 10,
  maxTokens: 2048,
  bodyLimit: 1 << 20,
  cors: ['https://a.example', 'https://b.example'],
  name: 'hermes3',
  apiKeyEnv: 'MY_HERMES_KEY',
  systemPrompt: 'You are Hermes.',
  sampling: { temperature: 0.7, topP: 0.9, topK: 50, minP: 0.02, repeatPenalty: 1.1, presencePenalty: 0.5, frequencyPenalty: 0.25, seed: 42 },
  graceMs: 20_000,
  embeddings: { ctx: 512, pooling: 'last' },
  lora: [{ path: 'adapters/tools.lora.gguf', scale: 0.5 }, { path: '/srv/pirate.lora.gguf' }],
};

describe('loadServeConfig', () => {
  it('loads a file with every field, resolves the model against its folder and reads the key from the named variable', async () => {
    const path = write(full);
    const config = await loadServeConfig(path, { MY_HERMES_KEY: 'sekret' });
    expect(config.model).toBe(join(path, '..', 'models', 'hermes.gguf'));
    expect(config.apiKey).toBe('sekret');
    expect(config.file).toBe(path);
    expect(configToServeOptions(config)).toEqual({
      modelSpec: join(path, '..', 'models', 'hermes.gguf'),
      listen: { host: '0.0.0.0', port: 9090 },
      gpuLayers: 'max',
      lora: [
        { path: join(path, '..', 'adapters', 'tools.lora.gguf'), scale: 0.5 },
        { path: '/srv/pirate.lora.gguf', scale: 1 },
      ],
      server: {
        modelName: 'hermes3', parallel: 8, ctx: 8192, threads: 16, maxQueue: 10, maxTokens: 2048, bodyLimit: 1 << 20, graceMs: 20_000,
        cors: ['https://a.example', 'https://b.example'], apiKey: 'sekret', systemPrompt: 'You are Hermes.',
        sampling: { temperature: 0.7, topP: 0.9, topK: 50, minP: 0.02, repeatPenalty: 1.1, presencePenalty: 0.5, frequencyPenalty: 0.25, seed: 42 },
        embeddings: { ctx: 512, pooling: 'last' },
      },
    });
  });

  it('maps to options createServer() takes (systemPrompt and sampling aside, which the CLI adds)', async () => {
    const { server } = configToServeOptions(await loadServeConfig(write(full), { MY_HERMES_KEY: 'k' }));
    const { systemPrompt: _s, sampling: _p, ...rest } = server;
    const fakeModel = { createContext: () => undefined, info: {} };
    expect(serverSchema.safeParse({ model: fakeModel, ...rest }).success).toBe(true);
  });

  it('leaves out what the file does not set, so command-line flags can fill it in', async () => {
    const options = configToServeOptions(await loadServeConfig(write({ model: '/srv/m.gguf', cors: ['https://a.example', '*'], sampling: { seed: 1 } })));
    expect(options).toEqual({ modelSpec: '/srv/m.gguf', listen: {}, server: { cors: '*', sampling: { seed: 1 } } });
    expect('gpuLayers' in options).toBe(false);
  });

  it('keeps references and absolute paths as they are', async () => {
    const ref = 'hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q4_K_M';
    expect((await loadServeConfig(write({ model: ref }))).model).toBe(ref);
    expect((await loadServeConfig(write({ model: '/srv/models/m.gguf' }))).model).toBe('/srv/models/m.gguf');
    const path = write({ model: '../shared/m.gguf' });
    expect((await loadServeConfig(path)).model).toBe(join(path, '..', '..', 'shared', 'm.gguf'));
  });

  it('loads the example config in deploy/', async () => {
    const config = await loadServeConfig(join(root, 'deploy', 'hermes3.json'), {});
    expect(config.model).toMatch(/^hf:/);
    expect(config.apiKey).toBeUndefined();
  });

  it('names an unknown key and the file', async () => {
    const path = write({ model: 'm.gguf', modle: 'x' });
    await expect(loadServeConfig(path)).rejects.toThrow(`Unknown option modle for config file ${path}; check the spelling (options are camelCase)`);
    await expect(loadServeConfig(path)).rejects.toBeInstanceOf(OptionsError);
    const nested = write({ model: 'm.gguf', sampling: { top_p: 0.9 } });
    await expect(loadServeConfig(nested)).rejects.toThrow(`Unknown option top_p in sampling for config file ${nested}`);
  });

  it('names the field, what was expected and what came', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ model: 'm.gguf', port: '8080' }, "Invalid option port for config file FILE: expected an integer between 0 and 65535, received '8080' (string)"],
      [{ model: 'm.gguf', port: 70000 }, 'Invalid option port for config file FILE: expected an integer between 0 and 65535, received 70000 (number)'],
      [{ model: 'm.gguf', gpuLayers: 'all' }, "Invalid option gpuLayers for config file FILE: expected an integer >= 0, 'max' or 'auto', received 'all' (string)"],
      [{ model: 'm.gguf', parallel: 0 }, 'Invalid option parallel for config file FILE: expected an integer between 1 and 64, received 0 (number)'],
      [{ model: 'm.gguf', cors: 5 }, 'Invalid option cors for config file FILE: expected an origin or a list of origins, received 5 (number)'],
      [{ model: 'm.gguf', sampling: { topP: 2 } }, 'Invalid option sampling.topP for config file FILE: expected a number between 0 and 1, received 2 (number)'],
      [{ model: 'm.gguf', systemPrompt: ['a'] }, 'Invalid option systemPrompt for config file FILE: expected a string, received an array of 1'],
      [{ port: 8080 }, 'Invalid option model for config file FILE: expected the path of a GGUF file or a reference like hf:owner/repo:QUANT, received undefined'],
    ];
    for (const [value, message] of cases) {
      const path = write(value);
      await expect(loadServeConfig(path)).rejects.toThrow(message.replace('FILE', path));
    }
    const array = write('[1, 2]');
    await expect(loadServeConfig(array)).rejects.toThrow(`Invalid options for config file ${array}: expected a JSON object of options, received an array of 2`);
  });

  it('says which variable to set when apiKeyEnv names a missing or empty one', async () => {
    const path = write({ model: 'm.gguf', apiKeyEnv: 'HERMES3_API_KEY' });
    await expect(loadServeConfig(path, {})).rejects.toThrow(
      `Invalid option apiKeyEnv for config file ${path}: the environment variable HERMES3_API_KEY is not set; set HERMES3_API_KEY to the API key`,
    );
    await expect(loadServeConfig(path, { HERMES3_API_KEY: '' })).rejects.toThrow('the environment variable HERMES3_API_KEY is empty');
  });

  it('does not repeat a key written where the variable name belongs', async () => {
    const path = write({ model: 'm.gguf', apiKeyEnv: 'sk-live-0123456789' });
    const err = await loadServeConfig(path).catch((e: Error) => e);
    expect((err as Error).message).toBe(`Invalid option apiKeyEnv for config file ${path}: expected the name of an environment variable (letters, digits and _), not the key itself`);
  });

  it('says when the file is missing or not JSON', async () => {
    const missing = join(dir, 'nope.json');
    await expect(loadServeConfig(missing)).rejects.toThrow(`cannot read the config file ${missing}: no such file`);
    const broken = write('{ "model": "m.gguf", }');
    await expect(loadServeConfig(broken)).rejects.toThrow(`the config file ${broken} is not valid JSON: `);
  });
});
