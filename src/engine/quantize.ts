import { access } from 'node:fs/promises';
import { z } from 'zod';
import { fromNative, GgufFormatError } from '../errors.js';
import { readGgufHeader } from '../gguf/reader.js';
import { FILE_TYPES, type FileTypeName } from '../gguf/types.js';
import { getAddon } from '../native/index.js';
import { physicalCores } from './threads.js';
import { int, parseOptions } from './validate.js';

const quantizeSchema = z.strictObject({
  input: z.string({ error: 'expected the path of a GGUF file' }).min(1),
  output: z.string({ error: 'expected an output path' }).min(1),
  type: z.enum(Object.keys(FILE_TYPES) as [FileTypeName, ...FileTypeName[]], { error: `expected one of ${Object.keys(FILE_TYPES).join(', ')}` }),
  threads: int(1, 1024).optional(),
});
export type QuantizeOptions = z.input<typeof quantizeSchema>;

/** Quantizes a GGUF model with llama.cpp's quantizer (off the main thread). */
export async function quantize(options: QuantizeOptions): Promise<void> {
  const opts = parseOptions(quantizeSchema, options, 'quantize');
  await readGgufHeader(opts.input);
  try {
    await getAddon().quantize(opts.input, opts.output, FILE_TYPES[opts.type], opts.threads ?? physicalCores());
  } catch (err) {
    throw fromNative(err, `cannot quantize ${opts.input} to ${opts.type}`);
  }
  await access(opts.output).catch(() => {
    throw new GgufFormatError(`quantize reported success but wrote no file at ${opts.output}`, { path: opts.output });
  });
}
