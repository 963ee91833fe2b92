/**
 * One file's download into the models directory, the way huggingface_hub's file_download does
 * it: streamed to `<file>.partial`, resumed with a Range request, hashed while written (on a
 * resume the partial is hashed first), verified against the published SHA-256 and only then
 * renamed to its final name. A mismatch deletes the partial; a full disk or an abort keeps it.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, rename, rm, stat, statfs, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AbortError, DiskFullError, DownloadError, IntegrityError } from '../errors.js';
import { networkError, request } from './http.js';
import { acquireLock, type LockOptions } from './lock.js';
import { formatBytes } from './progress.js';

export interface DownloadTask {
  url: string;
  /** the final absolute path */
  path: string;
  /** the name shown in messages (relative to the models directory) */
  label: string;
  size?: number;
  sha256?: string;
  /** the git blob id, for a small file kept in git rather than LFS */
  gitSha1?: string;
  auth?: { token: string; origin: string };
  /** the typed error for an HTTP answer that is not a success */
  httpError: (response: Response, url: string) => Error;
}

export interface DownloadOptions {
  signal?: AbortSignal;
  /** bytes received so far (resumed bytes included) and the total when known */
  onProgress?: (receivedBytes: number, totalBytes: number | undefined) => void;
  onLockWait?: LockOptions['onWait'];
  /** attempts after a broken connection or a server error (5xx) that made no progress; default 3 */
  retries?: number;
  /** the first wait before a retry, doubled each time; default 1000 */
  retryDelayMs?: number;
}

export interface Downloaded {
  size: number;
  sha256: string;
  /** false when the file was already complete (another pull finished it) */
  downloaded: boolean;
}

class Hashes {
  sha256: Hash = createHash('sha256');
  gitSha1?: Hash;
  constructor(private readonly task: DownloadTask) {
    this.reset();
  }
  reset() {
    this.sha256 = createHash('sha256');
    // a git blob id is the SHA-1 of "blob <size>\0" and the content
    this.gitSha1 = this.task.gitSha1 && this.task.size !== undefined ? createHash('sha1').update(`blob ${this.task.size}\0`) : undefined;
  }
  update(chunk: Uint8Array) {
    this.sha256.update(chunk);
    this.gitSha1?.update(chunk);
  }
}

async function hashRange(path: string, size: number, hashes: Hashes, signal?: AbortSignal): Promise<void> {
  if (size === 0) return;
  for await (const chunk of createReadStream(path, { start: 0, end: size - 1, highWaterMark: 1 << 20, signal })) hashes.update(chunk as Buffer);
}

/** Compares the hashes with the published ones; a mismatch is described, a match is undefined. */
function mismatch(task: DownloadTask, sha256: string, gitSha1: string | undefined): { expected: string; actual: string } | undefined {
  if (task.sha256 && task.sha256 !== sha256) return { expected: `SHA-256 ${task.sha256}`, actual: `SHA-256 ${sha256}` };
  if (task.gitSha1 && gitSha1 && task.gitSha1 !== gitSha1) return { expected: `git blob ${task.gitSha1}`, actual: `git blob ${gitSha1}` };
  return undefined;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(new AbortError('the download was aborted; the partial file is kept, and pulling again resumes it'))), { once: true });
  });

function diskFull(task: DownloadTask, partial: string, written: number, total: number | undefined, cause?: unknown, free?: number): DiskFullError {
  const needed = total !== undefined ? total - written : 0;
  const what = total !== undefined ? `${formatBytes(needed)} more are needed (${formatBytes(written)} of ${formatBytes(total)} are written and kept in ${partial})` : `the download does not fit (${formatBytes(written)} written and kept in ${partial})`;
  const has = free !== undefined ? `, and ${formatBytes(free)} are free` : '';
  return new DiskFullError(
    `no space left on the disk of ${dirname(task.path)} for ${task.label}: ${what}${has}. Free space on that disk, or set HERMES3_MODELS to a directory on a larger one, and pull again: the download resumes where it stopped`,
    { path: partial, neededBytes: needed, cause },
  );
}

async function writeAll(fh: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

/** Fails early when the disk cannot hold what is left to download (where statfs can tell). */
async function checkSpace(task: DownloadTask, partial: string, written: number, total: number | undefined): Promise<void> {
  if (total === undefined) return;
  const fs = await statfs(dirname(task.path)).catch(() => undefined);
  if (!fs) return;
  const free = fs.bavail * fs.bsize;
  if (free < total - written) throw diskFull(task, partial, written, total, undefined, free);
}

/** The total a response announces: Content-Range's for a 206, Content-Length for a 200. */
function announcedTotal(response: Response): number | undefined {
  if (response.status === 206) {
    const total = /\/(\d+)\s*$/.exec(response.headers.get('content-range') ?? '')?.[1];
    return total === undefined ? undefined : Number(total);
  }
  const length = response.headers.get('content-length');
  return length === null ? undefined : Number(length);
}

/**
 * Downloads one file under its lock. Another pull of the same file is waited for; a file found
 * complete afterwards (or left complete without a record) is verified and kept.
 */
export async function downloadFile(task: DownloadTask, options: DownloadOptions = {}): Promise<Downloaded> {
  await mkdir(dirname(task.path), { recursive: true });
  const release = await acquireLock(task.path, { signal: options.signal, onWait: options.onLockWait });
  try {
    const existing = await stat(task.path).catch(() => undefined);
    if (existing?.isFile() && (task.sha256 || task.gitSha1) && (task.size === undefined || existing.size === task.size)) {
      const hashes = new Hashes(task);
      await hashRange(task.path, existing.size, hashes, options.signal);
      const sha256 = hashes.sha256.digest('hex');
      if (!mismatch(task, sha256, hashes.gitSha1?.digest('hex'))) return { size: existing.size, sha256, downloaded: false };
    }
    return await transfer(task, options);
  } catch (err) {
    throw options.signal?.aborted ? networkError(err, task.url, options.signal) : err;
  } finally {
    await release();
  }
}

async function transfer(task: DownloadTask, options: DownloadOptions): Promise<Downloaded> {
  const { signal } = options;
  const partial = `${task.path}.partial`;
  const retries = options.retries ?? 3;
  const hashes = new Hashes(task);
  let fh = await open(partial, 'r+').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return open(partial, 'w');
    throw err;
  });
  let offset = 0;
  let total = task.size;
  let failures = 0;
  try {
    offset = (await fh.stat()).size;
    if (total !== undefined && offset > total) {
      await fh.truncate(0);
      offset = 0;
    }
    await hashRange(partial, offset, hashes, signal);
    const restart = async () => {
      await fh.truncate(0);
      hashes.reset();
      offset = 0;
    };
    // one pass per request; a broken connection or a server error is retried from where it stopped
    for (;;) {
      if (signal?.aborted) throw networkError(signal.reason, task.url, signal);
      if (total !== undefined && offset === total) break;
      let response: Response;
      let url: string;
      const retry = async (err: Error) => {
        if (++failures > retries) throw err;
        await sleep((options.retryDelayMs ?? 1000) * 2 ** (failures - 1), signal);
      };
      try {
        ({ response, url } = await request(task.url, { signal, auth: task.auth, headers: offset > 0 ? { range: `bytes=${offset}-` } : {} }));
      } catch (err) {
        if (err instanceof AbortError) throw err;
        await retry(err as Error);
        continue;
      }
      if (response.status === 416 && offset > 0) {
        // the partial is not a prefix of this file (the file changed): start over
        await response.body?.cancel().catch(() => {});
        await restart();
        continue;
      }
      if (!response.ok) {
        await response.body?.cancel().catch(() => {});
        const err = task.httpError(response, url);
        if (response.status >= 500) {
          await retry(err);
          continue;
        }
        throw err;
      }
      if (response.status === 206) {
        const start = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1];
        if (Number(start) !== offset) {
          await response.body?.cancel().catch(() => {});
          await restart();
          continue;
        }
      } else if (offset > 0) {
        // 200 to a Range request: the server sends the whole file
        await restart();
      }
      const announced = announcedTotal(response);
      if (task.size !== undefined && announced !== undefined && announced !== task.size) {
        await response.body?.cancel().catch(() => {});
        throw new DownloadError(`${task.label}: the server sends ${announced} bytes but the listing says ${task.size}: the file changed while it was pulled; run the pull again`, { url });
      }
      total ??= announced;
      await checkSpace(task, partial, offset, total);
      options.onProgress?.(offset, total);
      const before = offset;
      try {
        for await (const chunk of response.body ?? []) {
          try {
            await writeAll(fh, chunk, offset);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code === 'ENOSPC' || code === 'EDQUOT') throw diskFull(task, partial, offset, total, err);
            throw err;
          }
          hashes.update(chunk);
          offset += chunk.length;
          options.onProgress?.(offset, total);
          if (total !== undefined && offset > total) throw new DownloadError(`${task.label}: the server sent more than the ${total} bytes it announced; run the pull again`, { url });
        }
      } catch (err) {
        if (err instanceof DiskFullError || err instanceof DownloadError) throw err;
        if (signal?.aborted) throw networkError(err, url, signal);
        if (offset > before) failures = 0;
        await retry(networkError(err, url, signal));
        continue;
      }
      if (total !== undefined && offset < total) {
        // the connection closed before the end
        if (offset > before) failures = 0;
        await retry(new DownloadError(`${task.label}: the connection closed after ${offset} of ${total} bytes; run the pull again (it resumes)`, { url }));
        continue;
      }
      total ??= offset;
      break;
    }
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => {});
    // an empty partial is no use to a resume (a full disk keeps it: it shows where the pull stood)
    const left = await lstat(partial).catch(() => undefined);
    if (!(err instanceof DiskFullError) && left?.isFile() && left.size === 0) await rm(partial, { force: true });
    throw signal?.aborted ? networkError(err, task.url, signal) : err;
  }
  const sha256 = hashes.sha256.digest('hex');
  const bad = mismatch(task, sha256, hashes.gitSha1?.digest('hex'));
  if (bad) {
    await rm(partial, { force: true });
    throw new IntegrityError(
      `${task.label}: the downloaded file has ${bad.actual}, but ${bad.expected} is published: the bytes were corrupted on the way (or the server sends another file), so it was deleted. Run the pull again; if this repeats, check HF_ENDPOINT or the proxy in between`,
      { path: task.path, ...bad },
    );
  }
  await rename(partial, task.path);
  return { size: offset, sha256, downloaded: true };
}
