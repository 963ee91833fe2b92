import { describe, expect, it } from 'vitest';
import { OptionsError } from '../../src/errors.js';
import { loraArgs } from '../../src/cli/args.js';

describe('--lora FILE[:SCALE]', () => {
  it('reads a file and an optional scale after the last colon', () => {
    expect(loraArgs(undefined)).toBeUndefined();
    expect(loraArgs(['a.gguf'])).toEqual([{ path: 'a.gguf', scale: 1 }]);
    expect(loraArgs(['dir/a.gguf:0.5', 'b.gguf:-1', 'c.gguf:2e-1'])).toEqual([
      { path: 'dir/a.gguf', scale: 0.5 },
      { path: 'b.gguf', scale: -1 },
      { path: 'c.gguf', scale: 0.2 },
    ]);
    expect(loraArgs(['x:y:1.5'])).toEqual([{ path: 'x:y', scale: 1.5 }]);
    // a Windows drive letter is part of the path
    expect(loraArgs(['C:\\loras\\a.gguf'])).toEqual([{ path: 'C:\\loras\\a.gguf', scale: 1 }]);
    expect(loraArgs(['C:\\loras\\a.gguf:2'])).toEqual([{ path: 'C:\\loras\\a.gguf', scale: 2 }]);
  });

  it('refuses an empty value, a scale that is not a number or out of range', () => {
    const usage = "expected FILE or FILE:SCALE (a LoRA adapter GGUF file and a number, default 1), received";
    expect(() => loraArgs([''])).toThrow(new OptionsError(`Invalid --lora: ${usage} ''`));
    expect(() => loraArgs(['a.gguf:big'])).toThrow(new OptionsError(`Invalid --lora: the scale 'big' is not a number; ${usage} 'a.gguf:big'`));
    expect(() => loraArgs(['a.gguf:'])).toThrow(`Invalid --lora: the scale '' is not a number; ${usage} 'a.gguf:'`);
    expect(() => loraArgs(['a.gguf:-101'])).toThrow(`Invalid --lora: the scale -101 is outside -100 to 100; ${usage} 'a.gguf:-101'`);
    expect(() => loraArgs(['a.gguf:NaN'])).toThrow(OptionsError);
  });
});
