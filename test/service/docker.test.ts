/**
 * deploy/Dockerfile and deploy/Dockerfile.cuda: well-formed instructions and the settings the
 * service needs. Building them needs the network (base images, the npm package), so no test builds
 * them; the HEALTHCHECK's script runs here against a stand-in /health.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from '../fixtures.js';

const INSTRUCTIONS = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Instructions with continuation lines joined and comments dropped, as docker's parser does. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line) || (line.trim() === '' && !pending)) return;
    const continued = line.endsWith('\\');
    const body = continued ? line.slice(0, -1) : line;
    pending = pending ? { text: `${pending.text} ${body.trim()}`, line: pending.line } : { text: body.trim(), line: i + 1 };
    if (continued) return;
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(pending.text);
    if (!m) throw new Error(`line ${pending.line}: not an instruction: ${pending.text}`);
    out.push({ keyword: m[1].toUpperCase(), args: m[2], line: pending.line });
    pending = undefined;
  });
  if (pending) throw new Error(`line ${pending.line}: a continuation runs past the end of the file`);
  return out;
}

/** An exec-form argument list (a JSON array of strings), or undefined for the shell form. */
function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  const value = JSON.parse(args) as unknown;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new Error(`not a JSON array of strings: ${args}`);
  return value;
}

for (const name of ['Dockerfile', 'Dockerfile.cuda']) {
  const path = join(root, 'deploy', name);
  describe(`deploy/${name}`, () => {
    const all = parseDockerfile(readFileSync(path, 'utf8'));
    const lastFrom = all.map((i) => i.keyword).lastIndexOf('FROM');
    const final = all.slice(lastFrom);
    const get = (keyword: string) => final.filter((i) => i.keyword === keyword);

    it('has well-formed instructions, FROM first', () => {
      for (const i of all) expect(INSTRUCTIONS.has(i.keyword), `line ${i.line}: ${i.keyword}`).toBe(true);
      expect(all[0].keyword).toBe('FROM');
      for (const i of all.filter((x) => ['CMD', 'ENTRYPOINT', 'HEALTHCHECK', 'VOLUME'].includes(x.keyword) && x.args.startsWith('['))) execForm(i.args);
      // COPY --from names an earlier stage or an image
      const stages = all.filter((i) => i.keyword === 'FROM').map((i) => / AS (\S+)$/i.exec(i.args)?.[1]).filter(Boolean);
      for (const i of all.filter((x) => x.keyword === 'COPY' && x.args.startsWith('--from='))) {
        const from = /^--from=(\S+)/.exec(i.args)![1];
        expect(stages.includes(from) || from.includes(':'), `line ${i.line}: --from=${from}`).toBe(true);
      }
    });

    it('runs hermes3 serve on 0.0.0.0 with the config, as a user that is not root', () => {
      const cmd = execForm(get('CMD').at(-1)!.args)!;
      expect(cmd.slice(0, 2)).toEqual(['hermes3', 'serve']);
      expect(cmd[cmd.indexOf('--host') + 1]).toBe('0.0.0.0');
      const config = cmd[cmd.indexOf('--config') + 1];
      // the config it names is put there, from a file in the build context (deploy/)
      const copy = get('COPY').find((i) => i.args.endsWith(` ${config}`));
      expect(copy, `a COPY to ${config}`).toBeDefined();
      expect(existsSync(join(root, 'deploy', copy!.args.split(/\s+/)[0]))).toBe(true);
      const user = get('USER').at(-1)?.args;
      expect(user).toBeDefined();
      expect(['root', '0', '0:0']).not.toContain(user);
      expect(get('EXPOSE').map((i) => i.args)).toContain('8080');
      expect(get('VOLUME').map((i) => i.args).join(' ')).toContain('/var/lib/hermes3/models');
      expect(get('ENV').map((i) => i.args).join(' ')).toContain('HERMES3_MODELS=/var/lib/hermes3/models');
    });

    it('checks its health on /health with node (slim images have no curl)', () => {
      const check = get('HEALTHCHECK').at(-1)!.args;
      const cmd = execForm(check.slice(check.indexOf('CMD') + 3).trim())!;
      expect(cmd[0]).toBe('node');
      expect(cmd.join(' ')).toContain('http://127.0.0.1:8080/health');
    });
  });
}

describe('the HEALTHCHECK script', () => {
  let status = 200;
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === '/health' ? status : 404, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const check = parseDockerfile(readFileSync(join(root, 'deploy', 'Dockerfile'), 'utf8')).find((i) => i.keyword === 'HEALTHCHECK')!.args;
  const [, flag, script] = execForm(check.slice(check.indexOf('CMD') + 3).trim())!;
  // spawned, not spawnSync: the stand-in server answers from this process's event loop
  const run = (url: string) =>
    new Promise<number | null>((resolve) => {
      spawn(process.execPath, [flag, script.replace('http://127.0.0.1:8080', url)], { stdio: 'ignore', timeout: 10_000 }).once('exit', (code) => resolve(code));
    });

  it('exits 0 when /health answers 200, 1 otherwise or when nothing listens', async () => {
    status = 200;
    expect(await run(`http://127.0.0.1:${port}`)).toBe(0);
    status = 503;
    expect(await run(`http://127.0.0.1:${port}`)).toBe(1);
    expect(await run('http://127.0.0.1:1')).toBe(1);
  });
});

const docker = spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8', timeout: 10_000 });
const reason = docker.error
  ? 'docker is not installed'
  : docker.status !== 0
    ? 'docker has no daemon to talk to'
    : 'a build pulls base images from Docker Hub and hermes3-native from npm, and this run is offline';
describe('docker build', () => {
  it.skip(`not run: ${reason}`, () => {});
});
