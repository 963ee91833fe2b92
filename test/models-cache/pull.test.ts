// pullModel against a local stand-in for the Hub: verified whole pulls, resumes, faults, locks.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, DiskFullError, DownloadError, IntegrityError, ModelNotFoundError } from '../../src/errors.js';
import { readPullRecord } from '../../src/models/records.js';
import { pullModel } from '../../src/models/pull.js';
import type { PullProgress } from '../../src/models/progress.js';
import { FakeHub } from '../../src/testing/fake-hub.js';
import { someBytes } from './models.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const SIZE = 3_000_000;

let hub: FakeHub;
let tmp: string;
let n = 0;
const files: Record<string, Buffer> = {};
const env = () => ({ HF_ENDPOINT: hub.endpoint, HERMES3_MODELS: join(tmp, `models-${++n}`) });

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hermes3-pull-'));
  hub = await new FakeHub().start();
  for (const name of ['small.Q4_K_M.gguf', 'small.Q8_0.gguf', 'Q2_K/small-Q2_K.gguf', 'cut.Q4_K_M.gguf', 'stall.Q4_K_M.gguf', 'bad.Q4_K_M.gguf', 'full.Q4_K_M.gguf', 'lock.Q4_K_M.gguf']) files[name] = someBytes(SIZE);
  files['tiny-git.Q4_0.gguf'] = someBytes(5000);
  hub.addRepo('acme/small-GGUF', [
    { path: 'README.md', body: Buffer.from('# small\n'), git: true },
    ...['small.Q4_K_M.gguf', 'small.Q8_0.gguf', 'Q2_K/small-Q2_K.gguf'].map((path) => ({ path, body: files[path] })),
  ]);
  for (const name of ['cut', 'stall', 'bad', 'full', 'lock']) hub.addRepo(`acme/${name}-GGUF`, [{ path: `${name}.Q4_K_M.gguf`, body: files[`${name}.Q4_K_M.gguf`] }]);
  hub.addRepo('acme/git-GGUF', [{ path: 'tiny-git.Q4_0.gguf', body: files['tiny-git.Q4_0.gguf'], git: true }]);
  hub.addRepo('meta/gated-GGUF', [{ path: 'gated.Q4_K_M.gguf', body: files['small.Q4_K_M.gguf'] }], { gated: true });
  hub.urlFiles.set('plain.gguf', files['small.Q8_0.gguf']);
});

afterAll(async () => {
  await hub.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('pullModel', () => {
  it('pulls a quantization: paged listing, redirect, verified file and record', async () => {
    const e = env();
    const events: PullProgress[] = [];
    const before = hub.log.length;
    const r = await pullModel('hf:acme/small-GGUF:q4_k_m', { env: e, onProgress: (p) => events.push(p) });
    expect(r.cached).toBe(false);
    expect(r.path).toBe(join(e.HERMES3_MODELS, 'acme/small-GGUF/small.Q4_K_M.gguf'));
    expect(r.files).toEqual([r.path]);
    expect(sha(readFileSync(r.path))).toBe(sha(files['small.Q4_K_M.gguf']));
    expect(r.record).toMatchObject({ ref: 'hf:acme/small-GGUF:q4_k_m', url: `${hub.endpoint}/acme/small-GGUF/resolve/main/small.Q4_K_M.gguf` });
    expect(r.record.files).toEqual([{ path: 'acme/small-GGUF/small.Q4_K_M.gguf', size: SIZE, sha256: sha(files['small.Q4_K_M.gguf']) }]);
    expect(await readPullRecord(r.path)).toEqual(r.record);
    expect(events.at(-1)).toMatchObject({ file: 'acme/small-GGUF/small.Q4_K_M.gguf', fileIndex: 1, fileCount: 1, receivedBytes: SIZE, totalBytes: SIZE, etaSeconds: 0 });
    const log = hub.log.slice(before);
    // 5 entries (a folder and 4 files) in pages of 4
    expect(log.filter((l) => l.path.includes('/tree/')).length).toBe(2);
    expect(log.filter((l) => l.server === 'cdn').map((l) => l.range)).toEqual([undefined]);
    expect(await readdir(join(e.HERMES3_MODELS, 'acme/small-GGUF'))).toEqual(['small.Q4_K_M.gguf', 'small.Q4_K_M.gguf.hermes3.json']);
  });

  it('returns a complete cached model at once, and pulls again when a file lost bytes', async () => {
    const e = env();
    await pullModel('hf:acme/small-GGUF:Q2_K', { env: e });
    const before = hub.log.length;
    const again = await pullModel('hf:acme/small-GGUF:q2_k', { env: e });
    expect(again.cached).toBe(true);
    expect(again.path).toBe(join(e.HERMES3_MODELS, 'acme/small-GGUF/Q2_K/small-Q2_K.gguf'));
    expect(hub.log.length).toBe(before);
    await truncate(again.path, 1000);
    const repaired = await pullModel('hf:acme/small-GGUF:Q2_K', { env: e });
    expect(repaired.cached).toBe(false);
    expect(statSync(repaired.path).size).toBe(SIZE);
  });

  it('names the quantizations, repositories and revisions that exist', async () => {
    const e = env();
    await expect(pullModel('hf:acme/small-GGUF:Q3_K_S', { env: e })).rejects.toThrow(
      new ModelNotFoundError('hf:acme/small-GGUF has no GGUF file for quantization Q3_K_S. It has: Q8_0, Q4_K_M, Q2_K. Pull one of those, e.g. hf:acme/small-GGUF:Q4_K_M', ['Q8_0', 'Q4_K_M', 'Q2_K']),
    );
    await expect(pullModel('hf:acme/nothing-GGUF:Q4_K_M', { env: e })).rejects.toThrow(
      new ModelNotFoundError(`hf:acme/nothing-GGUF: there is no repository acme/nothing-GGUF on ${hub.endpoint} (a private one needs HF_TOKEN); check the spelling (e.g. hf:NousResearch/Hermes-3-Llama-3.1-8B-GGUF:Q4_K_M)`),
    );
    await expect(pullModel('hf:acme/small-GGUF:Q4_K_M@v9', { env: e })).rejects.toThrow(/there is no revision 'v9' in acme\/small-GGUF/);
    await expect(pullModel('hf:acme/small-GGUF', { env: e })).rejects.toThrow(/has 3 GGUF models; name one with :QUANT/);
    expect(existsSync(e.HERMES3_MODELS)).toBe(false);
  });

  it('resumes a transfer cut after K bytes with a Range request, within the same pull', async () => {
    const e = env();
    const K = 1_234_567;
    // the connection closes once the client has written K bytes (bytes still in flight when a
    // connection breaks are lost, so an immediate cut would leave fewer)
    const stall = hub.stall('cut.Q4_K_M.gguf', K);
    const before = hub.log.length;
    const pull = pullModel('hf:acme/cut-GGUF:Q4_K_M', { env: e });
    await stall.reached;
    const partial = join(e.HERMES3_MODELS, 'acme/cut-GGUF/cut.Q4_K_M.gguf.partial');
    for (let i = 0; i < 1000 && (!existsSync(partial) || statSync(partial).size < K); i++) await new Promise((r) => setTimeout(r, 10));
    stall.cut();
    const r = await pull;
    expect(hub.log.slice(before).filter((l) => l.server === 'cdn').map((l) => l.range)).toEqual([undefined, `bytes=${K}-`]);
    expect(sha(readFileSync(r.path))).toBe(sha(files['cut.Q4_K_M.gguf']));
    // an immediate cut loses what was in flight: the pull still resumes from what it wrote
    hub.cuts.set('cut.Q4_K_M.gguf', { after: K, times: 1 });
    const again = await pullModel('hf:acme/cut-GGUF:Q4_K_M', { env: env() });
    expect(sha(readFileSync(again.path))).toBe(sha(files['cut.Q4_K_M.gguf']));
    expect(hub.log.at(-1)!.range).toMatch(/^bytes=\d+-$/);
  });

  it('keeps the partial when aborted, and a later pull resumes it', async () => {
    const e = env();
    const K = 777_777;
    const stall = hub.stall('stall.Q4_K_M.gguf', K);
    const controller = new AbortController();
    const pull = pullModel('hf:acme/stall-GGUF:Q4_K_M', { env: e, signal: controller.signal });
    await stall.reached;
    const partial = join(e.HERMES3_MODELS, 'acme/stall-GGUF/stall.Q4_K_M.gguf.partial');
    for (let i = 0; i < 1000 && (!existsSync(partial) || statSync(partial).size < K); i++) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    await expect(pull).rejects.toThrow(new AbortError('the download was aborted; the partial file is kept, and pulling again resumes it'));
    stall.release();
    expect(statSync(partial).size).toBe(K);
    expect(existsSync(partial.replace('.partial', '.lock'))).toBe(false);
    const before = hub.log.length;
    const r = await pullModel('hf:acme/stall-GGUF:Q4_K_M', { env: e });
    expect(hub.log.slice(before).filter((l) => l.server === 'cdn').map((l) => l.range)).toEqual([`bytes=${K}-`]);
    expect(sha(readFileSync(r.path))).toBe(sha(files['stall.Q4_K_M.gguf']));
    expect(existsSync(partial)).toBe(false);
  });

  it('hashes the partial it resumes: wrong bytes in it are refused, and a 200 answer starts over', async () => {
    const e = env();
    const dir = join(e.HERMES3_MODELS, 'acme/small-GGUF');
    await mkdir(dir, { recursive: true });
    const partial = join(dir, 'small.Q8_0.gguf.partial');
    await writeFile(partial, Buffer.alloc(4096, 7));
    await expect(pullModel('hf:acme/small-GGUF:Q8_0', { env: e })).rejects.toThrow(IntegrityError);
    expect(existsSync(partial)).toBe(false);
    // a server that ignores Range answers 200: the partial is dropped and the whole file taken
    await writeFile(partial, Buffer.alloc(4096, 7));
    hub.ignoreRange = true;
    try {
      const r = await pullModel('hf:acme/small-GGUF:Q8_0', { env: e });
      expect(sha(readFileSync(r.path))).toBe(sha(files['small.Q8_0.gguf']));
    } finally {
      hub.ignoreRange = false;
    }
  });

  it('refuses a corrupted file and leaves nothing in the cache', async () => {
    const e = env();
    hub.corrupt.add('bad.Q4_K_M.gguf');
    const err = await pullModel('hf:acme/bad-GGUF:Q4_K_M', { env: e }).catch((x) => x);
    hub.corrupt.delete('bad.Q4_K_M.gguf');
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(
      new RegExp(`^bad\\.Q4_K_M\\.gguf: the downloaded file has SHA-256 [0-9a-f]{64}, but SHA-256 ${sha(files['bad.Q4_K_M.gguf'])} is published: the bytes were corrupted on the way \\(or the server sends another file\\), so it was deleted\\. Run the pull again`.replace('^bad', '^acme/bad-GGUF/bad')),
    );
    expect(await readdir(join(e.HERMES3_MODELS, 'acme/bad-GGUF'))).toEqual([]);
  });

  it.runIf(existsSync('/dev/full'))('keeps the partial on a full disk and says how much is needed where', async () => {
    const e = env();
    const dir = join(e.HERMES3_MODELS, 'acme/full-GGUF');
    await mkdir(dir, { recursive: true });
    const partial = join(dir, 'full.Q4_K_M.gguf.partial');
    await symlink('/dev/full', partial);
    const err = await pullModel('hf:acme/full-GGUF:Q4_K_M', { env: e }).catch((x) => x);
    expect(err).toBeInstanceOf(DiskFullError);
    expect(err.code).toBe('ERR_DISK_FULL');
    expect(err.neededBytes).toBe(SIZE);
    expect(err.message).toBe(
      `no space left on the disk of ${dir} for acme/full-GGUF/full.Q4_K_M.gguf: 3.0 MB more are needed (0 B of 3.0 MB are written and kept in ${partial}). Free space on that disk, or set HERMES3_MODELS to a directory on a larger one, and pull again: the download resumes where it stopped`,
    );
    expect(lstatSync(partial).isSymbolicLink()).toBe(true);
    expect(existsSync(join(dir, 'full.Q4_K_M.gguf.lock'))).toBe(false);
  });

  it('lets a second pull of the same file wait for the first, then use its file', async () => {
    const e = env();
    const stall = hub.stall('lock.Q4_K_M.gguf', 100_000);
    const waits: Array<{ file: string; pid: number }> = [];
    const before = hub.log.length;
    const first = pullModel('hf:acme/lock-GGUF:Q4_K_M', { env: e });
    await stall.reached;
    const second = pullModel('hf:acme/lock-GGUF:Q4_K_M', { env: e, onLockWait: (w) => waits.push(w) });
    for (let i = 0; i < 1000 && waits.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(waits).toEqual([{ file: join(e.HERMES3_MODELS, 'acme/lock-GGUF/lock.Q4_K_M.gguf'), pid: process.pid, host: expect.any(String) }]);
    stall.release();
    const [a, b] = await Promise.all([first, second]);
    expect([a.cached, b.cached]).toEqual([false, true]);
    expect(b.path).toBe(a.path);
    expect(hub.log.slice(before).filter((l) => l.server === 'cdn').length).toBe(1);
    expect(sha(readFileSync(a.path))).toBe(sha(files['lock.Q4_K_M.gguf']));
  });

  it('takes over a lock whose process is gone, and stops waiting for a live one when aborted', async () => {
    const e = env();
    const dir = join(e.HERMES3_MODELS, 'acme/small-GGUF');
    await mkdir(dir, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    await writeFile(join(dir, 'small.Q4_K_M.gguf.lock'), `${dead}\n`);
    const r = await pullModel('hf:acme/small-GGUF:Q4_K_M', { env: e });
    expect(existsSync(`${r.path}.lock`)).toBe(false);

    await writeFile(join(dir, 'small.Q8_0.gguf.lock'), `${process.pid}\n`);
    const controller = new AbortController();
    const pull = pullModel('hf:acme/small-GGUF:Q8_0', { env: e, signal: controller.signal, onLockWait: () => controller.abort() });
    await expect(pull).rejects.toThrow(new AbortError('the pull was aborted while it waited for another pull of the same file'));
  });

  it('asks for HF_TOKEN for a gated repository, and sends the token only to the Hub', async () => {
    const e = env();
    const err = await pullModel('hf:meta/gated-GGUF:Q4_K_M', { env: e }).catch((x) => x);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err.status).toBe(401);
    expect(err.message).toBe(
      `hf:meta/gated-GGUF: downloading gated.Q4_K_M.gguf was refused (HTTP 401): the repository is gated; accept its terms on ${hub.endpoint}/meta/gated-GGUF, create a read token at ${hub.endpoint}/settings/tokens and set HF_TOKEN to it`,
    );
    const wrong = await pullModel('hf:meta/gated-GGUF:Q4_K_M', { env: { ...e, HF_TOKEN: 'hf_wrong' } }).catch((x) => x);
    expect(wrong.message).toMatch(/the token in HF_TOKEN does not grant access/);
    const before = hub.log.length;
    const r = await pullModel('hf:meta/gated-GGUF:Q4_K_M', { env: { ...e, HF_TOKEN: hub.token } });
    expect(sha(readFileSync(r.path))).toBe(sha(files['small.Q4_K_M.gguf']));
    const log = hub.log.slice(before);
    expect(log.filter((l) => l.server === 'hub').every((l) => l.authorization === `Bearer ${hub.token}`)).toBe(true);
    expect(log.filter((l) => l.server === 'cdn').map((l) => l.authorization)).toEqual([undefined]);
  });

  it('verifies a GGUF kept in git (not LFS) by its git blob id', async () => {
    const r = await pullModel('hf:acme/git-GGUF', { env: env() });
    expect(r.record.files[0]).toMatchObject({ size: 5000, sha256: sha(files['tiny-git.Q4_0.gguf']) });
    hub.corrupt.add('tiny-git.Q4_0.gguf');
    await expect(pullModel('hf:acme/git-GGUF', { env: env() })).rejects.toThrow(/has git blob [0-9a-f]{40}, but git blob [0-9a-f]{40} is published/);
    hub.corrupt.delete('tiny-git.Q4_0.gguf');
  });

  it('pulls a plain URL, checked against #sha256 when given', async () => {
    const e = env();
    const url = `${hub.endpoint}/files/plain.gguf`;
    const r = await pullModel(url, { env: e });
    expect(r.path).toBe(join(e.HERMES3_MODELS, `urls/127.0.0.1_${new URL(hub.endpoint).port}/plain.gguf`));
    expect(r.record).toMatchObject({ ref: url, url, files: [{ size: SIZE, sha256: sha(files['small.Q8_0.gguf']) }] });
    expect((await pullModel(url, { env: e })).cached).toBe(true);
    await expect(pullModel(`${url}#sha256=${'0'.repeat(64)}`, { env: env() })).rejects.toThrow(IntegrityError);
    await expect(pullModel(`${hub.endpoint}/files/none.gguf`, { env: env() })).rejects.toThrow(new ModelNotFoundError(`there is no file at ${hub.endpoint}/files/none.gguf (HTTP 404); check the URL`));
  });

  it('validates its options', async () => {
    await expect(pullModel('hf:o/r', { retries: -1 })).rejects.toThrow('Invalid option retries for pullModel: expected an integer between 0 and 100, received -1 (number)');
    await expect(pullModel('hf:o/r', { onProgres: () => {} } as never)).rejects.toThrow('Unknown option onProgres for pullModel; check the spelling (options are camelCase)');
  });
});
