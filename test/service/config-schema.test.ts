/** docs/hermes3-config.schema.json is what scripts/config-schema.mjs writes from the zod schema today. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serveConfigJsonSchemaText } from '../../src/server/config.js';
import { root } from '../fixtures.js';

describe('docs/hermes3-config.schema.json', () => {
  it('is up to date (npm run schema:config writes it)', () => {
    const committed = readFileSync(join(root, 'docs', 'hermes3-config.schema.json'), 'utf8');
    expect(committed, 'out of date: run npm run schema:config').toBe(serveConfigJsonSchemaText());
  });

  it('is the text the script writes', () => {
    // the script writes serveConfigJsonSchemaText() of the compiled module, nothing else
    const script = readFileSync(join(root, 'scripts', 'config-schema.mjs'), 'utf8');
    expect(script).toMatch(/const text = serveConfigJsonSchemaText\(\);/);
    expect(script).toMatch(/writeFileSync\(target, text\)/);
  });

  it('describes every key, rejects others, and requires only the model', () => {
    const schema = JSON.parse(serveConfigJsonSchemaText()) as { properties: Record<string, { description?: string }>; required: string[]; additionalProperties: boolean };
    expect(schema.required).toEqual(['model']);
    expect(schema.additionalProperties).toBe(false);
    for (const [key, value] of Object.entries(schema.properties)) expect(value.description, key).toBeTruthy();
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['model', 'host', 'port', 'apiKeyEnv', 'systemPrompt', 'sampling', 'graceMs']));
  });
});
