/** What this build and machine offer: backends, devices and their memory, CPU features. */
import { freemem, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { getAddon } from '../native/index.js';
import { rpcDevices } from './rpc.js';

export interface DeviceInfo {
  name: string;
  description: string;
  type: 'cpu' | 'gpu' | 'igpu' | 'accel' | 'unknown';
  backend: string;
  freeBytes: number;
  totalBytes: number;
}

/** The GPUs llama.cpp offloads layers to: the discrete ones, or the integrated ones when there is none. */
export function offloadGpus<D extends Pick<DeviceInfo, 'type'>>(devices: readonly D[]): D[] {
  const discrete = devices.filter((d) => d.type === 'gpu');
  return discrete.length > 0 ? discrete : devices.filter((d) => d.type === 'igpu');
}

/**
 * The device's memory is the host's RAM, so what it holds is not free RAM as well: an integrated
 * GPU, Apple Silicon's Metal GPU, or a GPU that reports the host's RAM as its total memory.
 */
export function sharesHostMemory(device: Pick<DeviceInfo, 'type' | 'backend' | 'description' | 'totalBytes'>, host: Pick<DeviceInfo, 'totalBytes'> | undefined): boolean {
  if (device.type === 'igpu') return true;
  if (device.type !== 'gpu') return false;
  if (device.backend === 'MTL' && /\bApple\b/i.test(device.description)) return true;
  return host !== undefined && device.totalBytes === host.totalBytes;
}

export interface BackendInfo {
  backends: Array<{ name: string; features: Record<string, string> }>;
  devices: DeviceInfo[];
  /**
   * The CPU code in use: the features it was compiled for, and the ggml variant they make up
   * (with run-time loaded backends, the best variant this CPU supports was loaded).
   */
  cpu: { variant: string | undefined; features: string[] };
  /** backends are libraries loaded at run time (prebuilds), not linked in (source builds) */
  dynamic: boolean;
  /**
   * run-time loaded builds: each backend library beside the addon and what became of it:
   * 'loaded' (a GPU backend, RPC), 'cpu' (the CPU variant in use), 'not used' (a CPU variant for
   * other CPUs), 'failed' with the reason (e.g. a CUDA backend whose driver library is missing)
   */
  libraries?: Array<{ file: string; status: 'loaded' | 'cpu' | 'not used' | 'failed'; reason?: string }>;
}

// ggml's x64 CPU variants and the features each is compiled with (GGML_CPU_ALL_VARIANTS)
const X64_VARIANTS: Array<[string, string[]]> = [
  ['x64', []],
  ['sse42', ['SSE42']],
  ['sandybridge', ['SSE42', 'AVX']],
  ['ivybridge', ['SSE42', 'AVX', 'F16C']],
  ['piledriver', ['SSE42', 'AVX', 'F16C', 'FMA']],
  ['haswell', ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2']],
  ['alderlake', ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX_VNNI']],
  ['skylakex', ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512']],
  ['cannonlake', ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VBMI']],
  ['cascadelake', ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VNNI']],
  ['icelake', ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI']],
  ['cooperlake', ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VNNI', 'AVX512_BF16']],
  ['zen4', ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI', 'AVX512_BF16']],
  ['sapphirerapids', ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI', 'AVX512_BF16', 'AMX_INT8']],
];

/** The x64 variant whose feature set is the largest one contained in `features`. */
export function cpuVariant(features: readonly string[]): string | undefined {
  if (process.arch !== 'x64') return undefined;
  const have = new Set(features);
  // SSE4.2 is reported as SSE3/SSSE3 by older builds: any SIMD at all implies it here
  if (have.has('AVX') || have.has('SSSE3')) have.add('SSE42');
  let best: [string, string[]] | undefined;
  for (const v of X64_VARIANTS) if (v[1].every((f) => have.has(f)) && (!best || v[1].length > best[1].length)) best = v;
  return best?.[0];
}

/** Memory the system can give without swapping (MemAvailable on Linux). */
export function availableRam(): number {
  if (process.platform === 'linux') {
    try {
      const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
      if (m) return Number(m[1]) * 1024;
    } catch {
      // fall back below
    }
  }
  return freemem();
}

/**
 * Backends, devices with their free and total memory, and the CPU features compiled in. With
 * `rpcServers`, a promise that also lists the devices of those rpc-servers (first, as a model
 * loaded with them orders them), their memory read over RPC.
 */
export function getBackendInfo(): BackendInfo;
export function getBackendInfo(options: { rpcServers: readonly string[] }): Promise<BackendInfo>;
export function getBackendInfo(options?: { rpcServers?: readonly string[] }): BackendInfo | Promise<BackendInfo> {
  const local = localBackendInfo();
  if (!options?.rpcServers?.length) return local;
  return rpcDevices(options.rpcServers).then((remote) => ({ ...local, devices: [...remote, ...local.devices] }));
}

function localBackendInfo(): BackendInfo {
  const raw = getAddon().backendInfo();
  const devices = raw.devices.map((d) =>
    // ggml reports all of RAM as free for the CPU; what matters is what the system can spare
    d.type === 'cpu' ? { ...d, freeBytes: availableRam(), totalBytes: totalmem() } : d,
  ) as DeviceInfo[];
  const cpu = raw.backends.find((b) => b.name === 'CPU');
  const features = Object.entries(cpu?.features ?? {})
    .filter(([, v]) => v === '1')
    .map(([k]) => k);
  const variant = cpuVariant(features);
  const names = new Set(raw.backends.map((b) => b.name.toLowerCase()));
  const libraries = raw.libraries?.map((l) => {
    const m = /^libggml-([a-z0-9_-]+?)(?:\.so.*|\.dylib|\.dll)$/i.exec(l.file);
    const name = m?.[1].toLowerCase() ?? l.file;
    if (l.error) return { file: l.file, status: 'failed' as const, reason: l.error };
    if (name.startsWith('cpu')) return { file: l.file, status: name === `cpu-${variant}` || name === 'cpu' ? ('cpu' as const) : ('not used' as const) };
    if (name === 'base' || name === '') return { file: l.file, status: 'loaded' as const };
    return { file: l.file, status: names.has(name) ? ('loaded' as const) : ('not used' as const) };
  });
  return { backends: raw.backends, devices, cpu: { variant, features }, dynamic: raw.dynamic, ...(libraries ? { libraries } : {}) };
}
