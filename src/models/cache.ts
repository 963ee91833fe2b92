/**
 * The models directory as a cache: which pulled models it holds (from their records), the one a
 * reference names (without asking the network), and removal of a model's files, partial
 * downloads and record.
 */
import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { BusyError, Hermes3Error, ModelNotFoundError } from '../errors.js';
import { lockHolder } from './lock.js';
import { modelsDir, readPullRecord, recordPath, type PullRecord } from './records.js';
import { isModelRef, localPath, parseRef, pickFiles, refKey, urlFileName, type ModelRef, type RemoteFile } from './refs.js';

const RECORD_SUFFIX = recordPath('');

export interface PulledModel {
  /** the reference it was pulled with */
  ref: string;
  /** the file to load (the first part of a split model) */
  path: string;
  /** every file of the model, absolute */
  files: string[];
  /** bytes, all files together */
  size: number;
  pulledAt: string;
  /** every file is present with its recorded size */
  complete: boolean;
  record: PullRecord;
}

/** Paths under `dir` (relative, forward slashes) of the files whose names end in `suffix`; none when `dir` is missing. */
async function filesUnder(dir: string, suffix: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return [] as string[];
    throw err;
  });
  return entries.filter((e) => e.endsWith(suffix)).map((e) => e.split(sep).join('/')).sort();
}

async function describe(root: string, modelFile: string, record: PullRecord): Promise<PulledModel> {
  const files = record.files.map((f) => join(root, f.path));
  const sizes = await Promise.all(files.map((f) => stat(f).then((s) => (s.isFile() ? s.size : -1), () => -1)));
  return {
    ref: record.ref,
    path: modelFile,
    files,
    size: record.files.reduce((n, f) => n + f.size, 0),
    pulledAt: record.pulledAt,
    complete: sizes.every((size, i) => size === record.files[i].size),
    record,
  };
}

/** Every pulled model in the models directory, from the records beside the models. */
export async function listModels(options: { env?: NodeJS.ProcessEnv } = {}): Promise<PulledModel[]> {
  const root = resolve(modelsDir(options.env));
  const out: PulledModel[] = [];
  for (const rel of await filesUnder(root, RECORD_SUFFIX)) {
    const modelFile = join(root, rel.slice(0, -RECORD_SUFFIX.length));
    const record = await readPullRecord(modelFile);
    if (record) out.push(await describe(root, modelFile, record));
  }
  return out;
}

function sameRef(ref: ModelRef, record: PullRecord, root: string, modelFile: string): boolean {
  const keys = [record.ref, ...(record.aliases ?? [])].flatMap((text) => {
    try {
      return [refKey(parseRef(text))];
    } catch {
      return [];
    }
  });
  if (keys.includes(refKey(ref))) return true;
  // a file reference matches the record at that file, pulled at the same revision
  if (ref.kind !== 'hf' || !ref.file) return false;
  const pulled = parseRef(record.ref);
  return pulled.kind === 'hf' && pulled.revision === ref.revision && modelFile === join(root, localPath(ref, ref.file));
}

/** The pulled model a reference names, complete or not, found from the records alone. */
export async function findPulled(ref: ModelRef, root: string): Promise<PulledModel | undefined> {
  const dir = ref.kind === 'hf' ? join(root, ref.owner, ref.repo) : join(root, dirname(localPath(ref, urlFileName(ref.url))));
  for (const rel of await filesUnder(dir, RECORD_SUFFIX)) {
    const modelFile = join(dir, rel.slice(0, -RECORD_SUFFIX.length));
    const record = await readPullRecord(modelFile);
    if (record && sameRef(ref, record, root, modelFile)) return describe(root, modelFile, record);
  }
  return undefined;
}

/** The complete pulled model a reference names, or undefined. */
export async function findCached(ref: ModelRef, root: string): Promise<PulledModel | undefined> {
  const found = await findPulled(ref, root);
  return found?.complete ? found : undefined;
}

async function removeFiles(root: string, files: string[]): Promise<string[]> {
  for (const f of files) {
    const holder = await lockHolder(f);
    if (holder) throw new BusyError(`${f} is being pulled right now (process ${holder.pid} on ${holder.host}); stop that pull or wait for it, then remove the model`);
  }
  const removed: string[] = [];
  for (const f of files) {
    for (const p of [f, `${f}.partial`, `${f}.lock`, recordPath(f)]) {
      if (await stat(p).then(() => true, () => false)) {
        await rm(p, { force: true });
        removed.push(p);
      }
    }
  }
  // prune the folders left empty, up to the models directory
  for (const f of files) {
    for (let d = dirname(f); d.startsWith(root + sep) && d !== root; d = dirname(d)) {
      if (!(await rmdir(d).then(() => true, () => false))) break;
    }
  }
  return removed;
}

/** Files of a repository folder as a listing (partials count as their final names), for removal without the network. */
async function localListing(root: string, ref: ModelRef & { kind: 'hf' }): Promise<RemoteFile[]> {
  const dir = join(root, ref.owner, ref.repo);
  const names = new Set<string>();
  for (const rel of await filesUnder(dir, '')) {
    if (rel.endsWith(RECORD_SUFFIX) || rel.endsWith('.lock')) continue;
    names.add(rel.replace(/\.partial$/, ''));
  }
  return [...names].map((path) => ({ path }));
}

/**
 * Removes a pulled model: its files, partial downloads and record. `refOrPath` is the reference
 * it was pulled with (or one naming the same files) or the path of one of its files. Files
 * outside the models directory are never touched. Returns the paths removed.
 */
export async function removeModel(refOrPath: string, options: { env?: NodeJS.ProcessEnv } = {}): Promise<{ removed: string[] }> {
  const root = resolve(modelsDir(options.env));
  const notFound = () =>
    new ModelNotFoundError(`${refOrPath} is not a pulled model in ${root}: nothing was removed. hermes3 ls lists the pulled models (HERMES3_MODELS sets the directory)`);
  if (isModelRef(refOrPath)) {
    const ref = parseRef(refOrPath);
    const pulled = await findPulled(ref, root);
    if (pulled) return { removed: await removeFiles(root, pulled.files) };
    // an interrupted pull has partials and no record yet
    let files: string[] = [];
    if (ref.kind === 'url') {
      files = [join(root, localPath(ref, urlFileName(ref.url)))];
    } else {
      try {
        files = pickFiles(ref, await localListing(root, ref)).map((f) => join(root, localPath(ref, f.path)));
      } catch (err) {
        if (!(err instanceof Hermes3Error)) throw err;
      }
    }
    const removed = await removeFiles(root, files);
    if (removed.length === 0) throw notFound();
    return { removed };
  }
  const path = resolve(refOrPath);
  const rel = relative(root, path);
  if (rel.startsWith('..') || isAbsolute(rel)) {
    throw new ModelNotFoundError(`${path} is not in the models directory ${root}: only pulled models are removed; delete other files yourself`);
  }
  const file = path.endsWith('.partial') ? path.slice(0, -'.partial'.length) : path;
  const owner = (await listModels(options)).find((m) => m.files.includes(file));
  const removed = await removeFiles(root, owner ? owner.files : [file]);
  if (removed.length === 0) throw notFound();
  return { removed };
}
