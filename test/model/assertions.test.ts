/**
 * llama.cpp asserts (GGML_ASSERT) on some invariants of a model file instead of checking them; the
 * addon turns ggml's aborts into errors, so a file that trips one fails to load and the process
 * stays up. Found by mutation: a vocabulary with a duplicate token.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelLoadError, loadModel } from '../../src/index.js';
import { FIXTURES } from '../fixtures.js';

describe('a model file that trips an assertion of llama.cpp', () => {
  it('fails to load with a ModelLoadError, and the process goes on to load a good file', async () => {
    const buf = readFileSync(FIXTURES.q8);
    // tokens 3 and 4 of the vocabulary are "!" and '"' (each a 1-byte string): make both "!"
    const at = buf.indexOf(Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0x21, 1, 0, 0, 0, 0, 0, 0, 0, 0x22]));
    expect(at).toBeGreaterThan(0);
    buf[at + 17] = 0x21;
    const path = join(mkdtempSync(join(tmpdir(), 'hermes3-assert-')), 'duplicate-token.gguf');
    writeFileSync(path, buf);
    const err = await loadModel({ modelPath: path }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as Error).message).toContain('id_to_token.size() == token_to_id.size()');
    const good = await loadModel({ modelPath: FIXTURES.q8 });
    expect(good.info.nVocab).toBe(128256);
    await good.dispose();
  });
});
