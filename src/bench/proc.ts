/** Child processes of the benchmark: each measurement runs in a process of its own. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ChildResult {
  stdout: string;
  stderr: string;
  /** the child's peak resident set (its rusage maxrss), when /usr/bin/time is there to report it */
  peakRssBytes?: number;
}

/** A peer's run failed; the message says what happened and what to do. */
export class PeerError extends Error {}

export const GNU_TIME = '/usr/bin/time';

/**
 * Runs `command` and resolves with its output when it exits with 0. `measureRss` runs it under
 * GNU time, which reports the child's peak RSS from wait4's rusage.
 */
export function runChild(
  command: string,
  args: string[],
  options: { timeoutS: number; measureRss?: boolean; env?: NodeJS.ProcessEnv; what: string; signal?: AbortSignal },
): Promise<ChildResult> {
  let rssDir: string | undefined;
  let file = command;
  let argv = args;
  if (options.measureRss && existsSync(GNU_TIME)) {
    rssDir = mkdtempSync(join(tmpdir(), 'hermes3-bench-'));
    file = GNU_TIME;
    argv = ['-f', '%M', '-o', join(rssDir, 'maxrss'), command, ...args];
  }
  return new Promise((resolve, reject) => {
    // a process group of its own, so that a timeout or Ctrl-C also ends what GNU time started;
    // stdin is a pipe that nothing writes to: it closes when this process ends, however it ends
    // (a SIGTERM skips the exit handler below), and the benchmark's worker ends with it
    const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env, detached: true });
    let timedOut = false;
    const killGroup = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const onExit = () => killGroup();
    process.once('exit', onExit);
    options.signal?.addEventListener('abort', killGroup, { once: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutS * 1000);
    const cleanup = () => {
      clearTimeout(timer);
      process.off('exit', onExit);
      options.signal?.removeEventListener('abort', killGroup);
    };
    child.on('error', (err) => {
      cleanup();
      reject(new PeerError(`${options.what}: could not start ${command}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      cleanup();
      let peakRssBytes: number | undefined;
      if (rssDir) {
        const kib = Number(readFileSync(join(rssDir, 'maxrss'), 'utf8').trim().split('\n').pop());
        if (Number.isFinite(kib) && kib > 0) peakRssBytes = kib * 1024;
        rmSync(rssDir, { recursive: true, force: true });
      }
      if (code === 0) return resolve({ stdout, stderr, peakRssBytes });
      const tail = stderr.trim().split('\n').slice(-8).join('\n');
      // under GNU time a child killed by a signal shows as exit status 128 + signal
      const how = timedOut
        ? `was stopped after the ${options.timeoutS} s limit (raise --timeout)`
        : options.signal?.aborted
          ? 'was interrupted'
          : signal
            ? `was killed by ${signal}`
            : `exited with ${code}${code !== null && code > 128 ? ` (signal ${code - 128})` : ''}`;
      reject(new PeerError(`${options.what} ${how}${tail ? `:\n${tail}` : ''}`));
    });
  });
}
