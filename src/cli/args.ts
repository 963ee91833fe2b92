import { parseArgs, type ParseArgsConfig } from 'node:util';
import { OptionsError } from '../errors.js';

/** parseArgs with errors as OptionsError, so the CLI reports them as usage errors. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T): { values: Record<string, string | boolean | undefined> & { [K in keyof T]: T[K]['type'] extends 'boolean' ? boolean : string | undefined }; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as never;
  } catch (err) {
    throw new OptionsError((err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
}

export function intArg(value: string | undefined, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new OptionsError(`Invalid --${name}: expected an integer >= ${min}, received '${value}'`);
  return n;
}

export function numArg(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new OptionsError(`Invalid --${name}: expected a number, received '${value}'`);
  return n;
}
