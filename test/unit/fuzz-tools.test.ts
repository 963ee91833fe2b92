// Property-based fuzzing of the tool-call readers and of schemaToGrammar.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OptionsError } from '../../src/errors.js';
import { ToolCallDeltaStream, type ToolDeltaEvent } from '../../src/tools/deltas.js';
import { schemaToGrammar } from '../../src/tools/grammar.js';
import { parseToolCalls, ToolCallStream, type ParsedToolCall } from '../../src/tools/parse.js';
import { schema } from '../schema-arbitrary.js';

// Text near the tool-call format: tags, fragments of tags, JSON punctuation, names and quotes.
const piece = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('<tool_call>', '</tool_call>', '<think>', '</think>', '<scratch_pad>', '</scratch_pad>', '<tool', '</tool_', '_call>', '<', '>', '```json\n', '```', '\n') },
  { weight: 4, arbitrary: fc.constantFrom('{', '}', '[', ']', '"', "'", ':', ',', '\\', ' ', '"name"', '"arguments"', "'name'", '"parameters"', '"function"', 'None', 'True', 'null', '1.5', '"get_weather"', '"city": "Paris"') },
  { weight: 2, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 4 }) },
  {
    weight: 2,
    arbitrary: fc
      .record({ name: fc.string({ minLength: 1, maxLength: 6 }), args: fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }) })
      .map(({ name, args }) => `<tool_call>\n${JSON.stringify({ name, arguments: args })}\n</tool_call>`),
  },
);
const replyText = fc.array(piece, { maxLength: 24 }).map((p) => p.join(''));

/** `text` cut into pieces at random points. */
const chunked = replyText.chain((text) =>
  fc.uniqueArray(fc.nat({ max: text.length }), { maxLength: 12 }).map((cuts) => {
    const points = [0, ...cuts.sort((a, b) => a - b), text.length];
    return { text, chunks: points.slice(1).map((p, i) => text.slice(points[i], p)) };
  }),
);

function streamCalls(chunks: string[]): { calls: ParsedToolCall[]; text: string } {
  const s = new ToolCallStream();
  const events = [...chunks.flatMap((c) => s.push(c)), ...s.end()];
  return {
    calls: events.flatMap((e) => (e.type === 'tool_call' ? [e.call] : [])),
    text: events.map((e) => (e.type === 'text' ? e.text : '')).join(''),
  };
}

function deltaCalls(chunks: string[]): { calls: Array<{ index: number; call: ParsedToolCall; arguments: string; streamed: string; name: string }>; text: string } {
  const s = new ToolCallDeltaStream();
  const events: ToolDeltaEvent[] = [...chunks.flatMap((c) => s.push(c)), ...s.end()];
  const names = new Map<number, string>();
  const args = new Map<number, string>();
  const calls = [];
  let text = '';
  for (const e of events) {
    if (e.type === 'text') text += e.text;
    else if (e.type === 'call_start') names.set(e.index, e.name);
    else if (e.type === 'call_args') args.set(e.index, (args.get(e.index) ?? '') + e.text);
    else calls.push({ index: e.index, call: e.call, arguments: e.arguments, streamed: args.get(e.index) ?? '', name: names.get(e.index) ?? '' });
  }
  return { calls, text };
}

describe('tool-call readers on arbitrary text', () => {
  it('parseToolCalls never throws and returns content and calls', () => {
    fc.assert(
      fc.property(fc.oneof(replyText, fc.string({ maxLength: 200 })), (text) => {
        const r = parseToolCalls(text);
        expect(typeof r.content).toBe('string');
        expect(Array.isArray(r.toolCalls)).toBe(true);
        for (const c of r.toolCalls) {
          expect(typeof c.name).toBe('string');
          expect(c.name.length).toBeGreaterThan(0);
          expect(typeof c.arguments).toBe('object');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('ToolCallStream gives the same calls and text however the text is chunked', () => {
    fc.assert(
      fc.property(chunked, ({ text, chunks }) => {
        expect(streamCalls(chunks)).toEqual(streamCalls([text]));
        expect(streamCalls([text]).calls).toEqual(parseToolCalls(text).toolCalls);
      }),
      { numRuns: 500 },
    );
  });

  it('ToolCallDeltaStream gives the same calls, deltas and text however the text is chunked', () => {
    fc.assert(
      fc.property(chunked, ({ text, chunks }) => {
        const whole = deltaCalls([text]);
        expect(deltaCalls(chunks)).toEqual(whole);
        for (const c of whole.calls) {
          // the deltas sent, joined, are the call's arguments; the name announced is the call's
          expect(c.streamed).toBe(c.arguments);
          expect(c.name).toBe(c.call.name);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('schemaToGrammar on arbitrary schemas', () => {
  it('returns a grammar or throws OptionsError, quickly', () => {
    const tally = { grammar: 0, refused: 0 };
    fc.assert(
      fc.property(schema, (s) => {
        const t0 = performance.now();
        try {
          const g = schemaToGrammar(s as Parameters<typeof schemaToGrammar>[0]);
          expect(g).toMatch(/^root ::= /);
          tally.grammar++;
        } catch (err) {
          if (!(err instanceof OptionsError)) throw new Error(`schemaToGrammar threw ${(err as Error).name}: ${(err as Error).message}`, { cause: err });
          tally.refused++;
        }
        expect(performance.now() - t0).toBeLessThan(200);
      }),
      { numRuns: 400 },
    );
    expect(tally.grammar).toBeGreaterThan(40);
  });
});

describe('schemaToGrammar: cases the fuzzing found', () => {
  const refused = (s: unknown, message: RegExp) => expect(() => schemaToGrammar(s as Parameters<typeof schemaToGrammar>[0])).toThrow(expect.objectContaining({ name: 'OptionsError', message: expect.stringMatching(message) }));

  it('an integer range past 2^53 is left to validation instead of looping forever', () => {
    expect(schemaToGrammar({ type: 'integer', minimum: 1e17, maximum: 1e17 })).toContain('integer ::=');
    expect(schemaToGrammar({ type: 'integer', minimum: 2 ** 53 - 2, maximum: 2 ** 53 - 1 })).toContain('"9007199254740991"');
  });

  it('a schema that is not an object or a boolean is an OptionsError, not a TypeError', () => {
    refused(null, /is null; expected an object or a boolean/);
    refused(0, /is a number/);
    refused({ type: 'object', properties: { a: 'string' } }, /value-root-a is a string/);
    refused({ type: 'array', items: null }, /is null/);
    refused({ type: 'object', properties: 'abc' }, /properties at value-root is not an object/);
  });

  it('schemas that admit no value or use an unknown type are OptionsErrors', () => {
    refused(false, /admits no value/);
    refused({ enum: [] }, /enum .* is empty/);
    refused({ anyOf: [] }, /anyOf\/oneOf .* is empty/);
    refused({ type: [] }, /type list .* is empty/);
    refused({ type: 'date' }, /unsupported type "date"/);
    refused({ type: 'integer', minimum: 3, maximum: 2 }, /integer range .* is empty/);
    refused({ $ref: '#/$defs/constructor' }, /unresolved \$ref/);
    refused({ type: 'array', items: false, minItems: 1 }, /items: false and minItems 1/);
  });

  it('length and item bounds must be non-negative integers, min no more than max', () => {
    refused({ type: 'string', minLength: -1 }, /minLength at value-root is -1; expected a non-negative integer/);
    refused({ type: 'string', maxLength: 1.5 }, /maxLength .* is 1.5/);
    refused({ type: 'array', minItems: 3, maxItems: 2 }, /maxItems 2 at value-root is less than minItems 3/);
    refused({ type: 'string', minLength: '2' }, /minLength .* is "2"/);
  });

  it('bounds above MAX_REPEAT are left to validation (llama.cpp writes a rule per repeat)', () => {
    expect(schemaToGrammar({ type: 'string', maxLength: 1e9 })).toBe(schemaToGrammar({ type: 'string' }));
    expect(schemaToGrammar({ type: 'string', minLength: 5000 })).toContain('char{1000,}');
    expect(schemaToGrammar({ type: 'array', items: false })).toContain('"[" space "]" space');
  });

  it('$defs whose names differ only in punctuation get rules of their own', () => {
    const g = schemaToGrammar({
      type: 'object',
      properties: { x: { $ref: '#/$defs/a b' }, y: { $ref: '#/$defs/a-b' } },
      required: ['x', 'y'],
      $defs: { 'a b': { type: 'string' }, 'a-b': { type: 'integer' } },
    });
    const refs = [...g.matchAll(/^(ref-a-b\S*) ::= (.*)$/gm)].map((m) => [m[1], m[2]]);
    expect(refs).toEqual([['ref-a-b', 'string'], ['ref-a-b-1', 'integer']]);
  });
});

describe('schemaToGrammar: left recursion (llama.cpp rejects such grammars)', () => {
  const refused = (s: unknown) => expect(() => schemaToGrammar(s as Parameters<typeof schemaToGrammar>[0])).toThrow(expect.objectContaining({ name: 'OptionsError', message: expect.stringMatching(/left recursion/) }));

  it('refuses a schema that is only a reference to itself, directly or through a union', () => {
    refused({ $ref: '#' });
    refused({ $ref: '#/$defs/a', $defs: { a: { $ref: '#/$defs/b' }, b: { $ref: '#/$defs/a' } } });
    refused({ $ref: '#/$defs/a', $defs: { a: { anyOf: [{ $ref: '#/$defs/a' }, { type: 'string' }] } } });
    refused({ type: 'object', properties: { x: { $ref: '#/$defs/a' } }, $defs: { a: { type: ['null', 'string'], anyOf: [{ type: 'null' }, { $ref: '#/$defs/a' }] } } });
  });

  it('keeps recursion that writes text first (trees, linked lists)', () => {
    const tree = { type: 'object', properties: { value: { type: 'integer' }, children: { type: 'array', items: { $ref: '#' } } }, required: ['value'] };
    expect(schemaToGrammar(tree)).toMatch(/ref-root ::= /);
    const list = { $ref: '#/$defs/node', $defs: { node: { anyOf: [{ type: 'null' }, { type: 'object', properties: { next: { $ref: '#/$defs/node' } } }] } } };
    expect(schemaToGrammar(list)).toMatch(/ref-node ::= /);
  });
});
