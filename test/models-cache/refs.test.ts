import { describe, expect, it } from 'vitest';
import { ModelNotFoundError, OptionsError } from '../../src/errors.js';
import { availableQuants, isModelRef, localPath, parseRef, pickFiles, quantOf, refKey, splitInfo, type HfRef, type RemoteFile } from '../../src/models/refs.js';

const hf = (text: string) => parseRef(text) as HfRef;
const files = (...paths: string[]): RemoteFile[] => paths.map((path) => ({ path, size: 1 }));
const pick = (ref: string, listing: RemoteFile[]) => pickFiles(hf(ref), listing).map((f) => f.path);

describe('parseRef', () => {
  it('reads the hf: forms, the revision and the Ollama spelling', () => {
    expect(hf('hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q4_K_M')).toMatchObject({ owner: 'NousResearch', repo: 'Hermes-3-Llama-3.1-8B-GGUF', quant: 'Q4_K_M', revision: 'main', file: undefined });
    expect(hf('hf:o/r/sub/x.Q8_0.gguf')).toMatchObject({ file: 'sub/x.Q8_0.gguf', quant: undefined });
    expect(hf('hf:o/r')).toMatchObject({ owner: 'o', repo: 'r', quant: undefined, file: undefined });
    expect(hf('hf:o/r:q4_k_m@v1.0')).toMatchObject({ quant: 'q4_k_m', revision: 'v1.0' });
    expect(hf('hf:o/r@v1.0:Q4_K_M')).toMatchObject({ quant: 'Q4_K_M', revision: 'v1.0' });
    expect(hf('hf:o/r:Q4_K_M@refs/pr/1')).toMatchObject({ quant: 'Q4_K_M', revision: 'refs/pr/1' });
    expect(hf('hf:o/r/x.gguf@0123abc')).toMatchObject({ file: 'x.gguf', revision: '0123abc' });
    expect(hf('hf.co/o/r:Q8_0')).toMatchObject({ owner: 'o', repo: 'r', quant: 'Q8_0' });
  });

  it('reads URLs, with an optional #sha256', () => {
    const sha = 'a'.repeat(64);
    expect(parseRef(`https://example.com/m/x.gguf#sha256=${sha}`)).toMatchObject({ kind: 'url', sha256: sha });
    expect(parseRef('http://127.0.0.1:8080/x.gguf')).toMatchObject({ kind: 'url' });
  });

  it('refuses malformed references with the accepted forms', () => {
    const expected = 'Expected a model reference (hf:OWNER/REPO[:QUANT | /PATH.gguf][@REVISION], or an https:// URL to a .gguf file)';
    expect(() => parseRef('hf:onlyowner')).toThrow(new OptionsError(`${expected} but received 'hf:onlyowner': expected OWNER/REPO after hf:`));
    expect(() => parseRef('hf:o/r/README.md')).toThrow(/expected a path to a \.gguf file after OWNER\/REPO/);
    expect(() => parseRef('hf:o/r/../x.gguf')).toThrow(/empty, \. or \.\. segment/);
    expect(() => parseRef('hf:o/r@v1/x.gguf')).toThrow(/put @REVISION at the end/);
    expect(() => parseRef('http://example.com/x.gguf')).toThrow(/plain http:\/\/ is only accepted for the loopback host/);
    expect(() => parseRef('https://example.com/x.bin')).toThrow(/does not name a \.gguf file/);
    expect(() => parseRef('ollama:llama3')).toThrow(OptionsError);
  });

  it('tells references from paths, and keys equal names alike', () => {
    expect(isModelRef('hf:o/r')).toBe(true);
    expect(isModelRef('./models/x.gguf')).toBe(false);
    expect(refKey(parseRef('hf:O/R:q4_k_m'))).toBe(refKey(parseRef('hf:o/r:Q4_K_M@main')));
    expect(refKey(parseRef('hf:o/r:Q4_K_M@v1'))).not.toBe(refKey(parseRef('hf:o/r:Q4_K_M')));
  });
});

describe('quantizations and splits', () => {
  it('finds the quantization in the name or the folder', () => {
    expect(quantOf('Hermes-3-Llama-3.1-8B.Q4_K_M.gguf')).toBe('Q4_K_M');
    expect(quantOf('Hermes-3-Llama-3.1-8B-q6_k.gguf')).toBe('Q6_K');
    expect(quantOf('Q5_K_M/model-00001-of-00002.gguf')).toBe('Q5_K_M');
    expect(quantOf('x-IQ4_XS.gguf')).toBe('IQ4_XS');
    expect(quantOf('x-bf16.gguf')).toBe('BF16');
    expect(quantOf('Llama-3.1-8B.gguf')).toBeUndefined();
    expect(splitInfo('a/b-00002-of-00003.gguf')).toEqual({ prefix: 'a/b', index: 2, count: 3 });
    expect(splitInfo('b.gguf')).toBeUndefined();
  });

  it('lists what a repository offers, largest first', () => {
    expect(availableQuants(files('m.Q4_K_M.gguf', 'm.Q8_0.gguf', 'm.Q6_K.gguf', 'mmproj-m-f16.gguf', 'README.md'))).toEqual(['Q8_0', 'Q6_K', 'Q4_K_M']);
  });
});

describe('pickFiles', () => {
  const repo = files('README.md', 'Hermes-3-Llama-3.1-8B.Q4_K_M.gguf', 'Hermes-3-Llama-3.1-8B.Q8_0.gguf', 'Hermes-3-Llama-3.1-8B-F16.gguf');

  it('picks the file of a quantization, any case', () => {
    expect(pick('hf:o/r:q8_0', repo)).toEqual(['Hermes-3-Llama-3.1-8B.Q8_0.gguf']);
    expect(pick('hf:o/r:F16', repo)).toEqual(['Hermes-3-Llama-3.1-8B-F16.gguf']);
  });

  it('names the quantizations that exist when the one asked for does not', () => {
    expect(() => pick('hf:o/r:Q3_K_S', repo)).toThrow(
      new ModelNotFoundError('hf:o/r has no GGUF file for quantization Q3_K_S. It has: F16, Q8_0, Q4_K_M. Pull one of those, e.g. hf:o/r:Q4_K_M', ['F16', 'Q8_0', 'Q4_K_M']),
    );
  });

  it('takes every part of a split model, from a folder, first part first', () => {
    const listing = files('Q4_K_M/m-Q4_K_M-00002-of-00003.gguf', 'Q4_K_M/m-Q4_K_M-00001-of-00003.gguf', 'Q4_K_M/m-Q4_K_M-00003-of-00003.gguf', 'Q8_0/m-Q8_0.gguf');
    expect(pick('hf:o/r:Q4_K_M', listing)).toEqual(['Q4_K_M/m-Q4_K_M-00001-of-00003.gguf', 'Q4_K_M/m-Q4_K_M-00002-of-00003.gguf', 'Q4_K_M/m-Q4_K_M-00003-of-00003.gguf']);
    expect(pick('hf:o/r/Q4_K_M/m-Q4_K_M-00002-of-00003.gguf', listing)[0]).toBe('Q4_K_M/m-Q4_K_M-00001-of-00003.gguf');
    expect(() => pick('hf:o/r:Q4_K_M', listing.slice(1))).toThrow(/part 2 of 3 \(Q4_K_M\/m-Q4_K_M-00002-of-00003\.gguf\) is missing/);
  });

  it('takes a named file, or lists the GGUF files', () => {
    expect(pick('hf:o/r/Hermes-3-Llama-3.1-8B.Q8_0.gguf', repo)).toEqual(['Hermes-3-Llama-3.1-8B.Q8_0.gguf']);
    expect(() => pick('hf:o/r/nope.gguf', repo)).toThrow(/has no file nope\.gguf\. Its GGUF files: Hermes-3-Llama-3\.1-8B-F16\.gguf, /);
  });

  it('takes the only GGUF of a repository, and asks for a quantization when there are several', () => {
    expect(pick('hf:o/r', files('m.Q4_K_M.gguf', 'mmproj-f16.gguf', 'README.md'))).toEqual(['m.Q4_K_M.gguf']);
    expect(() => pick('hf:o/r', repo)).toThrow(/hf:o\/r has 3 GGUF models; name one with :QUANT\. It has: F16, Q8_0, Q4_K_M/);
    expect(() => pick('hf:o/r', files('README.md'))).toThrow(/has no GGUF model files/);
  });

  it('matches tags outside the usual names between separators', () => {
    expect(pick('hf:o/r:UD-Q4_K_XL', files('m-UD-Q4_K_XL.gguf', 'm-Q4_K_M.gguf'))).toEqual(['m-UD-Q4_K_XL.gguf']);
  });

  it('lays files out by owner, repository and path, URLs by host', () => {
    expect(localPath(parseRef('hf:o/r:Q8_0'), 'sub/m.gguf')).toBe('o/r/sub/m.gguf');
    expect(localPath(parseRef('http://127.0.0.1:9/x.gguf'), 'x.gguf')).toBe('urls/127.0.0.1_9/x.gguf');
  });
});
