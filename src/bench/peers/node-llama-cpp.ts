/**
 * node-llama-cpp at the version that ships our llama.cpp commit (vendor/llama.cpp.pin.json),
 * installed on demand into the cache folder with its prebuilt binaries for this platform; never a
 * dependency of this package.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../../native/index.js';
import type { Samples } from '../figures.js';
import { PeerError } from '../proc.js';
import type { WorkerTask } from '../worker.js';
import type { Peer, PeerRun } from './peer.js';
import { runWorker } from './worker-child.js';

const exec = promisify(execFile);

/** node-llama-cpp's packages with prebuilt binaries for this platform (and its CUDA build, for a GPU run) */
function binaryPackages(gpu: boolean): string[] {
  const { platform, arch } = process;
  const cuda = gpu && arch === 'x64' && platform !== 'darwin' ? ['-cuda'] : [];
  if (platform === 'linux' && ['x64', 'arm64'].includes(arch)) return ['', ...cuda].map((s) => `@node-llama-cpp/linux-${arch}${s}`);
  if (platform === 'darwin') return [arch === 'arm64' ? '@node-llama-cpp/mac-arm64-metal' : '@node-llama-cpp/mac-x64'];
  if (platform === 'win32' && ['x64', 'arm64'].includes(arch)) return ['', ...cuda].map((s) => `@node-llama-cpp/win-${arch}${s}`);
  return [];
}

/** Installs node-llama-cpp into `<cache>/node-llama-cpp-<version>` unless it is there; returns its entry module. */
export async function installNodeLlamaCpp(cacheDir: string, gpu: boolean, log: (line: string) => void): Promise<{ entry: string; version: string }> {
  const pin = JSON.parse(readFileSync(join(packageRoot, 'vendor', 'llama.cpp.pin.json'), 'utf8')) as { package: string; version: string; commit: string };
  const { version } = pin;
  const dir = join(cacheDir, `node-llama-cpp-${version}`);
  const entry = join(dir, 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
  const binaries = binaryPackages(gpu);
  if (!binaries.length) throw new PeerError(`node-llama-cpp has no prebuilt binaries for ${process.platform}-${process.arch}; leave it out with --only`);
  const installed = (name: string) => existsSync(join(dir, 'node_modules', ...name.split('/'), 'package.json'));
  if (existsSync(entry) && binaries.every(installed)) return { entry, version };
  log(`installing node-llama-cpp@${version} (llama.cpp ${pin.commit.slice(0, 10)}) into ${dir}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, dependencies: Object.fromEntries(['node-llama-cpp', ...binaries].map((name) => [name, version])) }, null, 2) + '\n');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  try {
    // only this platform's binaries (the optional GPU packages are hundreds of MB), and no
    // postinstall: it would try to build llama.cpp when the prebuilt binaries do not load
    await exec(npm, ['install', '--prefix', dir, '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund'], { encoding: 'utf8', timeout: 600_000, shell: process.platform === 'win32' });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const why = (e.stderr ?? e.message).trim().split('\n').slice(-4).join(' ');
    throw new PeerError(`could not install node-llama-cpp@${version} into ${dir} (${why}); the npm registry must be reachable, or leave it out with --only`);
  }
  if (!existsSync(entry)) throw new PeerError(`npm installed node-llama-cpp@${version} into ${dir}, but ${entry} is missing; remove ${dir} and run again`);
  return { entry, version };
}

export function nodeLlamaCppPeer(): Peer {
  let entry = '';
  const peer: Peer = {
    name: 'node-llama-cpp',
    async prepare(run) {
      const r = await installNodeLlamaCpp(run.options.cacheDir, run.options.gpuLayers > 0, run.log);
      entry = r.entry;
      peer.about = { version: r.version };
    },
    async measure(run: PeerRun) {
      const samples: Samples = {};
      for (const task of ['speed', 'delay', 'concurrency'] as WorkerTask[]) {
        const spec = { engine: 'node-llama-cpp', entry, task, model: run.models.model, threads: run.options.threads, gpuLayers: run.options.gpuLayers, concurrency: run.options.concurrency } as const;
        const r = await runWorker<{ samples: Samples; about: Record<string, unknown> }>(spec, run, `node-llama-cpp (${task})`);
        Object.assign(samples, r.samples);
        peer.about = { ...peer.about, ...r.about };
      }
      return samples;
    },
  };
  return peer;
}
