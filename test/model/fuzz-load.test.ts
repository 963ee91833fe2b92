// Models with corrupt metadata that the GGUF reader accepts fail to load with ModelLoadError
// (cases from scripts/fuzz-native.mjs, which mutates the first 64 KiB of a tiny model).
import { copyFileSync, mkdtempSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelLoadError } from '../../src/errors.js';
import { loadModel } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'hermes3-fuzz-load-'));

/** A copy of the q8 fixture with one metadata key renamed (same length, so the file stays valid GGUF). */
function renameKey(from: string, to: string): string {
  const path = join(dir, `${to}.gguf`);
  copyFileSync(FIXTURES.q8, path);
  const head = Buffer.alloc(64 * 1024);
  const fd = openSync(path, 'r+');
  readSync(fd, head, 0, head.length, 0);
  const at = head.indexOf(Buffer.from(from));
  if (at < 0) throw new Error(`${from} is not in the first 64 KiB of ${FIXTURES.q8}`);
  writeSync(fd, Buffer.from(to), 0, to.length, at);
  closeSync(fd);
  return path;
}

describe('loading models with corrupt metadata', () => {
  it('no general.architecture key: ModelLoadError', async () => {
    const path = renameKey('general.architecture', 'general.architecturf');
    await expect(loadModel({ modelPath: path })).rejects.toThrow(ModelLoadError);
    await expect(loadModel({ modelPath: path })).rejects.toThrow(/has no general\.architecture key/);
  });

  it('no block count: ModelLoadError before planning', async () => {
    const path = renameKey('llama.block_count', 'llama.blocj_count');
    await expect(loadModel({ modelPath: path })).rejects.toThrow(ModelLoadError);
    await expect(loadModel({ modelPath: path })).rejects.toThrow(/has tensors but no llama\.block_count key/);
  });

  it('no embedding length: llama.cpp refuses it, ModelLoadError', async () => {
    const path = renameKey('llama.embedding_length', 'llama.embedding_lengti');
    await expect(loadModel({ modelPath: path })).rejects.toThrow(ModelLoadError);
  });
});
