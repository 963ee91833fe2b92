#!/usr/bin/env node
// Writes docs/hermes3-config.schema.json, the JSON Schema of `hermes3 serve --config FILE`,
// from the zod schema in src/server/config.ts (through the compiled dist/, so run
// `npm run compile` first; `npm run schema:config` does both). `--check` only compares and
// exits 1 when the committed file is out of date. test/service/config-schema.test.ts checks it too.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'server', 'config.js');
const target = join(root, 'docs', 'hermes3-config.schema.json');

if (!existsSync(compiled)) {
  process.stderr.write(`${compiled} is missing: run npm run compile first\n`);
  process.exit(1);
}
const { serveConfigJsonSchemaText } = await import(pathToFileURL(compiled).href);
const text = serveConfigJsonSchemaText();
if (process.argv.includes('--check')) {
  const current = existsSync(target) ? readFileSync(target, 'utf8') : '';
  if (current !== text) {
    process.stderr.write(`${target} is out of date: run npm run schema:config\n`);
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
  process.stderr.write(`wrote ${target}\n`);
}
