/**
 * A local stand-in for the Hugging Face Hub: the tree API (paged, with LFS sizes and SHA-256),
 * /resolve/ answering a 302 to a CDN on another origin (another port) that serves the bytes
 * with Range support, 404s with the Hub's X-Error-Code, and a gated repository that needs a
 * token. Faults on demand: a connection cut after K bytes (at once, or once the client holds
 * them), a transfer that stalls, wrong bytes.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeFile {
  path: string;
  body: Buffer;
  /** kept in git rather than LFS: listed with a git blob id only */
  git?: boolean;
}

export interface FakeRepo {
  /** files by revision; 'main' at least */
  revisions: Record<string, FakeFile[]>;
  gated?: boolean;
}

export interface LoggedRequest {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

interface Blob {
  body: Buffer;
  sha256: string;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  readonly log: LoggedRequest[] = [];
  /** served bytes, for plain URL references: /files/NAME */
  readonly urlFiles = new Map<string, Buffer>();
  /** cut the connection after this many bytes of the file, `times` times */
  readonly cuts = new Map<string, { after: number; times: number }>();
  /** send this many bytes of the file, then wait for `release` */
  readonly stalls = new Map<string, { after: number; reached: () => void; release: Promise<'release' | 'cut'> }>();
  /** file names served with a wrong byte */
  readonly corrupt = new Set<string>();
  /** answer Range requests with the whole file (200), as some servers do */
  ignoreRange = false;
  token = 'hf_secret';
  pageSize = 4;
  endpoint = '';
  cdn = '';
  private hub?: Server;
  private cdnServer?: Server;
  private blobs = new Map<string, Blob>();

  async start(): Promise<this> {
    this.hub = createServer((req, res) => this.onHub(req, res));
    this.cdnServer = createServer((req, res) => this.onCdn(req, res));
    for (const s of [this.hub, this.cdnServer]) {
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
    }
    this.endpoint = `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
    this.cdn = `http://127.0.0.1:${(this.cdnServer.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const s of [this.hub, this.cdnServer]) {
      s?.closeAllConnections();
      await new Promise((r) => s?.close(r));
    }
  }

  addRepo(id: string, files: FakeFile[], extra: Partial<FakeRepo> = {}): void {
    this.repos.set(id, { revisions: { main: files }, ...extra });
  }

  /**
   * Makes the next transfer of `file` stop after `after` bytes until `release` (send the rest) or
   * `cut` (close the connection) is called.
   */
  stall(file: string, after: number): { reached: Promise<void>; release: () => void; cut: () => void } {
    let reached!: () => void;
    let settle!: (how: 'release' | 'cut') => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    const how = new Promise<'release' | 'cut'>((r) => (settle = r));
    this.stalls.set(file, { after, reached, release: how });
    return { reached: reachedP, release: () => settle('release'), cut: () => settle('cut') };
  }

  requests(server: 'hub' | 'cdn', method = 'GET'): LoggedRequest[] {
    return this.log.filter((r) => r.server === server && r.method === method);
  }

  private record(server: 'hub' | 'cdn', req: IncomingMessage): void {
    this.log.push({ server, method: req.method!, path: req.url!, range: req.headers.range, authorization: req.headers.authorization });
  }

  private authorized(req: IncomingMessage): boolean {
    return req.headers.authorization === `Bearer ${this.token}`;
  }

  private onHub(req: IncomingMessage, res: ServerResponse): void {
    this.record('hub', req);
    const url = new URL(req.url!, this.endpoint);
    const fail = (status: number, code: string) => {
      res.writeHead(status, { 'x-error-code': code, 'content-type': 'application/json' }).end(JSON.stringify({ error: code }));
    };
    const file = /^\/files\/(.+)$/.exec(url.pathname);
    if (file) {
      const body = this.urlFiles.get(decodeURIComponent(file[1]));
      if (!body) return fail(404, 'EntryNotFound');
      return this.serve(req, res, decodeURIComponent(file[1]), body);
    }
    const tree = /^\/api\/models\/([^/]+)\/([^/]+)\/tree\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const m = tree ?? resolve;
    if (!m) return fail(404, 'NotFound');
    const repo = this.repos.get(`${m[1]}/${m[2]}`);
    if (!repo) return fail(404, 'RepoNotFound');
    const files = repo.revisions[decodeURIComponent(m[3])];
    if (!files) return fail(404, 'RevisionNotFound');
    if (tree) {
      // the Hub lists folders too, and pages long listings with a Link header
      const folders = new Set(files.flatMap((f) => f.path.split('/').slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join('/'))));
      const entries = [
        ...[...folders].map((path) => ({ type: 'directory', oid: '0'.repeat(40), size: 0, path })),
        ...files.map((f) =>
          f.git
            ? { type: 'file', oid: gitSha1(f.body), size: f.body.length, path: f.path }
            : { type: 'file', oid: gitSha1(Buffer.from('pointer')), size: f.body.length, path: f.path, lfs: { oid: sha256(f.body), size: f.body.length, pointerSize: 134 } },
        ),
      ];
      const cursor = Number(url.searchParams.get('cursor') ?? 0);
      const page = entries.slice(cursor, cursor + this.pageSize);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (cursor + this.pageSize < entries.length) {
        headers.link = `<${this.endpoint}${url.pathname}?recursive=true&cursor=${cursor + this.pageSize}>; rel="next"`;
      }
      return void res.writeHead(200, headers).end(JSON.stringify(page));
    }
    if (repo.gated && !this.authorized(req)) return fail(401, 'GatedRepo');
    const path = decodeURIComponent(m[4]);
    const f = files.find((x) => x.path === path);
    if (!f) return fail(404, 'EntryNotFound');
    const key = sha256(f.body);
    this.blobs.set(key, { body: f.body, sha256: key });
    res.writeHead(302, { location: `${this.cdn}/blobs/${key}?name=${encodeURIComponent(path)}` }).end();
  }

  private onCdn(req: IncomingMessage, res: ServerResponse): void {
    this.record('cdn', req);
    const url = new URL(req.url!, this.cdn);
    const blob = this.blobs.get(url.pathname.replace('/blobs/', ''));
    if (!blob) return void res.writeHead(404).end();
    this.serve(req, res, url.searchParams.get('name')!, blob.body);
  }

  /** Serves bytes with Range support and the faults set for `name`. */
  private serve(req: IncomingMessage, res: ServerResponse, name: string, original: Buffer): void {
    let body = original;
    if (this.corrupt.has(name)) {
      body = Buffer.from(original);
      body[body.length >> 1] ^= 0xff;
    }
    let start = 0;
    const range = this.ignoreRange ? null : /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= body.length) return void res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'accept-ranges': 'bytes' });
    } else {
      res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
    }
    if (req.method === 'HEAD') return void res.end();
    const cut = this.cuts.get(name);
    if (cut && cut.times > 0 && cut.after > start) {
      cut.times--;
      res.write(body.subarray(start, cut.after), () => res.destroy());
      return;
    }
    const stall = this.stalls.get(name);
    if (stall && stall.after > start) {
      this.stalls.delete(name);
      res.write(body.subarray(start, stall.after), () => {
        stall.reached();
        void stall.release.then((how) => {
          if (how === 'cut') res.destroy();
          else if (!res.destroyed) res.end(body.subarray(stall.after));
        });
      });
      return;
    }
    res.end(body.subarray(start));
  }
}
