/**
 * CPU and build: the CPU variant in use against the best this CPU supports, the compiler the
 * addon was built with, and AMX (GCC 12 miscompiles ggml's AMX tile setup: design.md).
 */
import { cpuVariant } from '../engine/backends.js';
import { rebuildCommand } from './rebuild.js';
import type { CompilerFacts, Finding, MachineFacts } from './types.js';

// /proc/cpuinfo flags -> the feature names ggml's CPU backend reports
const FLAG_FEATURES: Array<[string, string]> = [
  ['ssse3', 'SSSE3'],
  ['sse4_2', 'SSE42'],
  ['avx', 'AVX'],
  ['f16c', 'F16C'],
  ['fma', 'FMA'],
  ['avx2', 'AVX2'],
  ['bmi2', 'BMI2'],
  ['avx_vnni', 'AVX_VNNI'],
  ['avx512f', 'AVX512'],
  ['avx512vbmi', 'AVX512_VBMI'],
  ['avx512_vnni', 'AVX512_VNNI'],
  ['avx512_bf16', 'AVX512_BF16'],
  ['amx_int8', 'AMX_INT8'],
];
// the features that make up ggml's x64 variants (AMX has its own finding)
const VARIANT_FEATURES = ['AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX_VNNI', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI', 'AVX512_BF16'];

/** ggml feature names a CPU supports, from its /proc/cpuinfo flags. */
export function cpuFeatures(flags: readonly string[]): string[] {
  const have = new Set(flags);
  return FLAG_FEATURES.filter(([flag]) => have.has(flag)).map(([, feature]) => feature);
}

const compilerName = (c: CompilerFacts | undefined) => (c ? `${c.id ?? 'compiler'}${c.version ? ` ${c.version}` : ''}${c.path ? ` (${c.path})` : ''}` : undefined);
const gccMajor = (c: CompilerFacts | undefined) => (c?.id === 'GNU' && c.version ? Number(c.version.split('.')[0]) : undefined);

/** The CPU variant in use against the best one this CPU supports. */
export function checkCpuVariant(facts: MachineFacts): Finding {
  const supported = cpuFeatures(facts.cpu.flags);
  const model = facts.cpu.model ? `${facts.cpu.model}, ` : '';
  const cores = `${facts.cpu.physicalCores} physical core${facts.cpu.physicalCores === 1 ? '' : 's'}, ${facts.cpu.logicalCores} logical`;
  if (facts.arch !== 'x64' || facts.cpu.flags.length === 0) {
    return { id: 'cpu.variant', status: 'ok', title: 'CPU', detail: `${model}${facts.arch}, ${cores}${facts.addon.loaded ? `; features compiled in: ${facts.addon.backends.cpu.features.join(', ') || 'none'}` : ''}` };
  }
  const best = cpuVariant(supported);
  if (!facts.addon.loaded) {
    return {
      id: 'cpu.variant',
      status: 'info',
      title: 'CPU variant unknown',
      detail: `${model}${cores}; this CPU supports the ${best ?? 'x64'} variant, but the addon does not load, so the variant in use is unknown.`,
      fix: "make the addon load first (see the 'backends' finding)",
    };
  }
  const compiled = new Set(facts.addon.backends.cpu.features);
  const inUse = facts.addon.backends.cpu.variant;
  const missing = VARIANT_FEATURES.filter((f) => supported.includes(f) && !compiled.has(f))
    // AVX-VNNI adds nothing where AVX512-VNNI is compiled in
    .filter((f) => !(f === 'AVX_VNNI' && compiled.has('AVX512_VNNI')));
  const detail = `${model}${cores}; in use: ${inUse ?? 'unknown'} (${[...compiled].join(', ') || 'no SIMD'}); this CPU supports: ${best ?? 'x64'}`;
  const data = { inUse, best, compiled: [...compiled], supported };
  if (missing.length === 0) return { id: 'cpu.variant', status: 'ok', title: `CPU variant ${inUse ?? 'unknown'}`, detail, data };
  return {
    id: 'cpu.variant',
    status: 'warn',
    title: `the CPU code in use (${inUse ?? 'unknown'}) is below what this CPU can do (${best})`,
    detail: `${detail}. Not compiled in: ${missing.join(', ')}${missing.includes('AVX512') ? ' (AVX-512 speeds up prompt processing and quantized matrix products)' : ''}.`,
    fix: `rebuild for this CPU: ${rebuildCommand(facts, { HERMES3_NATIVE: true })} (a host-tuned build; it is for this machine only, since it dies on older CPUs)`,
    data: { ...data, missing },
  };
}

/** The compiler the addon was built with: from CMake's records of the build folder, else unknown. */
export function checkCompiler(facts: MachineFacts): Finding {
  const c = facts.build?.cCompiler ?? facts.build?.compiler;
  const cxx = facts.build?.compiler;
  if (!c) {
    const prebuilt = facts.addon.loaded && facts.addon.path && /[\\/]prebuilds[\\/]/.test(facts.addon.path);
    return {
      id: 'cpu.compiler',
      status: 'info',
      title: 'compiler unknown',
      detail: prebuilt
        ? `a prebuilt addon (${facts.addon.loaded ? facts.addon.path : ''}) does not record its compiler; prebuilds refuse GCC older than 13 (CMakeLists.txt), so their AMX code is safe.`
        : `the addon does not report its compiler, and there is no CMakeCache.txt beside it${facts.build ? ` (${facts.build.dir})` : ''}.`,
      fix: 'nothing to do unless prompts crash with SIGILL on an AMX CPU; then rebuild with clang (apt-get install clang-16; the build prefers clang): ' + rebuildCommand(facts, {}),
    };
  }
  const name = [compilerName(c), cxx && cxx !== c && cxx.path !== c.path ? `C++: ${compilerName(cxx)}` : undefined].filter(Boolean).join('; ');
  const major = gccMajor(c);
  return {
    id: 'cpu.compiler',
    status: 'ok',
    title: `built with ${c.id ?? 'an unknown compiler'}${c.version ? ` ${c.version}` : ''}`,
    detail: `${name}, read from ${c.source}${major !== undefined && major < 13 ? `. GCC ${major} builds leave AMX out (it miscompiles ggml's AMX code); see 'cpu.amx'` : ''}`,
    data: { id: c.id, version: c.version, path: c.path },
  };
}

/** AMX: present on the CPU, compiled in, and not by a compiler that breaks it. */
export function checkAmx(facts: MachineFacts): Finding | undefined {
  if (facts.arch !== 'x64' || !facts.addon.loaded) return undefined;
  const cpuAmx = facts.cpu.flags.includes('amx_int8') && facts.cpu.flags.includes('amx_tile');
  const buildAmx = facts.addon.backends.cpu.features.includes('AMX_INT8');
  const c = facts.build?.cCompiler ?? facts.build?.compiler;
  const major = gccMajor(c);
  const badGcc = major !== undefined && major < 13;
  const withClang = `apt-get install clang-16 (the build picks clang when CC and CXX are not set), then ${rebuildCommand(facts, { HERMES3_NATIVE: true })}`;
  if (buildAmx && badGcc) {
    return {
      id: 'cpu.amx',
      status: 'fail',
      title: `AMX code built by GCC ${c?.version}`,
      detail: `this build has ggml's AMX code compiled by GCC ${c?.version}, which drops the tile configuration stores before ldtilecfg: the first AMX instruction raises SIGILL (or SIGSEGV) on Q4_K_M models.`,
      fix: `rebuild with clang: ${withClang}`,
    };
  }
  if (!cpuAmx) return { id: 'cpu.amx', status: 'ok', title: 'no AMX on this CPU', detail: 'this CPU has no AMX tiles; nothing to use.' };
  if (buildAmx) return { id: 'cpu.amx', status: 'ok', title: 'AMX in use', detail: `this CPU has AMX and the build uses it (about 2x prompt speed on quantized models)${c ? `; compiler: ${compilerName(c)}` : ''}.` };
  return {
    id: 'cpu.amx',
    status: 'warn',
    title: 'this CPU has AMX, but the build does not use it',
    detail: badGcc
      ? `the build disabled AMX because GCC ${c?.version} miscompiles ggml's AMX code; AMX roughly doubles prompt processing on quantized models.`
      : 'the CPU code in use has no AMX (a portable build, or a prebuild without the sapphirerapids variant); AMX roughly doubles prompt processing on quantized models.',
    fix: badGcc ? `rebuild with clang: ${withClang}` : `rebuild for this CPU: ${rebuildCommand(facts, { HERMES3_NATIVE: true })}`,
  };
}
