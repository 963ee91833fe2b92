/**
 * Backends and GPUs: what this install found, and where a GPU is expected but absent, why: a
 * driver without the backend built, a backend built without the driver, a GPU no backend serves.
 */
import { offloadGpus, type BackendInfo } from '../engine/backends.js';
import { rebuildCommand } from './rebuild.js';
import type { Finding, MachineFacts } from './types.js';

const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;

function describeDevices({ backends, devices, dynamic }: BackendInfo): string {
  const list = devices.map((d) => `${d.name} (${d.type}, ${d.backend}: ${d.description}; ${gib(d.freeBytes)} free of ${gib(d.totalBytes)})`);
  return `backends: ${backends.map((b) => b.name).join(', ') || 'none'}${dynamic ? ' (loaded at run time)' : ''}; devices: ${list.join('; ') || 'none'}`;
}

/** The addon itself: whether it loads, and which backends and devices it found. */
export function checkBackends(facts: MachineFacts): Finding {
  if (!facts.addon.loaded) {
    const hint = /To fix: (.*)$/.exec(facts.addon.error)?.[1];
    return {
      id: 'backends',
      status: 'fail',
      title: 'the native addon does not load',
      detail: facts.addon.error,
      fix: hint ?? `rebuild the addon: ${rebuildCommand(facts, {})}`,
    };
  }
  return {
    id: 'backends',
    status: 'ok',
    title: `backends and devices${facts.addon.path ? ` (${facts.addon.path})` : ''}`,
    detail: describeDevices(facts.addon.backends),
    data: { backends: facts.addon.backends.backends.map((b) => b.name), devices: facts.addon.backends.devices, dynamic: facts.addon.backends.dynamic },
  };
}

const hasBackend = (facts: MachineFacts, name: RegExp) => facts.addon.loaded && facts.addon.backends.backends.some((b) => name.test(b.name));
const hasLibrary = (facts: MachineFacts, name: RegExp) => facts.backendLibraries.some((f) => name.test(f));
const cacheOn = (facts: MachineFacts, ...names: string[]) => names.some((n) => /^(1|on|true|yes)$/i.test(facts.build?.cache[n] ?? ''));

/** Whether a GPU is expected here but not served, and why; one finding per GPU kind that applies. */
export function checkGpus(facts: MachineFacts): Finding[] {
  const out: Finding[] = [];
  const gpus = facts.addon.loaded ? offloadGpus(facts.addon.backends.devices) : [];
  const nv = facts.nvidia;
  const driverSigns = [
    nv.driverVersion && `/proc/driver/nvidia/version (${nv.driverVersion.replace(/\s+/g, ' ').slice(0, 80)})`,
    nv.smi && `nvidia-smi at ${nv.smi}`,
    nv.libcuda && 'libcuda.so.1',
  ].filter(Boolean) as string[];
  const cudaLoaded = hasBackend(facts, /^CUDA/);
  const cudaBuilt =
    cudaLoaded ||
    hasLibrary(facts, /ggml-cuda/) ||
    cacheOn(facts, 'HERMES3_CUDA', 'GGML_CUDA') ||
    (!facts.addon.loaded && /libcuda|libcudart|libcublas/.test(facts.addon.error));
  const cudaDevices = facts.addon.loaded ? facts.addon.backends.devices.filter((d) => d.backend.startsWith('CUDA')) : [];
  const cudaBuild = rebuildCommand(facts, { HERMES3_CUDA: true });

  if (cudaBuilt && !nv.libcuda && cudaDevices.length === 0) {
    out.push({
      id: 'gpu.cuda',
      status: facts.addon.loaded ? 'warn' : 'fail',
      title: "the CUDA backend is built but the NVIDIA driver's library is missing",
      detail:
        `this install has the CUDA backend${cudaLoaded ? '' : hasLibrary(facts, /ggml-cuda/) ? ' (libggml-cuda in the addon folder)' : ' (the build was configured with CUDA)'}, but libcuda.so.1, which the NVIDIA driver installs, is not known to the dynamic linker` +
        (facts.addon.loaded ? ': every layer runs on the CPU.' : ', so the addon does not load.') +
        (driverSigns.length ? ` Seen: ${driverSigns.join(', ')}.` : ''),
      fix:
        'install the NVIDIA driver (Debian/Ubuntu: apt-get install nvidia-driver, or the driver from nvidia.com; nvidia-smi should then list the GPU). ' +
        'In a container, start it with the GPU (docker run --gpus all, with the NVIDIA Container Toolkit installed). Without a GPU, rebuild without CUDA: ' +
        rebuildCommand(facts, { HERMES3_CUDA: false }),
    });
  } else if (driverSigns.length > 0 && !cudaBuilt) {
    out.push({
      id: 'gpu.cuda',
      status: 'warn',
      title: 'an NVIDIA driver is present, but this install has no CUDA backend',
      detail: `seen: ${driverSigns.join(', ')}; this install's backends are ${facts.addon.loaded ? facts.addon.backends.backends.map((b) => b.name).join(', ') : 'unknown (the addon did not load)'}, so every layer runs on the CPU.`,
      fix: `this install has no CUDA backend: rebuild with ${cudaBuild} (needs the CUDA toolkit with cuBLAS: nvcc and libcublas; the configure step says when cuBLAS is missing)`,
    });
  } else if (cudaLoaded && cudaDevices.length === 0) {
    out.push({
      id: 'gpu.cuda',
      status: 'warn',
      title: 'the CUDA backend is loaded but sees no GPU',
      detail: `libcuda.so.1 is present, yet CUDA lists no device${nv.visibleDevices !== undefined ? ` (CUDA_VISIBLE_DEVICES=${JSON.stringify(nv.visibleDevices)})` : ''}: every layer runs on the CPU.`,
      fix: 'check that nvidia-smi lists the GPU; unset CUDA_VISIBLE_DEVICES or set it to a GPU index; in a container, start it with the GPU (docker run --gpus all)',
    });
  } else if (cudaDevices.length > 0) {
    out.push({ id: 'gpu.cuda', status: 'ok', title: 'CUDA', detail: `${cudaDevices.length} CUDA device${cudaDevices.length > 1 ? 's' : ''}: ${cudaDevices.map((d) => `${d.description} (${gib(d.totalBytes)})`).join(', ')}` });
  }

  const gpuBackend = hasBackend(facts, /^(HIP|ROCm|Vulkan|CUDA|Metal|MTL)/i);
  if (facts.amdKfd && !hasBackend(facts, /^(HIP|ROCm|Vulkan)/i)) {
    out.push({
      id: 'gpu.amd',
      status: 'warn',
      title: 'an AMD GPU is present (/dev/kfd), but this install has no HIP or Vulkan backend',
      detail: 'the ROCm kernel driver exposes /dev/kfd, but no backend of this install drives an AMD GPU: every layer runs on the CPU.',
      fix: `rebuild with the Vulkan backend: ${rebuildCommand(facts, { HERMES3_VULKAN: true })} (needs libvulkan-dev, glslc and spirv-headers). ROCm's HIP backend has no switch of its own here; with ROCm installed, HERMES3_CMAKE_ARGS="-DGGML_HIP=ON" passes ggml's option (untested).`,
    });
  }
  if (facts.vulkanLoader && !gpuBackend && gpus.length === 0 && out.every((f) => f.status === 'ok')) {
    out.push({
      id: 'gpu.vulkan',
      status: 'info',
      title: 'a Vulkan loader is installed, but this install has no Vulkan backend',
      detail: 'libvulkan.so.1 is present. If this machine has a GPU that CUDA and Metal do not serve (AMD, Intel), the Vulkan backend can offload layers to it; software Vulkan drivers (llvmpipe) bring no speed.',
      fix: `only if this machine has such a GPU: rebuild with ${rebuildCommand(facts, { HERMES3_VULKAN: true })} (needs libvulkan-dev, glslc and spirv-headers); otherwise nothing to do`,
    });
  }
  if (facts.platform === 'darwin' && facts.arch === 'arm64' && !hasBackend(facts, /^(Metal|MTL)/i)) {
    out.push({
      id: 'gpu.metal',
      status: 'warn',
      title: 'Apple silicon without the Metal backend',
      detail: 'this Mac has an Apple GPU, but this install has no Metal backend: every layer runs on the CPU.',
      fix: `rebuild with Metal: ${rebuildCommand(facts, { HERMES3_METAL: true })}`,
    });
  }
  if (out.length === 0) {
    out.push(
      gpus.length > 0
        ? { id: 'gpu', status: 'ok', title: 'GPU', detail: `layers can go to ${gpus.map((g) => `${g.name} (${g.description}, ${gib(g.freeBytes)} free)`).join(', ')}` }
        : { id: 'gpu', status: 'ok', title: 'no GPU expected', detail: 'no NVIDIA driver, AMD GPU or Apple GPU found: the model runs on the CPU, as it should here.' },
    );
  }
  return out;
}
