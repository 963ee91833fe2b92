// The install and hardware checks on synthetic facts: each GPU and CPU case without its hardware.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkAmx, checkCompiler, checkCpuVariant, cpuFeatures } from '../../src/doctor/cpu.js';
import { gatherFacts, parseCMakeCache, readBuildFacts } from '../../src/doctor/facts.js';
import { checkBackends, checkGpus } from '../../src/doctor/gpu.js';
import { rebuildCommand } from '../../src/doctor/rebuild.js';
import { bytesPerToken, judgeSpeed, type SpeedMeasurement } from '../../src/doctor/speed.js';
import { doctor, type Finding } from '../../src/index.js';
import { SPR_FLAGS, ZEN4_FLAGS, backends, cpuDevice, facts, gccBuild } from './helpers.js';

const byId = (findings: Finding[], id: string) => findings.find((f) => f.id === id);
const GiB = 2 ** 30;

describe('doctor: backends and GPUs', () => {
  it('finds nothing wrong on a CPU-only machine', () => {
    const f = facts();
    expect(checkBackends(f)).toMatchObject({ id: 'backends', status: 'ok' });
    expect(checkGpus(f)).toEqual([expect.objectContaining({ id: 'gpu', status: 'ok', title: 'no GPU expected' })]);
  });

  it('an NVIDIA driver without a CUDA backend: the exact rebuild command', () => {
    const f = facts({ nvidia: { driverVersion: 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.82.07', smi: '/usr/bin/nvidia-smi', libcuda: true } });
    const [cuda] = checkGpus(f);
    expect(cuda).toMatchObject({ id: 'gpu.cuda', status: 'warn', title: 'an NVIDIA driver is present, but this install has no CUDA backend' });
    expect(cuda.detail).toContain('/proc/driver/nvidia/version (NVRM version');
    expect(cuda.detail).toContain('nvidia-smi at /usr/bin/nvidia-smi');
    expect(cuda.fix).toContain('this install has no CUDA backend: rebuild with HERMES3_CUDA=1 npm run build:native');
    // an installed package: install.mjs keeps a prebuild that loads unless told to build
    const installed = checkGpus({ ...f, sourceCheckout: false, build: undefined })[0];
    expect(installed.fix).toContain('rebuild with HERMES3_BUILD_FROM_SOURCE=1 HERMES3_CUDA=1 npm rebuild hermes3-native');
    // any one sign of the driver is enough
    expect(checkGpus(facts({ nvidia: { libcuda: true } }))[0]).toMatchObject({ id: 'gpu.cuda', status: 'warn' });
  });

  it('the whole report carries the GPU finding, and exits with warnings only', async () => {
    const findings = await doctor({ facts: facts({ nvidia: { smi: '/usr/bin/nvidia-smi' } }) });
    expect(findings.map((f) => f.id)).toEqual(['backends', 'gpu.cuda', 'cpu.variant', 'cpu.compiler', 'cpu.amx']);
    expect(byId(findings, 'gpu.cuda')?.status).toBe('warn');
    for (const f of findings) if (f.status !== 'ok') expect(f.fix).toBeTruthy();
  });

  it('a CUDA backend built without the driver library: install the driver', () => {
    // run-time loaded backends: libggml-cuda.so is there but cannot load without libcuda.so.1
    const dl = checkGpus(facts({ backendLibraries: ['libggml-cpu-zen4.so', 'libggml-cuda.so'] }))[0];
    expect(dl).toMatchObject({ id: 'gpu.cuda', status: 'warn', title: "the CUDA backend is built but the NVIDIA driver's library is missing" });
    expect(dl.detail).toContain('libggml-cuda in the addon folder');
    expect(dl.fix).toMatch(/^install the NVIDIA driver/);
    // linked in: the addon itself fails to load
    const linked = checkGpus(facts({ addon: { loaded: false, error: 'libcuda.so.1: cannot open shared object file' }, build: { dir: '/b', cache: { HERMES3_CUDA: 'ON' } } }))[0];
    expect(linked).toMatchObject({ id: 'gpu.cuda', status: 'fail' });
    expect(linked.detail).toContain('so the addon does not load');
  });

  it('a loaded CUDA backend with devices is ok; one without devices says where they went', () => {
    const gpu = { name: 'CUDA0', description: 'NVIDIA H200', type: 'gpu' as const, backend: 'CUDA', freeBytes: 140 * GiB, totalBytes: 141 * GiB };
    const withGpu = facts({ nvidia: { libcuda: true, smi: '/usr/bin/nvidia-smi' }, addon: { ...(facts().addon as object), backends: backends(undefined, { backends: ['CUDA'], devices: [cpuDevice(), gpu] }) } as MachineAddon });
    expect(checkGpus(withGpu)).toEqual([expect.objectContaining({ id: 'gpu.cuda', status: 'ok', detail: expect.stringContaining('NVIDIA H200') })]);
    const none = facts({ nvidia: { libcuda: true }, addon: { ...(facts().addon as object), backends: backends(undefined, { backends: ['CUDA'] }) } as MachineAddon });
    expect(checkGpus(none)[0]).toMatchObject({ id: 'gpu.cuda', status: 'warn', title: 'the CUDA backend is loaded but sees no GPU' });
  });

  it('an AMD GPU without HIP or Vulkan, a Vulkan loader without the backend, a Mac without Metal', () => {
    const amd = checkGpus(facts({ amdKfd: true, vulkanLoader: true }));
    expect(amd).toHaveLength(1);
    expect(amd[0]).toMatchObject({ id: 'gpu.amd', status: 'warn' });
    expect(amd[0].fix).toContain('HERMES3_VULKAN=1 npm run build:native');
    const vulkan = checkGpus(facts({ vulkanLoader: true }));
    expect(vulkan[0]).toMatchObject({ id: 'gpu.vulkan', status: 'info' });
    expect(vulkan[0].fix).toContain('HERMES3_VULKAN=1 npm run build:native');
    const mac = checkGpus(facts({ platform: 'darwin', arch: 'arm64', build: { dir: '/b', cache: { HERMES3_METAL: 'OFF', HERMES3_NATIVE: 'ON' } } }));
    expect(mac[0]).toMatchObject({ id: 'gpu.metal', status: 'warn', fix: 'rebuild with Metal: HERMES3_METAL=1 npm run build:native' });
  });

  it('an addon that does not load is a failure with its own fix', () => {
    const error = 'the hermes3-native addon could not be loaded for linux-x64. Tried: x. Cause: y. To fix: run `npm run build:native` in the package folder to rebuild it.';
    expect(checkBackends(facts({ addon: { loaded: false, error } }))).toMatchObject({ status: 'fail', fix: 'run `npm run build:native` in the package folder to rebuild it.' });
  });
});

type MachineAddon = ReturnType<typeof facts>['addon'];

describe('doctor: CPU and build', () => {
  it('maps cpuinfo flags to ggml features and variants', () => {
    expect(cpuFeatures(ZEN4_FLAGS)).toEqual(['SSSE3', 'SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI', 'AVX512_BF16']);
    expect(checkCpuVariant(facts())).toMatchObject({ id: 'cpu.variant', status: 'ok', data: { inUse: 'zen4', best: 'zen4' } });
  });

  it('warns when the build is below what the CPU can do (no AVX-512 on an AVX-512 machine)', () => {
    const haswell = ['SSE3', 'SSSE3', 'AVX', 'AVX2', 'F16C', 'FMA', 'BMI2'];
    const f = facts({ addon: { ...(facts().addon as object), backends: backends(haswell, { variant: 'haswell' }) } as MachineAddon, build: { dir: '/b', cache: { HERMES3_NATIVE: 'OFF', HERMES3_CUDA: 'ON' } } });
    const v = checkCpuVariant(f);
    expect(v).toMatchObject({ status: 'warn', title: 'the CPU code in use (haswell) is below what this CPU can do (zen4)' });
    expect(v.detail).toContain('Not compiled in: AVX512, AVX512_VBMI, AVX512_VNNI, AVX512_BF16');
    // the rebuild keeps the CUDA backend the build has
    expect(v.fix).toContain('HERMES3_CUDA=1 HERMES3_NATIVE=1 npm run build:native');
  });

  it('names the compiler from CMake, or says it is unknown', () => {
    expect(checkCompiler(facts())).toMatchObject({ status: 'ok', title: 'built with Clang 16.0.6' });
    const unknown = checkCompiler(facts({ build: undefined, addon: { ...(facts().addon as object), path: '/app/node_modules/hermes3-native/prebuilds/linux-x64/hermes3.node' } as MachineAddon }));
    expect(unknown).toMatchObject({ status: 'info', title: 'compiler unknown' });
    expect(unknown.detail).toContain('prebuilt addon');
    expect(unknown.fix).toBeTruthy();
  });

  it('reads the compiler of a build folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'doctor-build-'));
    writeFileSync(join(dir, 'CMakeCache.txt'), '// comment\nHERMES3_CUDA:BOOL=ON\nPREFERRED_CLANG:FILEPATH=/usr/bin/clang-16\nGGML_NATIVE:BOOL=ON\n');
    expect(readBuildFacts(dir)).toMatchObject({ cache: { HERMES3_CUDA: 'ON' }, cCompiler: { path: '/usr/bin/clang-16', source: join(dir, 'CMakeCache.txt') } });
    mkdirSync(join(dir, 'CMakeFiles', '3.25.1'), { recursive: true });
    writeFileSync(join(dir, 'CMakeFiles', '3.25.1', 'CMakeCCompiler.cmake'), 'set(CMAKE_C_COMPILER "/usr/bin/gcc-12")\nset(CMAKE_C_COMPILER_ID "GNU")\nset(CMAKE_C_COMPILER_VERSION "12.2.0")\n');
    expect(readBuildFacts(dir)?.cCompiler).toMatchObject({ id: 'GNU', version: '12.2.0', path: '/usr/bin/gcc-12' });
    expect(parseCMakeCache('A:BOOL=ON\n# x\nB:STRING=\n')).toEqual({ A: 'ON', B: '' });
  });

  it('AMX: in use, left out by GCC 12, miscompiled by GCC 12, absent', () => {
    const sprFeatures = [...backends().cpu.features, 'AMX_INT8'];
    const spr = { ...(facts().addon as object), backends: backends(sprFeatures, { variant: 'sapphirerapids' }) } as MachineAddon;
    expect(checkAmx(facts({ cpu: { flags: SPR_FLAGS }, addon: spr }))).toMatchObject({ status: 'ok', title: 'AMX in use' });
    const leftOut = checkAmx(facts({ cpu: { flags: SPR_FLAGS }, build: gccBuild('12.2.0') }));
    expect(leftOut).toMatchObject({ status: 'warn', title: 'this CPU has AMX, but the build does not use it' });
    expect(leftOut?.detail).toContain('GCC 12.2.0 miscompiles');
    expect(leftOut?.fix).toContain('apt-get install clang-16');
    const broken = checkAmx(facts({ cpu: { flags: SPR_FLAGS }, addon: spr, build: gccBuild('12.2.0') }));
    expect(broken).toMatchObject({ status: 'fail', title: 'AMX code built by GCC 12.2.0' });
    expect(broken?.detail).toContain('SIGILL');
    expect(checkAmx(facts())).toMatchObject({ status: 'ok', title: 'no AMX on this CPU' });
    expect(checkAmx(facts({ arch: 'arm64' }))).toBeUndefined();
  });

  it('rebuild commands repeat the options the build has', () => {
    const f = facts({ build: { dir: '/b', cache: { HERMES3_CUDA: 'ON', HERMES3_NATIVE: 'ON', HERMES3_BUILD_BENCH: 'ON' } } });
    expect(rebuildCommand(f, { HERMES3_VULKAN: true })).toBe('HERMES3_CUDA=1 HERMES3_BUILD_BENCH=1 HERMES3_VULKAN=1 npm run build:native');
    expect(rebuildCommand({ ...f, sourceCheckout: false }, { HERMES3_CUDA: false })).toBe('HERMES3_BUILD_FROM_SOURCE=1 HERMES3_CUDA=0 HERMES3_BUILD_BENCH=1 npm rebuild hermes3-native');
  });
});

describe('gatherFacts', () => {
  it('describes this machine', async () => {
    const f = await gatherFacts();
    expect(f.platform).toBe(process.platform);
    expect(f.cpu.logicalCores).toBeGreaterThan(0);
    expect(f.memory.totalBytes).toBeGreaterThan(0);
    expect(typeof f.nvidia.libcuda).toBe('boolean');
    if (f.addon.loaded) expect(f.addon.backends.devices.some((d) => d.type === 'cpu')).toBe(true);
  });
});

describe('doctor: judging the speed', () => {
  // an 8B Q4_K_M on a 4-core machine: 4.6 GB per token at 20 GB/s is a bound of ~4.3 tokens/s
  const m = (tokensPerSecond: number, over: Partial<SpeedMeasurement> = {}): SpeedMeasurement => {
    const bytesPerToken = 4.6e9;
    const bandwidthBytesPerSecond = 20e9;
    const bound = bandwidthBytesPerSecond / bytesPerToken;
    return { tokensPerSecond, generatedTokens: 20, generateSeconds: 5, promptTokensPerSecond: 40, loadSeconds: 2, threads: 4, nGpuLayers: 0, bandwidthBytesPerSecond, bandwidthProbeBytes: 256 * 2 ** 20, bytesPerToken, boundTokensPerSecond: bound, ratio: tokensPerSecond / bound, ...over };
  };

  it('is ok near the bound and warns under 30% of it, with what to try', () => {
    expect(judgeSpeed(m(3.5), facts())).toMatchObject({ status: 'ok', title: '3.5 tokens/s generating' });
    const slow = judgeSpeed(m(0.6, { threads: 16 }), facts({ loadAverage: 3.5 }), { cpuVariantBehind: true });
    expect(slow).toMatchObject({ status: 'warn', title: '0.6 tokens/s generating: under 30% of what memory bandwidth allows' });
    expect(slow.detail).toContain('a bound of about 4.3 tokens/s; this is 14% of it');
    expect(slow.detail).toContain('a single-threaded copy underestimates');
    expect(slow.fix).toContain('use as many threads as physical cores (--threads 4, threads: 4); 16 were used');
    expect(slow.fix).toContain("rebuild for this CPU's variant");
    expect(slow.fix).toContain('stop other processes using the CPU (load average 3.5 on 4 logical cores)');
    expect(judgeSpeed(m(0.6), facts()).fix).toMatch(/^try fewer threads \(--threads 2\)/);
  });

  it('does not judge small models, GPU offload, or a probe without tokens by CPU bandwidth', () => {
    expect(judgeSpeed(m(50, { bytesPerToken: 34 * 2 ** 20, ratio: 0.05 }), facts()).detail).toContain('too small to judge');
    expect(judgeSpeed(m(0.5, { nGpuLayers: 33 }), facts()).status).toBe('ok');
    expect(judgeSpeed(m(0, { generatedTokens: 0 }), facts())).toMatchObject({ status: 'info', fix: expect.stringContaining('hermes3 bench') });
  });

  it('counts the weights a token reads: the token embedding only when tied to the output', () => {
    const t = (name: string, sizeBytes: number) => ({ name, sizeBytes }) as never;
    expect(bytesPerToken({ tensors: [t('token_embd.weight', 100), t('blk.0.attn_q.weight', 10), t('output.weight', 100)] })).toBe(110);
    expect(bytesPerToken({ tensors: [t('token_embd.weight', 100), t('blk.0.attn_q.weight', 10)] })).toBe(110);
  });
});
