/**
 * A lock per downloaded file, `<file>.lock`, created exclusively and holding the owner's pid and
 * host, so two pulls of one file (two processes, or two calls in one) never write the same
 * partial. A second pull waits for the first and then finds the file complete. A lock whose
 * process is gone (a crash, a kill -9) is taken over.
 */
import { hostname } from 'node:os';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { AbortError } from '../errors.js';

export interface LockOptions {
  signal?: AbortSignal;
  /** called once when the lock is held by another live process (or another pull in this one) */
  onWait?: (holder: { pid: number; host: string }) => void;
  pollMs?: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError('the pull was aborted while it waited for another pull of the same file'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Takes the lock of `file`, waiting while a live holder has it; returns the release function. */
export async function acquireLock(file: string, options: LockOptions = {}): Promise<() => Promise<void>> {
  const path = `${file}.lock`;
  const me = `${process.pid}\n${hostname()}\n${Math.random().toString(36).slice(2)}\n`;
  let told = false;
  for (;;) {
    if (options.signal?.aborted) throw new AbortError('the pull was aborted while it waited for another pull of the same file');
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(me);
      } finally {
        await fh.close();
      }
      return async () => {
        // remove it only while it is still ours (a holder thought dead could have been taken over)
        if ((await readFile(path, 'utf8').catch(() => '')) === me) await unlink(path).catch(() => {});
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const content = await readFile(path, 'utf8').catch(() => undefined);
    if (content === undefined) continue; // released meanwhile
    const [pidText, host] = content.split('\n');
    const pid = Number(pidText);
    // a lock from another host cannot be checked (a shared disk): it is taken as live
    const sameHost = !host || host === hostname();
    let stale = sameHost && Number.isInteger(pid) && pid > 0 && !alive(pid);
    if (!Number.isInteger(pid) || pid <= 0) {
      // being written right now, or garbage: garbage once it is a few seconds old
      const age = Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? Date.now());
      stale = age > 5000;
    }
    if (stale) {
      // two processes taking over the same stale lock at once could both succeed; that needs a
      // crash and two new pulls within the same moment, and the verified hash still guards the file
      await unlink(path).catch(() => {});
      continue;
    }
    if (!told) {
      told = true;
      options.onWait?.({ pid, host: host || hostname() });
    }
    await sleep(options.pollMs ?? 200, options.signal);
  }
}

/** The live process holding the lock of `file`, if any (a stale lock counts as none). */
export async function lockHolder(file: string): Promise<{ pid: number; host: string } | undefined> {
  const content = await readFile(`${file}.lock`, 'utf8').catch(() => undefined);
  if (content === undefined) return undefined;
  const [pidText, host] = content.split('\n');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (host && host !== hostname()) return { pid, host };
  return alive(pid) ? { pid, host: host || hostname() } : undefined;
}
