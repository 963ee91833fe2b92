/**
 * The machine and install facts the doctor's checks read, gathered in one place so that the
 * checks are pure functions of them (and tests can hand them synthetic facts: an NVIDIA driver
 * without a CUDA build, an AMD GPU, a Mac without Metal).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { availableRam, getBackendInfo } from '../engine/backends.js';
import { physicalCores } from '../engine/threads.js';
import { addonPath, getAddon, packageRoot } from '../native/index.js';
import type { BuildFacts, CompilerFacts, MachineFacts } from './types.js';

const run = promisify(execFile);

function firstLine(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').split('\n')[0].trim() || undefined;
  } catch {
    return undefined;
  }
}

/** An executable on PATH, or undefined. */
export function onPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The shared libraries the dynamic linker knows (`ldconfig -p`), by file name; empty where there is no ldconfig. */
async function linkerLibraries(): Promise<Set<string>> {
  if (process.platform !== 'linux') return new Set();
  for (const ldconfig of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    try {
      const { stdout } = await run(ldconfig, ['-p'], { timeout: 5000, maxBuffer: 16 * 1024 * 1024 });
      return new Set([...stdout.matchAll(/^\s*(\S+)\s+\(/gm)].map((m) => m[1]));
    } catch {
      // try the next spelling
    }
  }
  return new Set();
}

// where distributions put the driver's libcuda when ldconfig does not list it (WSL, containers)
const LIBCUDA_PATHS = ['/usr/lib/x86_64-linux-gnu/libcuda.so.1', '/usr/lib64/libcuda.so.1', '/usr/lib/aarch64-linux-gnu/libcuda.so.1', '/usr/lib/wsl/lib/libcuda.so.1'];

/** CMakeCache.txt entries: `NAME:TYPE=VALUE` lines. */
export function parseCMakeCache(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][\w.-]*):[A-Z_]+=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/** The compiler CMake detected for a language, from CMakeFiles/<version>/CMake<LANG>Compiler.cmake. */
function detectedCompiler(buildDir: string, lang: 'C' | 'CXX', cache: Record<string, string>): CompilerFacts | undefined {
  const cached = cache[`CMAKE_${lang}_COMPILER`] ?? cache[lang === 'C' ? 'PREFERRED_CLANG' : 'PREFERRED_CLANGXX'];
  let dirs: string[] = [];
  try {
    dirs = readdirSync(join(buildDir, 'CMakeFiles')).filter((d) => /^\d+\.\d+/.test(d));
  } catch {
    // no CMakeFiles folder
  }
  for (const d of dirs.sort().reverse()) {
    const file = join(buildDir, 'CMakeFiles', d, `CMake${lang}Compiler.cmake`);
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const get = (key: string) => new RegExp(`^set\\(CMAKE_${lang}_${key} "([^"]*)"\\)`, 'm').exec(text)?.[1] || undefined;
    return { id: get('COMPILER_ID'), version: get('COMPILER_VERSION'), path: get('COMPILER') ?? cached, source: file };
  }
  return cached ? { path: cached, source: join(buildDir, 'CMakeCache.txt') } : undefined;
}

/** The CMake build a source-built addon came from: `<build>/Release/hermes3.node` -> `<build>/CMakeCache.txt`. */
export function readBuildFacts(buildDir: string): BuildFacts | undefined {
  const file = join(buildDir, 'CMakeCache.txt');
  if (!existsSync(file)) return undefined;
  const cache = parseCMakeCache(readFileSync(file, 'utf8'));
  return { dir: buildDir, cache, compiler: detectedCompiler(buildDir, 'CXX', cache), cCompiler: detectedCompiler(buildDir, 'C', cache) };
}

function cpuFacts(): MachineFacts['cpu'] {
  const logicalCores = availableParallelism();
  let flags: string[] = [];
  let model: string | undefined;
  if (process.platform === 'linux') {
    try {
      const text = readFileSync('/proc/cpuinfo', 'utf8');
      flags = (/^(?:flags|Features)\s*:\s*(.*)$/m.exec(text)?.[1] ?? '').split(/\s+/).filter(Boolean);
      model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1]?.trim();
    } catch {
      // no /proc
    }
  }
  return { model, flags, logicalCores, physicalCores: physicalCores() };
}

/** Gathers the facts every check reads: the addon and its backends, GPU drivers, the CPU, memory, the build. */
export async function gatherFacts(): Promise<MachineFacts> {
  let addon: MachineFacts['addon'];
  try {
    const native = getAddon();
    const raw = native.backendInfo();
    addon = { loaded: true, path: addonPath(), backends: getBackendInfo(), system: native.systemInfo(), backendDir: raw.directory };
  } catch (err) {
    addon = { loaded: false, error: (err as Error).message };
  }
  // the build folder describes the addon only when the addon came from it (not a prebuild)
  const loadedFrom = addon.loaded ? addon.path : undefined;
  const buildDir = loadedFrom ? (/[\\/]prebuilds[\\/]/.test(loadedFrom) ? undefined : dirname(dirname(loadedFrom))) : join(packageRoot, 'build');
  const backendDir = addon.loaded ? (addon.backendDir ?? (loadedFrom ? dirname(loadedFrom) : undefined)) : undefined;
  let backendLibraries: string[] = [];
  try {
    if (backendDir) backendLibraries = readdirSync(backendDir).filter((f) => /ggml-[\w-]+\.(so|dylib|dll)/.test(f));
  } catch {
    // unreadable folder
  }
  const libs = await linkerLibraries();
  return {
    platform: process.platform,
    arch: process.arch,
    addon,
    sourceCheckout: existsSync(join(packageRoot, 'vendor', 'llama.cpp')),
    build: buildDir ? readBuildFacts(buildDir) : undefined,
    backendLibraries,
    nvidia: {
      driverVersion: firstLine('/proc/driver/nvidia/version'),
      smi: onPath(process.platform === 'win32' ? 'nvidia-smi.exe' : 'nvidia-smi'),
      libcuda: libs.has('libcuda.so.1') || LIBCUDA_PATHS.some((p) => existsSync(p)),
      visibleDevices: process.env.CUDA_VISIBLE_DEVICES,
    },
    amdKfd: existsSync('/dev/kfd'),
    vulkanLoader: libs.has('libvulkan.so.1'),
    cpu: cpuFacts(),
    memory: { totalBytes: totalmem(), availableBytes: availableRam() },
    loadAverage: loadavg()[0] ?? 0,
  };
}
