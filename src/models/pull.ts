/**
 * Pulling models (the part `ollama pull` plays): a reference is resolved to files (the Hub's
 * listing, or a URL), each file is downloaded and verified under its lock, and a record is
 * written beside the model. A model already complete in the models directory is returned at
 * once, without the network.
 */
import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { DownloadError, DownloadNotConfirmedError, ModelNotFoundError } from '../errors.js';
import { abortSignal, bool, int, parseOptions } from '../engine/validate.js';
import { findCached } from './cache.js';
import { downloadFile } from './download.js';
import { hubAuth, hubConfig, hubError, listRepoFiles, resolveUrl } from './hf.js';
import { request } from './http.js';
import { formatBytes, progressReporter, type PullProgress } from './progress.js';
import { modelsDir, readPullRecord, writePullRecord, type PulledFile, type PullRecord } from './records.js';
import { isModelRef, localPath, parseRef, pickFiles, refKey, splitInfo, splitPartPath, urlFileName, type ModelRef, type RemoteFile } from './refs.js';

/** The model the CLI and the server use when none is named. */
export const DEFAULT_MODEL_REF = 'hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q4_K_M';

const fn = <T>(what: string) => z.custom<T>((v) => typeof v === 'function', { error: `expected a function ${what}` });
const pullFields = {
  signal: abortSignal().optional(),
  onProgress: fn<(progress: PullProgress) => void>('(progress) => void').optional(),
  /** called when another pull holds a file's lock: this one waits for it */
  onLockWait: fn<(info: { file: string; pid: number; host: string }) => void>('({ file, pid, host }) => void').optional(),
  /** where HERMES3_MODELS, HF_ENDPOINT and HF_TOKEN are read (default process.env) */
  env: z.custom<NodeJS.ProcessEnv>((v) => typeof v === 'object' && v !== null, { error: 'expected an object of environment variables' }).optional(),
  /** attempts after a broken connection or a server error that made no progress (default 3) */
  retries: int(0, 100).optional(),
};
const pullSchema = z.strictObject(pullFields);
export type PullOptions = z.input<typeof pullSchema>;

const resolveSchema = z.strictObject({
  ...pullFields,
  /** download without asking */
  yes: bool().optional(),
  /** asked before a download, e.g. 'Download X (4.92 GB) to DIR?'; false declines it */
  confirm: fn<(question: string) => Promise<boolean> | boolean>('(question) => Promise<boolean>').optional(),
});
export type ResolveModelPathOptions = z.input<typeof resolveSchema>;

export interface PullResult {
  /** the file to load (the first part of a split model; llama.cpp finds the others beside it) */
  path: string;
  /** every file of the model, absolute, in order */
  files: string[];
  record: PullRecord;
  /** true when nothing had to be downloaded */
  cached: boolean;
}

interface PlannedFile extends RemoteFile {
  url: string;
  /** relative to the models directory */
  local: string;
}

/** What a reference resolves to: the files to fetch and how to ask for them. */
export interface PullPlan {
  ref: ModelRef;
  root: string;
  files: PlannedFile[];
  auth?: { token: string; origin: string };
  httpError: (response: Response, url: string) => Error;
}

function urlError(response: Response, url: string): Error {
  const status = response.status;
  if (status === 404 || status === 410) return new ModelNotFoundError(`there is no file at ${url} (HTTP ${status}); check the URL`);
  if (status === 401 || status === 403) return new DownloadError(`${new URL(url).host} refused ${url} (HTTP ${status}): the file needs credentials this pull does not have; download it yourself and pass its path`, { url, status });
  return new DownloadError(`${url} failed with HTTP ${status} ${response.statusText}; run the pull again later (it resumes)`, { url, status });
}

/** The size a HEAD request announces, or undefined when the server does not say. */
async function headSize(url: string, signal?: AbortSignal): Promise<number | undefined> {
  try {
    const { response } = await request(url, { method: 'HEAD', signal });
    const length = response.headers.get('content-length');
    return response.ok && length !== null ? Number(length) : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves a reference to the files to download (asks the Hub for its listing, or a URL for its sizes). */
export async function planPull(ref: ModelRef, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<PullPlan> {
  const root = resolve(modelsDir(env));
  if (ref.kind === 'hf') {
    const config = hubConfig(env);
    const files = pickFiles(ref, await listRepoFiles(ref, config, signal));
    return {
      ref,
      root,
      files: files.map((f) => ({ ...f, url: resolveUrl(ref, f.path, config), local: localPath(ref, f.path) })),
      auth: hubAuth(config),
      httpError: (response, url) => hubError(response, ref, config, `downloading ${basename(new URL(url).pathname)}`, url),
    };
  }
  const name = urlFileName(ref.url);
  const split = splitInfo(name);
  const names = split ? Array.from({ length: split.count }, (_, i) => splitPartPath(name, i + 1, split.count)) : [name];
  const files = await Promise.all(
    names.map(async (n) => {
      const url = new URL(n, ref.url).href;
      return { path: n, url, local: localPath(ref, n), size: await headSize(url, signal), sha256: names.length === 1 ? ref.sha256 : undefined };
    }),
  );
  return { ref, root, files, httpError: urlError };
}

const sizeOf = (path: string) => stat(path).then((s) => (s.isFile() ? s.size : -1), () => -1);

/** Downloads what a plan names (files already complete and recorded are kept) and writes the record. */
export async function pullPlanned(plan: PullPlan, options: PullOptions = {}): Promise<PullResult> {
  const { root, ref } = plan;
  const primary = join(root, plan.files[0].local);
  const existing = await readPullRecord(primary);
  const pulled: PulledFile[] = [];
  let downloaded = false;
  for (const [i, f] of plan.files.entries()) {
    const path = join(root, f.local);
    const recorded = existing?.files.find((r) => r.path === f.local);
    // the record vouches for this content: the same published hash (or, without one, the same size)
    const vouched = recorded && f.size === recorded.size && (f.sha256 || f.gitSha1 ? recorded.sha256 === f.sha256 && f.sha256 !== undefined : f.size !== undefined);
    if (vouched && (await sizeOf(path)) === recorded.size) {
      pulled.push(recorded);
      continue;
    }
    const report = progressReporter(options.onProgress, { file: f.local, fileIndex: i + 1, fileCount: plan.files.length, totalBytes: f.size });
    const result = await downloadFile(
      { url: f.url, path, label: f.local, size: f.size, sha256: f.sha256, gitSha1: f.gitSha1, auth: plan.auth, httpError: plan.httpError },
      {
        signal: options.signal,
        retries: options.retries,
        onProgress: (received, total) => report(received, total),
        onLockWait: options.onLockWait && ((holder) => options.onLockWait!({ file: path, ...holder })),
      },
    );
    downloaded ||= result.downloaded;
    pulled.push({ path: f.local, size: result.size, sha256: result.sha256 });
  }
  const keys = existing ? [existing.ref, ...(existing.aliases ?? [])].map((t) => refKey(parseRef(t))) : [];
  let record: PullRecord;
  if (existing && !downloaded) {
    // the same files under another name (hf:OWNER/REPO and its :QUANT): remembered as an alias
    record = keys.includes(refKey(ref)) ? existing : { ...existing, aliases: [...(existing.aliases ?? []), ref.text] };
  } else {
    record = { ref: ref.text, url: plan.files[0].url, files: pulled, pulledAt: new Date().toISOString() };
  }
  if (record !== existing) await writePullRecord(primary, record);
  return { path: primary, files: pulled.map((f) => join(root, f.path)), record, cached: !downloaded };
}

/**
 * Pulls a model into the models directory (HERMES3_MODELS, else the user's cache directory) and
 * returns its path. `ref` is `hf:OWNER/REPO:QUANT`, `hf:OWNER/REPO/FILE.gguf`, `hf:OWNER/REPO`
 * (its only GGUF), each with an optional `@REVISION`, or an https:// URL to a .gguf file. Files
 * are verified against the published SHA-256; an interrupted pull resumes where it stopped.
 */
export async function pullModel(ref: string, options: PullOptions = {}): Promise<PullResult> {
  const opts = parseOptions(pullSchema, options, 'pullModel');
  const parsed = parseRef(ref);
  const env = opts.env ?? process.env;
  const cached = await findCached(parsed, resolve(modelsDir(env)));
  if (cached) return { path: cached.path, files: cached.files, record: cached.record, cached: true };
  return pullPlanned(await planPull(parsed, env, opts.signal), opts);
}

/**
 * The path of the model to load for `spec`: an existing file as is; a reference from the models
 * directory, pulled first when missing (after `confirm`, or at once with `yes`); undefined for
 * the default model, DEFAULT_MODEL_REF.
 */
export async function resolveModelPath(spec: string | undefined, options: ResolveModelPathOptions = {}): Promise<string> {
  const opts = parseOptions(resolveSchema, options, 'resolveModelPath');
  const text = spec ?? DEFAULT_MODEL_REF;
  const file = await stat(text).catch(() => undefined);
  if (file?.isFile()) return text;
  if (!isModelRef(text)) {
    throw new ModelNotFoundError(
      file ? `${text} is a directory, not a GGUF file; pass the path of the .gguf file` : `there is no file ${text}; pass the path of a GGUF file, or a reference such as ${DEFAULT_MODEL_REF}`,
    );
  }
  const ref = parseRef(text);
  const env = opts.env ?? process.env;
  const root = resolve(modelsDir(env));
  const cached = await findCached(ref, root);
  if (cached) return cached.path;
  const plan = await planPull(ref, env, opts.signal);
  const known = plan.files.every((f) => f.size !== undefined);
  const bytes = plan.files.reduce((n, f) => n + (f.size ?? 0), 0);
  const size = known ? formatBytes(bytes) : 'size unknown';
  const what = plan.files.length > 1 ? `${basename(plan.files[0].path)} and ${plan.files.length - 1} more part${plan.files.length > 2 ? 's' : ''}` : basename(plan.files[0].path);
  if (!opts.yes) {
    if (!opts.confirm) {
      throw new DownloadNotConfirmedError(`${text} is not downloaded yet (${what}, ${size}). Pass --yes (yes: true) to download it to ${root}, or run: hermes3 pull ${text}`);
    }
    if (!(await opts.confirm(`Download ${what} (${size}) to ${root}?`))) {
      throw new DownloadNotConfirmedError(`the download of ${text} was declined; nothing was downloaded. Run hermes3 pull ${text} when you want it, or pass a GGUF file path`);
    }
  }
  return (await pullPlanned(plan, opts)).path;
}
