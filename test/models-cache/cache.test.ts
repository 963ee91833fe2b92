// The models directory as a cache: listing, removal, resolveModelPath, and pulled models loaded by llama.cpp.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DownloadNotConfirmedError, ModelNotFoundError } from '../../src/errors.js';
import { loadModel } from '../../src/engine/model.js';
import { listModels, removeModel } from '../../src/models/cache.js';
import { DEFAULT_MODEL_REF, pullModel, resolveModelPath } from '../../src/models/pull.js';
import { FakeHub } from '../../src/testing/fake-hub.js';
import { someBytes, splitGguf, tinyModel } from './models.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const SIZE = 2_000_000;

let hub: FakeHub;
let tmp: string;
let n = 0;
let tiny: Buffer;
const small = { q4: someBytes(SIZE), q8: someBytes(SIZE) };
const env = () => ({ HF_ENDPOINT: hub.endpoint, HERMES3_MODELS: join(tmp, `models-${++n}`) });

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hermes3-cache-'));
  hub = await new FakeHub().start();
  tiny = await tinyModel(join(tmp, 'tiny.gguf'));
  const parts = await splitGguf(join(tmp, 'tiny.gguf'), join(tmp, 'tiny-F16'), 2);
  hub.addRepo('acme/small-GGUF', [
    { path: 'small.Q4_K_M.gguf', body: small.q4 },
    { path: 'small.Q8_0.gguf', body: small.q8 },
  ]);
  hub.addRepo('acme/one-GGUF', [{ path: 'one.Q4_K_M.gguf', body: small.q4 }]);
  hub.addRepo('NousResearch/Hermes-3-Llama-3.1-8B-GGUF', [{ path: 'Hermes-3-Llama-3.1-8B.Q4_K_M.gguf', body: tiny }]);
  hub.addRepo('acme/split-GGUF', parts.map((p) => ({ path: `F16/${basename(p)}`, body: readFileSync(p) })));
});

afterAll(async () => {
  await hub.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('listModels and removeModel', () => {
  it('lists every pulled model with its reference, path, size and time', async () => {
    const e = env();
    expect(await listModels({ env: e })).toEqual([]);
    const a = await pullModel('hf:acme/small-GGUF:Q4_K_M', { env: e });
    const b = await pullModel('hf:acme/small-GGUF/small.Q8_0.gguf', { env: e });
    const list = await listModels({ env: e });
    expect(list.map((m) => [m.ref, m.path, m.size, m.complete])).toEqual([
      ['hf:acme/small-GGUF:Q4_K_M', a.path, SIZE, true],
      ['hf:acme/small-GGUF/small.Q8_0.gguf', b.path, SIZE, true],
    ]);
    expect(Date.parse(list[0].pulledAt)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('finds a file reference in the cache, and remembers another reference to the same files as an alias', async () => {
    const e = env();
    await pullModel('hf:acme/small-GGUF:Q8_0', { env: e });
    let before = hub.log.length;
    expect((await pullModel('hf:acme/small-GGUF/small.Q8_0.gguf', { env: e })).cached).toBe(true);
    expect(hub.log.length).toBe(before);
    // hf:OWNER/REPO names the only GGUF: resolved once through the listing, then remembered
    await pullModel('hf:acme/one-GGUF:Q4_K_M', { env: e });
    before = hub.requests('cdn').length;
    const again = await pullModel('hf:acme/one-GGUF', { env: e });
    expect(again).toMatchObject({ cached: true, record: { ref: 'hf:acme/one-GGUF:Q4_K_M', aliases: ['hf:acme/one-GGUF'] } });
    expect(hub.requests('cdn').length).toBe(before);
    before = hub.log.length;
    expect((await pullModel('hf:acme/one-GGUF', { env: e })).cached).toBe(true);
    expect(hub.log.length).toBe(before);
  });

  it('removes by reference or by path: files, partials, record and empty folders', async () => {
    const e = env();
    const a = await pullModel('hf:acme/small-GGUF:Q4_K_M', { env: e });
    const b = await pullModel('hf:acme/small-GGUF:Q8_0', { env: e });
    expect((await removeModel('hf:acme/small-GGUF:q4_k_m', { env: e })).removed).toEqual([a.path, `${a.path}.hermes3.json`]);
    expect(existsSync(a.path)).toBe(false);
    await removeModel(b.path, { env: e });
    expect(await readdir(e.HERMES3_MODELS)).toEqual([]);
    expect(await listModels({ env: e })).toEqual([]);
  });

  it('removes the partials of an interrupted pull without the network', async () => {
    const e = env();
    const dir = join(e.HERMES3_MODELS, 'acme/small-GGUF');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'small.Q4_K_M.gguf.partial'), 'part');
    expect((await removeModel('hf:acme/small-GGUF:Q4_K_M', { env: e })).removed).toEqual([join(dir, 'small.Q4_K_M.gguf.partial')]);
  });

  it('says when there is nothing to remove, and never touches files outside the models directory', async () => {
    const e = env();
    await expect(removeModel('hf:acme/small-GGUF:Q4_K_M', { env: e })).rejects.toThrow(
      new ModelNotFoundError(`hf:acme/small-GGUF:Q4_K_M is not a pulled model in ${e.HERMES3_MODELS}: nothing was removed. hermes3 ls lists the pulled models (HERMES3_MODELS sets the directory)`),
    );
    await expect(removeModel(join(tmp, 'tiny.gguf'), { env: e })).rejects.toThrow(/is not in the models directory .*: only pulled models are removed/);
    expect(existsSync(join(tmp, 'tiny.gguf'))).toBe(true);
  });
});

describe('resolveModelPath', () => {
  it('returns an existing file as it is, and names a missing one', async () => {
    expect(await resolveModelPath(join(tmp, 'tiny.gguf'))).toBe(join(tmp, 'tiny.gguf'));
    await expect(resolveModelPath(join(tmp, 'nope.gguf'))).rejects.toThrow(
      new ModelNotFoundError(`there is no file ${join(tmp, 'nope.gguf')}; pass the path of a GGUF file, or a reference such as ${DEFAULT_MODEL_REF}`),
    );
  });

  it('downloads only when told to or after a confirmation', async () => {
    const e = env();
    const ref = 'hf:acme/small-GGUF:Q4_K_M';
    await expect(resolveModelPath(ref, { env: e })).rejects.toThrow(
      new DownloadNotConfirmedError(`${ref} is not downloaded yet (small.Q4_K_M.gguf, 2.0 MB). Pass --yes (yes: true) to download it to ${e.HERMES3_MODELS}, or run: hermes3 pull ${ref}`),
    );
    const questions: string[] = [];
    await expect(resolveModelPath(ref, { env: e, confirm: async (q) => (questions.push(q), false) })).rejects.toThrow(/the download of hf:acme\/small-GGUF:Q4_K_M was declined/);
    expect(questions).toEqual([`Download small.Q4_K_M.gguf (2.0 MB) to ${e.HERMES3_MODELS}?`]);
    expect(existsSync(join(e.HERMES3_MODELS, 'acme'))).toBe(false);
    const path = await resolveModelPath(ref, { env: e, confirm: async () => true });
    expect(sha(readFileSync(path))).toBe(sha(small.q4));
    // now in the cache: no question, no network
    const before = hub.log.length;
    expect(await resolveModelPath(ref, { env: e })).toBe(path);
    expect(hub.log.length).toBe(before);
    expect(await resolveModelPath('hf:acme/small-GGUF:Q8_0', { env: e, yes: true })).toBe(join(e.HERMES3_MODELS, 'acme/small-GGUF/small.Q8_0.gguf'));
  });
});

describe('pulled models load', () => {
  it('pulls the default model and loads it', async () => {
    const e = env();
    const path = await resolveModelPath(undefined, { env: e, yes: true });
    expect(path).toBe(join(e.HERMES3_MODELS, 'NousResearch/Hermes-3-Llama-3.1-8B-GGUF/Hermes-3-Llama-3.1-8B.Q4_K_M.gguf'));
    const model = await loadModel({ modelPath: path });
    try {
      expect(model.tokenize('Hello').length).toBeGreaterThan(0);
    } finally {
      await model.dispose();
    }
  });

  it('pulls every part of a split model, verified, and llama.cpp loads it from the first', async () => {
    const e = env();
    const r = await pullModel('hf:acme/split-GGUF:f16', { env: e });
    expect(r.files.map((f) => basename(f))).toEqual(['tiny-F16-00001-of-00002.gguf', 'tiny-F16-00002-of-00002.gguf']);
    expect(r.path).toBe(r.files[0]);
    expect(r.record.files.map((f) => f.sha256)).toEqual(r.files.map((f) => sha(readFileSync(f))));
    const model = await loadModel({ modelPath: r.path });
    try {
      const ctx = await model.createContext({ nCtx: 256 });
      let text = '';
      for await (const chunk of ctx.sequence().generate('Hello', { maxTokens: 4, temperature: 0 })) text += chunk.text;
      expect(typeof text).toBe('string');
      // the same tensors as the whole file: the same greedy tokens
      const whole = await loadModel({ modelPath: join(tmp, 'tiny.gguf') });
      try {
        const wctx = await whole.createContext({ nCtx: 256 });
        let wtext = '';
        for await (const chunk of wctx.sequence().generate('Hello', { maxTokens: 4, temperature: 0 })) wtext += chunk.text;
        expect(text).toBe(wtext);
      } finally {
        await whole.dispose();
      }
    } finally {
      await model.dispose();
    }
  });
});
