/** Paths of the synthetic models and programs the model and e2e tests share. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
export const fixtureDir = join(root, '.cache', 'fixtures');

export const FIXTURES = {
  f16: join(fixtureDir, 'tiny-f16.gguf'),
  q8: join(fixtureDir, 'tiny-q8_0.gguf'),
  q4km: join(fixtureDir, 'tiny-q4_k_m.gguf'),
} as const;

export const referenceProgram = join(root, 'build', 'Release', process.platform === 'win32' ? 'hermes3-reference.exe' : 'hermes3-reference');
export const vocabPath = join(root, 'vendor', 'llama.cpp', 'models', 'ggml-vocab-llama-bpe.gguf');
export const cliPath = join(root, 'dist', 'cli', 'index.js');

export function requireFile(path: string, hint: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${hint}`);
  return path;
}
