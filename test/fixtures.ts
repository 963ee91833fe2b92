/** Paths of the synthetic models and programs the model and e2e tests share. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { offloadGpus } from '../src/engine/backends.js';
import { getBackendInfo } from '../src/index.js';

export const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
export const fixtureDir = join(root, '.cache', 'fixtures');

export const FIXTURES = {
  f16: join(fixtureDir, 'tiny-f16.gguf'),
  q8: join(fixtureDir, 'tiny-q8_0.gguf'),
  q4km: join(fixtureDir, 'tiny-q4_k_m.gguf'),
} as const;

export const referenceProgram = join(root, 'build', 'Release', process.platform === 'win32' ? 'hermes3-reference.exe' : 'hermes3-reference');
export const embedReferenceProgram = join(root, 'build', 'Release', process.platform === 'win32' ? 'hermes3-embed-reference.exe' : 'hermes3-embed-reference');
export const vocabPath = join(root, 'vendor', 'llama.cpp', 'models', 'ggml-vocab-llama-bpe.gguf');
export const cliPath = join(root, 'dist', 'cli', 'index.js');

export function requireFile(path: string, hint: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${hint}`);
  return path;
}

/** Whether this build and machine have a GPU llama.cpp offloads to (the GPU-only tests run then). */
export const hasGpu = (): boolean => offloadGpus(getBackendInfo().devices).length > 0;

export interface NodeRun {
  code: number;
  stdout: string;
  stderr: string;
}

const exec = promisify(execFile);

/** Runs node with `args`; a non-zero exit is returned, not thrown. */
export async function runNode(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<NodeRun> {
  try {
    const { stdout, stderr } = await exec(process.execPath, args, { ...options, encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as NodeRun;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
