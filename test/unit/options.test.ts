import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AbortError, BusyError, ContextOverflowError, DisposedError, Hermes3Error, ModelLoadError, NativeError, OptionsError, fromNative } from '../../src/errors.js';
import { contextSchema, generateSchema, loadModelSchema } from '../../src/engine/options.js';
import { int, parseOptions } from '../../src/engine/validate.js';
import { formatChat } from '../../src/chat/format.js';

describe('option validation', () => {
  it('fills documented defaults', () => {
    expect(parseOptions(contextSchema, {}, 'createContext')).toMatchObject({
      nBatch: 512, nSeqMax: 1, flashAttention: 'auto', kvCacheType: 'f16', kvUnified: true,
    });
    expect(parseOptions(generateSchema, {}, 'generate')).toMatchObject({
      maxTokens: 256, temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, stop: [], parseSpecial: true, renderSpecial: false,
    });
    expect(parseOptions(loadModelSchema, { modelPath: 'm.gguf' }, 'loadModel')).toMatchObject({ nGpuLayers: 'auto', useMmap: true });
  });

  it('names the option, the expectation and what was received', () => {
    const s = z.strictObject({ n: int(1, 10), nested: z.strictObject({ k: z.string({ error: 'expected a string' }) }).optional() });
    expect(() => parseOptions(s, { n: 0 }, 'f')).toThrow('Invalid option n for f: expected an integer between 1 and 10, received 0 (number)');
    expect(() => parseOptions(s, { n: 'x' }, 'f')).toThrow("Invalid option n for f: expected an integer between 1 and 10, received 'x' (string)");
    expect(() => parseOptions(s, { n: 1.5 }, 'f')).toThrow('received 1.5 (number)');
    expect(() => parseOptions(s, { n: 1, nested: { k: 3 } }, 'f')).toThrow('Invalid option nested.k for f: expected a string, received 3 (number)');
    expect(() => parseOptions(s, { n: 1, m: 2 }, 'f')).toThrow('Unknown option m for f; check the spelling (options are camelCase)');
    expect(() => parseOptions(s, { n: 1, m: 2 }, 'f')).toThrow(OptionsError);
  });

  it('rejects sampler values out of range', () => {
    expect(() => parseOptions(generateSchema, { temperature: -1 }, 'generate')).toThrow('Invalid option temperature for generate: expected a number between 0 and 100, received -1 (number)');
    expect(() => parseOptions(generateSchema, { mirostat: 3 }, 'generate')).toThrow('Invalid option mirostat for generate: expected 0, 1 or 2');
    expect(() => parseOptions(generateSchema, { stop: 'x' }, 'generate')).toThrow('Invalid option stop for generate: expected an array of strings');
    expect(() => parseOptions(generateSchema, { logitBias: { abc: 1 } }, 'generate')).toThrow(/logitBias/);
    expect(() => parseOptions(generateSchema, { signal: {} }, 'generate')).toThrow('Invalid option signal for generate: expected an AbortSignal');
  });
});

describe('errors', () => {
  it('maps native codes to typed classes with stable codes', () => {
    const native = (code: string) => Object.assign(new Error('boom'), { code });
    expect(fromNative(native('ERR_MODEL_LOAD'))).toBeInstanceOf(ModelLoadError);
    expect(fromNative(native('ERR_CONTEXT_FULL'))).toBeInstanceOf(ContextOverflowError);
    expect(fromNative(native('ABORT_ERR'))).toBeInstanceOf(AbortError);
    expect(fromNative(native('ERR_DISPOSED'))).toBeInstanceOf(DisposedError);
    expect(fromNative(native('ERR_BUSY'))).toBeInstanceOf(BusyError);
    expect(fromNative(native('ERR_INVALID_GRAMMAR'))).toBeInstanceOf(OptionsError);
    const other = fromNative(native('ERR_DECODE'), 'while generating');
    expect(other).toBeInstanceOf(NativeError);
    expect(other.code).toBe('ERR_DECODE');
    expect(other.message).toBe('while generating: boom');
    for (const e of [new OptionsError('x'), new AbortError(), new BusyError('x')]) {
      expect(e).toBeInstanceOf(Hermes3Error);
      expect(e.name).toBe(e.constructor.name);
    }
  });
});

describe('formatChat', () => {
  it('renders ChatML turns and the generation prompt', () => {
    expect(formatChat([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }])).toMatchInlineSnapshot(`
      "<|im_start|>system
      Be brief.<|im_end|>
      <|im_start|>user
      Hi<|im_end|>
      <|im_start|>assistant
      "
    `);
    expect(formatChat([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: false })).toBe('<|im_start|>user\nHi<|im_end|>\n');
  });
});
