/**
 * Where pulled models live and what is known about them. Each pulled model has a record beside
 * its (first) file, `<file>.hermes3.json`: the reference it came from, the URL, and each file's
 * size and published SHA-256, so `hermes3 doctor` can tell a whole file from a truncated one.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface PulledFile {
  /** path relative to the models directory */
  path: string;
  size: number;
  /** the published SHA-256 (Hugging Face's LFS oid), verified when the file was pulled; for a URL without one, the SHA-256 computed while downloading */
  sha256?: string;
}

export interface PullRecord {
  /** the reference as the user wrote it, e.g. hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q4_K_M */
  ref: string;
  /** where the first file came from */
  url: string;
  /** every file of the model, in order (split GGUFs have several) */
  files: PulledFile[];
  /** ISO time */
  pulledAt: string;
  /** other references found to name the same files (hf:OWNER/REPO, when it has one GGUF, and its :QUANT) */
  aliases?: string[];
}

const RECORD_SUFFIX = '.hermes3.json';

/**
 * The models directory: HERMES3_MODELS, else the platform's cache directory (XDG_CACHE_HOME or
 * ~/.cache on Linux, ~/Library/Caches on macOS, LOCALAPPDATA on Windows) + hermes3/models.
 */
export function modelsDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.HERMES3_MODELS) return env.HERMES3_MODELS;
  const home = env.HOME || homedir();
  if (platform === 'darwin') return join(home, 'Library', 'Caches', 'hermes3', 'models');
  if (platform === 'win32') return join(env.LOCALAPPDATA || join(home, 'AppData', 'Local'), 'hermes3', 'models');
  return join(env.XDG_CACHE_HOME || join(home, '.cache'), 'hermes3', 'models');
}

export function recordPath(modelFile: string): string {
  return modelFile + RECORD_SUFFIX;
}

/** The record of a pulled model, or undefined when the file was not pulled (or the record is unreadable). */
export async function readPullRecord(modelFile: string): Promise<PullRecord | undefined> {
  try {
    const value = JSON.parse(await readFile(recordPath(modelFile), 'utf8')) as PullRecord;
    return typeof value?.ref === 'string' && Array.isArray(value.files) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the record atomically (a temporary file renamed over it). */
export async function writePullRecord(modelFile: string, record: PullRecord): Promise<void> {
  const path = recordPath(modelFile);
  // unique per write: two pulls in one process may write the same record at once
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, JSON.stringify(record, null, 2) + '\n');
  await rename(tmp, path);
}
