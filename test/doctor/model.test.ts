// The model checks on real files: the tiny fixture whole, cut, against a pull record, with a
// foreign chat template, with a context that does not fit, and the bounded speed probe.
import { copyFileSync, mkdtempSync, statSync, symlinkSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256File } from '../../src/doctor/file.js';
import { checkChatTemplate, checkChatTokens, templateFormat } from '../../src/doctor/template.js';
import { doctor, gatherFacts, type Finding, type MachineFacts } from '../../src/index.js';
import { writePullRecord } from '../../src/models/records.js';
import { writeSyntheticModel } from '../../src/testing/index.js';
import { FIXTURES } from '../fixtures.js';
import { cpuDevice } from './helpers.js';

const GiB = 2 ** 30;
const byId = (findings: Finding[], id: string) => findings.find((f) => f.id === id);
const dir = mkdtempSync(join(tmpdir(), 'doctor-model-'));
let here: MachineFacts;

beforeAll(async () => {
  here = await gatherFacts();
});

/** A link to the fixture in a folder of its own, so a pull record can sit beside it. */
function linked(name: string): string {
  const path = join(dir, name);
  symlinkSync(FIXTURES.q8, path);
  return path;
}

describe('doctor: the model file', () => {
  it('finds the healthy tiny model whole, ChatML, and fitting', async () => {
    const findings = await doctor({ modelPath: FIXTURES.q8, probe: false, facts: here });
    for (const id of ['model.file', 'chat.template', 'chat.tokens', 'fit']) expect(byId(findings, id), id).toMatchObject({ status: 'ok' });
    expect(byId(findings, 'model.file')?.data).toMatchObject({ fileBytes: statSync(FIXTURES.q8).size, expectedBytes: statSync(FIXTURES.q8).size });
    expect(byId(findings, 'model.file')?.detail).toContain('No pull record beside it');
    expect(byId(findings, 'speed')).toBeUndefined();
  });

  it('fails a truncated copy with the fix, and skips what needs a whole file', async () => {
    const cut = join(dir, 'cut.gguf');
    copyFileSync(FIXTURES.q8, cut);
    const size = statSync(cut).size;
    truncateSync(cut, Math.floor(size * 0.7));
    const findings = await doctor({ modelPath: cut, facts: here });
    const file = byId(findings, 'model.file')!;
    expect(file).toMatchObject({ status: 'fail', title: 'the model file is truncated' });
    expect(file.detail).toContain(`has ${Math.floor(size * 0.7)} bytes, but its tensor table needs ${size}`);
    expect(file.fix).toMatch(/^download it again: hermes3 pull REF/);
    // the header is intact: the template is still read
    expect(byId(findings, 'chat.template')?.status).toBe('ok');
    expect(byId(findings, 'fit')).toMatchObject({ status: 'info', detail: 'skipped: model.file failed' });
    expect(byId(findings, 'speed')).toMatchObject({ status: 'info' });
  });

  it('fails a file cut inside its header, or not a GGUF at all, without throwing', async () => {
    const stub = join(dir, 'stub.gguf');
    copyFileSync(FIXTURES.q8, stub);
    truncateSync(stub, 1000);
    const findings = await doctor({ modelPath: stub, facts: here });
    expect(byId(findings, 'model.file')).toMatchObject({ status: 'fail', title: 'the model file is truncated inside its header', fix: expect.stringMatching(/^download it again/) });
    const missing = await doctor({ modelPath: join(dir, 'nope.gguf'), facts: here });
    expect(byId(missing, 'model.file')).toMatchObject({ status: 'fail', title: 'the model file is missing' });
    // a directory: the fix is the path of the file inside, not a download
    const folder = await doctor({ modelPath: dir, facts: here });
    expect(byId(folder, 'model.file')).toMatchObject({ status: 'fail', title: 'the model path is a directory', fix: expect.stringMatching(/\.gguf file inside it/) });
  });

  it('checks a pulled file against its record: a wrong SHA-256 fails, the right one passes, with the time', async () => {
    const { sha256, seconds } = await sha256File(FIXTURES.q8);
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(seconds).toBeGreaterThanOrEqual(0);
    const size = statSync(FIXTURES.q8).size;
    const ref = 'hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q8_0';
    const record = (path: string, sha: string, bytes = size) => writePullRecord(path, { ref, url: 'https://example.invalid/x', files: [{ path: path.split('/').pop()!, size: bytes, sha256: sha }], pulledAt: '2026-01-01T00:00:00Z' });

    const bad = linked('bad.gguf');
    await record(bad, '0'.repeat(64));
    const badFindings = await doctor({ modelPath: bad, probe: false, facts: here });
    const badRecord = byId(badFindings, 'model.record')!;
    expect(badRecord).toMatchObject({ status: 'fail', title: 'the model file does not match its SHA-256' });
    expect(badRecord.detail).toContain(sha256);
    expect(badRecord.fix).toBe(`download it again: rm ${bad} && hermes3 pull ${ref}`);
    // the header check passes: the file is whole, only its content differs
    expect(byId(badFindings, 'model.file')?.status).toBe('ok');

    const good = linked('good.gguf');
    await record(good, sha256);
    const goodRecord = byId(await doctor({ modelPath: good, probe: false, facts: here }), 'model.record')!;
    expect(goodRecord).toMatchObject({ status: 'ok', title: `the model matches its pull record (${ref})` });
    expect(goodRecord.detail).toMatch(/SHA-256 matches \(hashed in \d+\.\d s\)/);
    expect(goodRecord.data?.hashSeconds).toBeGreaterThanOrEqual(0);

    const short = linked('short.gguf');
    await record(short, sha256, size + 10);
    expect(byId(await doctor({ modelPath: short, probe: false, facts: here }), 'model.record')).toMatchObject({ status: 'fail', title: 'the model file is shorter than when it was pulled' });
  });
});

describe('doctor: the chat format', () => {
  const llama3 =
    "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

  it('warns about a Llama 3 template, naming what it carries, with the fix', async () => {
    const path = join(dir, 'llama3-template.gguf');
    await writeSyntheticModel({ path, shape: 'tiny', seed: 3, chatTemplate: llama3 });
    const findings = await doctor({ modelPath: path, probe: false, facts: here });
    const t = byId(findings, 'chat.template')!;
    expect(t).toMatchObject({ status: 'warn', title: 'the chat template is not ChatML' });
    expect(t.detail).toContain("carries Llama 3's header format (<|start_header_id|>");
    expect(t.fix).toContain("chatFormat: 'chatml'");
    expect(t.fix).toContain('gibberish');
    expect(t.fix).toContain('llama-server --chat-template chatml');
    // the vocabulary is still Hermes's
    expect(byId(findings, 'chat.tokens')?.status).toBe('ok');
  });

  it('names other formats, a missing template, and a vocabulary without ChatML tokens', () => {
    expect(templateFormat('[INST] {{ x }} [/INST]')).toContain('[INST]');
    expect(templateFormat('<start_of_turn>user')).toContain('Gemma');
    expect(templateFormat('plain {{ x }}')).toContain('an unrecognised format');
    expect(checkChatTemplate({ metadata: new Map() })).toMatchObject({ status: 'warn', title: 'the model has no chat template', fix: expect.stringContaining("chatFormat: 'chatml'") });
    const vocab = (tokens: string[], types: number[]) =>
      new Map([
        ['tokenizer.ggml.tokens', { type: 8, value: { type: 8, values: tokens } }],
        ['tokenizer.ggml.token_type', { type: 8, value: { type: 5, values: types } }],
      ]) as never;
    expect(checkChatTokens({ metadata: vocab(['a', '<|im_start|>', '<|im_end|>'], [1, 3, 3]) })).toMatchObject({ status: 'ok', detail: 'single special tokens: <|im_start|> 1, <|im_end|> 2' });
    const plain = checkChatTokens({ metadata: vocab(['a', '<|im_start|>'], [1, 1]) });
    expect(plain).toMatchObject({ status: 'warn', title: 'the vocabulary lacks ChatML tokens' });
    expect(plain.detail).toContain('<|im_start|> is token 1 but of type normal');
    expect(plain.detail).toContain('<|im_end|> is not in the vocabulary');
  });
});

describe('doctor: memory fit', () => {
  // a machine with 2 GiB free: the tiny model fits, a 16M-token context does not
  const small = (): MachineFacts => {
    if (!here.addon.loaded) return { ...here, memory: { totalBytes: 4 * GiB, availableBytes: 2 * GiB } };
    return { ...here, addon: { ...here.addon, backends: { ...here.addon.backends, devices: [cpuDevice(2 * GiB, 4 * GiB)] } } };
  };

  it('fails a context that does not fit, naming one that does', async () => {
    const findings = await doctor({ modelPath: FIXTURES.q8, nCtx: 16 * 1024 * 1024, facts: small() });
    const fit = byId(findings, 'fit')!;
    expect(fit).toMatchObject({ status: 'fail', title: 'does not fit: 16777216-token context' });
    expect(fit.detail).toContain("beyond the model's training context (131072)");
    const ctx = Number(/--ctx (\d+) \(the longest context that fits/.exec(fit.fix!)?.[1]);
    expect(ctx).toBeGreaterThanOrEqual(4096);
    expect(byId(findings, 'speed')).toMatchObject({ status: 'info', detail: expect.stringContaining('fit failed') });
    const again = await doctor({ modelPath: FIXTURES.q8, nCtx: ctx, probe: false, facts: small() });
    expect(byId(again, 'fit')?.status).toBe('ok');
  });

  it('rejects bad options with the usual message', async () => {
    await expect(doctor({ nCtx: 1.5 })).rejects.toThrow('Invalid option nCtx for doctor: expected an integer between 16 and 16777216, received 1.5 (number)');
    await expect(doctor({ probe: 'yes' } as never)).rejects.toThrow('Invalid option probe for doctor');
  });
});

describe('doctor: the speed probe', () => {
  it('generates for a bounded time and reports tokens/s against the bandwidth bound', async () => {
    const started = performance.now();
    const findings = await doctor({ modelPath: FIXTURES.q8, probe: { seconds: 2, maxTokens: 32, bandwidthBytes: 32 * 2 ** 20 }, facts: here });
    expect(performance.now() - started).toBeLessThan(15_000);
    const speed = byId(findings, 'speed')!;
    expect(speed.status).toBe('ok'); // the tiny model is too small to judge by bandwidth
    expect(speed.data).toMatchObject({ generatedTokens: expect.any(Number), tokensPerSecond: expect.any(Number), boundTokensPerSecond: expect.any(Number) });
    expect(speed.data!.generatedTokens).toBeGreaterThan(0);
    expect(speed.data!.generatedTokens).toBeLessThanOrEqual(32);
    expect(speed.data!.tokensPerSecond).toBeGreaterThan(0);
    expect(speed.detail).toMatch(/^\d+\.\d tokens\/s over \d+ tokens/);
    expect(speed.detail).toContain('a single-threaded copy underestimates');
  });
});
