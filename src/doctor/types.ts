/** What `doctor()` reports, and the machine facts its checks read. */
import type { BackendInfo } from '../engine/backends.js';
import type { NativeSystemInfo } from '../native/index.js';

export type FindingStatus = 'ok' | 'info' | 'warn' | 'fail';

/** One thing the doctor looked at: what it found and, unless it is ok, exactly what to do. */
export interface Finding {
  /** stable id, e.g. 'gpu.cuda', 'model.file', 'fit' */
  id: string;
  status: FindingStatus;
  title: string;
  detail: string;
  /** what to do; present on every finding that is not ok */
  fix?: string;
  /** figures behind the finding, for --json readers (bytes, tokens/s, seconds) */
  data?: Record<string, unknown>;
}

/** The compiler a source build used, as CMake recorded it. */
export interface CompilerFacts {
  /** CMake's compiler id: 'Clang', 'GNU', 'AppleClang', 'MSVC' */
  id?: string;
  version?: string;
  path?: string;
  /** where this was read from */
  source: string;
}

/** The CMake options of the build the addon came from (build/CMakeCache.txt), when there is one. */
export interface BuildFacts {
  /** the folder holding CMakeCache.txt */
  dir: string;
  /** CMake cache entries, NAME -> value (HERMES3_CUDA, GGML_NATIVE, GGML_AMX_INT8, ...) */
  cache: Record<string, string>;
  compiler?: CompilerFacts;
  cCompiler?: CompilerFacts;
}

/**
 * Everything the checks need to know about the machine and the install, gathered once by
 * gatherFacts(). Tests pass synthetic facts to see each case without the hardware.
 */
export interface MachineFacts {
  platform: NodeJS.Platform;
  arch: string;
  /** the loaded addon: its backends and system info, or why it did not load */
  addon: { loaded: true; path?: string; backends: BackendInfo; system: NativeSystemInfo; backendDir?: string } | { loaded: false; error: string };
  /** a package checkout with vendor/llama.cpp (rebuilt with npm run build:native) rather than an installed package */
  sourceCheckout: boolean;
  build?: BuildFacts;
  /** files in the addon's backend folder (run-time loaded backends), e.g. libggml-cuda.so */
  backendLibraries: string[];
  nvidia: {
    /** first line of /proc/driver/nvidia/version */
    driverVersion?: string;
    /** nvidia-smi's path on PATH */
    smi?: string;
    /** libcuda.so.1 (the driver's CUDA library) is known to the dynamic linker */
    libcuda: boolean;
    /** CUDA_VISIBLE_DEVICES, when set: which GPUs CUDA may show */
    visibleDevices?: string;
  };
  /** /dev/kfd: an AMD GPU with the ROCm kernel driver */
  amdKfd: boolean;
  /** libvulkan.so.1 (the Vulkan loader) is known to the dynamic linker */
  vulkanLoader: boolean;
  cpu: {
    model?: string;
    /** /proc/cpuinfo flags (x86: avx2, avx512f, amx_int8, ...) */
    flags: string[];
    logicalCores: number;
    physicalCores: number;
  };
  memory: { totalBytes: number; availableBytes: number };
  /** 1-minute load average (0 where the platform has none) */
  loadAverage: number;
}
