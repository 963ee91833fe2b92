import { copyFileSync, closeSync, ftruncateSync, mkdtempSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GgufFormatError, inspectGguf, loadModel } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';

describe('inspectGguf', () => {
  it('agrees with llama.cpp on what the file holds', async () => {
    const info = await inspectGguf(FIXTURES.q4km);
    const model = await loadModel({ modelPath: FIXTURES.q4km });
    expect(info.architecture).toBe(model.info.architecture);
    expect(info.nParams).toBe(model.info.nParams);
    expect(info.weightsBytes).toBe(model.info.sizeBytes);
    expect(info.fileType).toBe('Q4_K_M');
    expect(info.shape).toMatchObject({ nLayer: model.info.nLayer, nEmbd: model.info.nEmbd, nHead: model.info.nHead, nHeadKv: model.info.nHeadKv, nVocab: model.info.nVocab, nCtxTrain: model.info.nCtxTrain, headDim: 64 });
    expect(info.chatTemplate).toBe(model.info.chatTemplate);
    expect(info.specialTokens).toMatchObject({ bos: model.info.specialTokens.bos, eos: model.info.specialTokens.eos, addBos: true });
    expect(Object.values(info.tensorTypes).reduce((n, t) => n + t.count, 0)).toBe(info.tensors.length);
    await model.dispose();
  });

  it('says where a truncated file ends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hermes3-inspect-'));
    const path = join(dir, 'cut.gguf');
    copyFileSync(FIXTURES.f16, path);
    const fd = openSync(path, 'r+');
    ftruncateSync(fd, 2000);
    closeSync(fd);
    const err = await inspectGguf(path).catch((e) => e);
    expect(err).toBeInstanceOf(GgufFormatError);
    expect(err.message).toMatch(/cut\.gguf: file ends while reading .*the file is truncated\) at byte \d+/);
  });
});
