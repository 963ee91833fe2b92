/**
 * Does the model fit with the chosen context and GPU layers? The same planning loadModel does
 * before loading; when it does not fit, the settings that would: the longest context, a q8_0 KV
 * cache, fewer GPU layers, a smaller quantization.
 */
import { basename } from 'node:path';
import { InsufficientMemoryError } from '../errors.js';
import { offloadGpus, type DeviceInfo } from '../engine/backends.js';
import { fitMemory, headroom, type Fit } from '../engine/fit.js';
import { DEFAULT_CTX } from '../engine/options.js';
import type { Finding, MachineFacts } from './types.js';

const gib = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${Math.round(n / 2 ** 20)} MiB`);

export interface FitCheck {
  modelPath: string;
  nCtxTrain: number;
  /** default: the training context up to 4096 tokens, as loadModel */
  nCtx?: number;
  /** default 'auto', as loadModel */
  nGpuLayers?: number | 'max' | 'auto';
}

/** The devices to fit: the addon's, or the CPU alone with the system's memory when the addon does not load. */
export function fitDevices(facts: MachineFacts): DeviceInfo[] {
  if (facts.addon.loaded) return facts.addon.backends.devices;
  return [{ name: 'CPU', description: facts.cpu.model ?? 'CPU', type: 'cpu', backend: 'CPU', freeBytes: facts.memory.availableBytes, totalBytes: facts.memory.totalBytes }];
}

async function tryFit(...args: Parameters<typeof fitMemory>): Promise<Fit | undefined> {
  try {
    return await fitMemory(...args);
  } catch (err) {
    if (err instanceof InsufficientMemoryError) return undefined;
    throw err;
  }
}

export async function checkFit(check: FitCheck, facts: MachineFacts): Promise<Finding> {
  const devices = fitDevices(facts);
  const nCtx = check.nCtx ?? Math.min(check.nCtxTrain, DEFAULT_CTX);
  const nGpuLayers = check.nGpuLayers ?? 'auto';
  const base = { model: { modelPath: check.modelPath }, nCtxTrain: check.nCtxTrain, devices, label: basename(check.modelPath) };
  const gpus = offloadGpus(devices);
  const beyondTraining = nCtx > check.nCtxTrain ? ` ${nCtx} tokens is beyond the model's training context (${check.nCtxTrain}): replies degrade past it.` : '';
  const noGpu = gpus.length === 0 && nGpuLayers !== 'auto' && nGpuLayers !== 0 ? ` --gpu-layers ${nGpuLayers} was asked for, but there is no GPU: every layer runs on the CPU.` : '';
  try {
    const fit = await fitMemory({ ...base, nCtx, nGpuLayers });
    const byDevice = fit.plan.devices
      .map((d) => {
        const dev = d.device === 'CPU' ? devices.find((x) => x.type === 'cpu') : gpus[d.gpu ?? 0];
        const need = d.totalBytes - d.repackBytes;
        return `${gib(need)} on the ${dev?.name ?? d.device}${dev ? ` (${gib(dev.freeBytes - headroom(dev.totalBytes))} free after headroom)` : ''}`;
      })
      .join(', ');
    return {
      id: 'fit',
      status: beyondTraining ? 'warn' : 'ok',
      title: `fits: ${nCtx}-token context, ${fit.nGpuLayers} of ${fit.plan.nLayer + 1} layers on the GPU`,
      detail: `weights ${gib(fit.plan.weightsBytes)}, KV cache ${gib(fit.plan.kvCacheBytes)}, compute and output buffers ${gib(fit.plan.computeBytes + fit.plan.outputBytes)}: ${byDevice}.${beyondTraining}${noGpu}`,
      fix: beyondTraining ? `use --ctx ${check.nCtxTrain} or less` : undefined,
      data: { nCtx, nGpuLayers: fit.nGpuLayers, nLayer: fit.plan.nLayer, totalBytes: fit.plan.totalBytes, devices: fit.plan.devices },
    };
  } catch (err) {
    if (!(err instanceof InsufficientMemoryError)) {
      return { id: 'fit', status: 'fail', title: 'memory could not be planned', detail: (err as Error).message, fix: 'check --ctx and --gpu-layers (see the detail); a file that does not plan will not load either' };
    }
    const options: string[] = [];
    const longest = await tryFit({ ...base, nCtx: { min: Math.min(256, nCtx), max: nCtx }, nGpuLayers });
    if (longest) options.push(`--ctx ${longest.nCtx} (the longest context that fits${longest.nCtx >= check.nCtxTrain ? ', up to the training context' : ''})`);
    if (await tryFit({ ...base, nCtx, nGpuLayers, kvCacheType: 'q8_0' })) options.push(`kvCacheType: 'q8_0' at ${nCtx} tokens (half the KV cache)`);
    else {
      const q8 = await tryFit({ ...base, nCtx: { min: Math.min(256, nCtx), max: nCtx }, nGpuLayers, kvCacheType: 'q8_0' });
      if (q8 && (!longest || q8.nCtx > longest.nCtx)) options.push(`kvCacheType: 'q8_0' with --ctx ${q8.nCtx}`);
    }
    if (gpus.length > 0 && nGpuLayers !== 'auto') {
      const auto = await tryFit({ ...base, nCtx, nGpuLayers: 'auto' });
      if (auto) options.push(`--gpu-layers ${auto.nGpuLayers} (or auto)`);
    }
    const quant = /(an? \S+ file \(about [^)]*\))/.exec(err.message)?.[1];
    if (quant) options.push(`a smaller quantization: ${quant}`);
    return {
      id: 'fit',
      status: 'fail',
      title: `does not fit: ${nCtx}-token context${typeof nGpuLayers === 'number' || nGpuLayers === 'max' ? `, --gpu-layers ${nGpuLayers}` : ''}`,
      detail: err.message + beyondTraining + noGpu,
      fix: options.length > 0 ? `use ${options.join('; or ')}` : 'free memory (close other programs), or use a smaller model or quantization: nothing smaller fits this machine',
      data: { nCtx, nGpuLayers, fitsWithCtx: longest?.nCtx },
    };
  }
}
