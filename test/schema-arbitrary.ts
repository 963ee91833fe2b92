/** fast-check arbitraries for JSON-Schema-like objects (test/unit/fuzz-tools, test/model/fuzz-grammar). */
import fc from 'fast-check';

// JSON-Schema-like objects, well-formed or not: the keywords schemaToGrammar reads, with values
// of the right kind most of the time and of any JSON kind some of the time.
const defNames = ['a', 'b', 'a b', 'a-b', 'x/y'];
const anyJson = fc.jsonValue({ maxDepth: 2 });
const bound = fc.oneof(fc.integer({ min: -3, max: 40 }), fc.constantFrom(0, 1, 1e17, -1e17, 2 ** 53, 1.5, -0.5, 1e9, Number.MAX_SAFE_INTEGER), anyJson);
export const { schema } = fc.letrec<{ schema: unknown; node: Record<string, unknown> }>((tie) => ({
  // leaves first: past maxDepth, oneof takes its first choice
  schema: fc.oneof(
    { maxDepth: 3, depthIdentifier: 'schema', withCrossShrink: true },
    { weight: 1, arbitrary: fc.oneof(fc.constantFrom(true, false, {}), fc.constantFrom('string', 'integer', 'number', 'boolean', 'null').map((type) => ({ type })), anyJson) },
    { weight: 6, arbitrary: tie('node') },
  ),
  node: fc.record(
    {
      type: fc.oneof(
        fc.constantFrom('string', 'integer', 'number', 'boolean', 'null', 'array', 'object'),
        fc.subarray(['string', 'integer', 'number', 'boolean', 'null', 'array', 'object']),
        anyJson,
      ),
      properties: fc.dictionary(fc.string({ maxLength: 5 }), tie('schema'), { maxKeys: 4 }),
      required: fc.oneof(fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }), anyJson),
      additionalProperties: fc.oneof(fc.boolean(), tie('schema')),
      items: tie('schema'),
      prefixItems: fc.array(tie('schema'), { maxLength: 3 }),
      minItems: bound,
      maxItems: bound,
      minLength: bound,
      maxLength: bound,
      minimum: bound,
      maximum: bound,
      exclusiveMinimum: bound,
      exclusiveMaximum: bound,
      enum: fc.oneof(fc.array(anyJson, { maxLength: 4 }), anyJson),
      const: anyJson,
      anyOf: fc.array(tie('schema'), { maxLength: 3 }),
      oneOf: fc.array(tie('schema'), { maxLength: 3 }),
      allOf: fc.array(tie('schema'), { maxLength: 2 }),
      $ref: fc.oneof(fc.constantFrom('#', ...defNames.map((n) => `#/$defs/${n}`), '#/definitions/a', '#/$defs/missing'), anyJson),
      $defs: fc.dictionary(fc.constantFrom(...defNames), tie('schema'), { maxKeys: 3 }),
      description: fc.string({ maxLength: 5 }),
    },
    { requiredKeys: [] },
  ),
}));
