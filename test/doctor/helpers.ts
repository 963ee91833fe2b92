/** Synthetic machine facts: the hardware cases the doctor explains, without that hardware. */
import type { BackendInfo, DeviceInfo } from '../../src/engine/backends.js';
import type { MachineFacts } from '../../src/doctor/types.js';

const GiB = 2 ** 30;
const ZEN4 = ['SSE3', 'SSSE3', 'AVX', 'AVX2', 'F16C', 'FMA', 'BMI2', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI', 'AVX512_BF16', 'LLAMAFILE', 'REPACK'];
export const ZEN4_FLAGS = 'fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c bmi1 avx2 bmi2 avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vnni'.split(' ');
export const SPR_FLAGS = [...ZEN4_FLAGS, 'avx_vnni', 'amx_bf16', 'amx_tile', 'amx_int8'];

export const cpuDevice = (freeBytes = 20 * GiB, totalBytes = 24 * GiB): DeviceInfo => ({ name: 'CPU', description: 'Test CPU', type: 'cpu', backend: 'CPU', freeBytes, totalBytes });

export function backends(features: string[] = ZEN4, extra: { backends?: string[]; devices?: DeviceInfo[]; variant?: string } = {}): BackendInfo {
  return {
    backends: [{ name: 'CPU', features: Object.fromEntries(features.map((f) => [f, '1'])) }, ...(extra.backends ?? []).map((name) => ({ name, features: {} }))],
    devices: extra.devices ?? [cpuDevice()],
    cpu: { variant: extra.variant ?? 'zen4', features },
    dynamic: false,
  };
}

type Overrides = Omit<Partial<MachineFacts>, 'nvidia' | 'cpu'> & { nvidia?: Partial<MachineFacts['nvidia']>; cpu?: Partial<MachineFacts['cpu']> };

/** A CPU-only Linux x64 machine with a clang source build and nothing else, changed by `overrides`. */
export function facts(overrides: Overrides = {}): MachineFacts {
  const base: MachineFacts = {
    platform: 'linux',
    arch: 'x64',
    addon: {
      loaded: true,
      path: '/pkg/build/Release/hermes3.node',
      backends: backends(),
      system: { llamaCommit: 'x', systemInfo: '', supportsGpuOffload: false, supportsMmap: true, supportsMlock: true, maxDevices: 16, hardwareConcurrency: 4 },
    },
    sourceCheckout: true,
    build: {
      dir: '/pkg/build',
      cache: { HERMES3_CUDA: 'OFF', HERMES3_NATIVE: 'ON' },
      compiler: { id: 'Clang', version: '16.0.6', path: '/usr/bin/clang++-16', source: 'CMakeCXXCompiler.cmake' },
      cCompiler: { id: 'Clang', version: '16.0.6', path: '/usr/bin/clang-16', source: 'CMakeCCompiler.cmake' },
    },
    backendLibraries: [],
    nvidia: { libcuda: false },
    amdKfd: false,
    vulkanLoader: false,
    cpu: { model: 'Test CPU', flags: ZEN4_FLAGS, logicalCores: 4, physicalCores: 4 },
    memory: { totalBytes: 24 * GiB, availableBytes: 20 * GiB },
    loadAverage: 0,
  };
  return { ...base, ...overrides, nvidia: { ...base.nvidia, ...overrides.nvidia }, cpu: { ...base.cpu, ...overrides.cpu } };
}

/** The same build with GCC as its compiler. */
export function gccBuild(version: string): MachineFacts['build'] {
  const gcc = (path: string) => ({ id: 'GNU', version, path, source: 'CMakeCCompiler.cmake' });
  return { dir: '/pkg/build', cache: { HERMES3_NATIVE: 'ON' }, compiler: gcc('/usr/bin/g++'), cCompiler: gcc('/usr/bin/gcc') };
}
