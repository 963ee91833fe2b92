/**
 * Option validation: one zod schema per public call, and one message shape for every failure:
 * "Invalid option nCtx for createContext: expected an integer >= 16, received 'abc' (string)".
 */
import { z } from 'zod';
import { OptionsError } from '../errors.js';

/** A value as error messages show it: `'abc' (string)`, `42 (number)`, `an array of 3`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string') return `'${value.length > 40 ? value.slice(0, 40) + '…' : value}' (string)`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${String(value)} (${typeof value})`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'function') return 'a function';
  return `an object`;
}

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let v: unknown = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** Parses `value` with `schema` or throws an OptionsError naming the option, what was expected and what came. */
export function parseOptions<S extends z.ZodType>(schema: S, value: unknown, call: string): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys: string[] }).keys;
    const where = path ? ` in ${path}` : '';
    throw new OptionsError(`Unknown option${keys.length > 1 ? 's' : ''} ${keys.join(', ')}${where} for ${call}; check the spelling (options are camelCase)`);
  }
  const received = describeValue(valueAt(value, issue.path));
  const name = path ? `option ${path}` : 'options';
  throw new OptionsError(`Invalid ${name} for ${call}: ${issue.message}, received ${received}`);
}

/** zod helpers that carry readable messages. */
export const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.number({ error: `expected an integer between ${min} and ${max}` })
    .int({ error: `expected an integer between ${min} and ${max}` })
    .min(min, { error: `expected an integer between ${min} and ${max}` })
    .max(max, { error: `expected an integer between ${min} and ${max}` });

export const num = (min: number, max: number) =>
  z.number({ error: `expected a number between ${min} and ${max}` })
    .min(min, { error: `expected a number between ${min} and ${max}` })
    .max(max, { error: `expected a number between ${min} and ${max}` })
    .refine(Number.isFinite, { error: `expected a finite number between ${min} and ${max}` });

export const bool = () => z.boolean({ error: 'expected true or false' });

export const abortSignal = () =>
  z.custom<AbortSignal>((v) => v instanceof AbortSignal, { error: 'expected an AbortSignal' });
