/**
 * The only module that loads the compiled addon. Everything else imports the typed surface
 * declared here.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeError } from '../errors.js';

export interface NativeModelInfo {
  architecture: string;
  name: string;
  description: string;
  nParams: number;
  sizeBytes: number;
  nCtxTrain: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nVocab: number;
  fileType: string;
  chatTemplate: string | null;
  specialTokens: { bos: number; eos: number; eot: number; addBos: boolean; addEos: boolean; eog: number[] };
  metadata: Record<string, string>;
}

export interface NativeModel {
  info(): NativeModelInfo;
  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Int32Array;
  tokenPieces(tokens: ArrayLike<number>, special: boolean): Uint8Array;
  /** frees the weights off the main thread */
  dispose(): Promise<void>;
}

export interface NativeLoadOptions {
  nGpuLayers: number;
  /** rpc-servers (host:port) whose devices come before the local GPUs */
  rpcServers?: string[];
  /** share of the offloaded layers per GPU (llama.cpp's tensor_split); absent: by free memory */
  tensorSplit?: number[];
  useMmap: boolean;
  useMlock: boolean;
  vocabOnly: boolean;
  checkTensors: boolean;
  /** ggml_sched_priority of the threads that load and free the model: -1 low, 0 normal */
  threadPriority: -1 | 0;
}

/** A LoRA adapter loaded for one model (llama_adapter_lora). */
export interface NativeLora {
  /** the adapter file's scalar metadata, as llama.cpp read it */
  info(): { metadata: Record<string, string> };
  /** drops this reference; the adapter is freed once no context applies it */
  dispose(): Promise<void>;
}

/** An adapter applied to a context, and its scale. */
export interface NativeLoraUse {
  adapter: NativeLora;
  scale: number;
}

export interface NativeContextOptions {
  nCtx: number;
  nBatch: number;
  nUbatch: number;
  nSeqMax: number;
  threads: number;
  threadsBatch: number;
  /** ggml_sched_priority: -1 low, 0 normal */
  threadPriority: -1 | 0;
  flashAttention: -1 | 0 | 1;
  typeK: number;
  typeV: number;
  kvUnified: boolean;
  /** speculative decoding; model absent: prompt lookup with n-grams of ngramMin..ngramMax tokens */
  draft?: { nDraft: number; ngramMin: number; ngramMax: number; pMin: number; adaptive: boolean; model?: NativeModel };
  /** LoRA adapters (loaded for the same model) applied from the start */
  lora?: NativeLoraUse[];
}

export interface NativeGenerationDone {
  finishReason: 'stop' | 'length' | 'abort' | null;
  nPast: number;
  nPromptTokens: number;
  nGenerated: number;
  promptMs: number;
  generateMs: number;
  draftTokens: number;
  acceptedTokens: number;
}

export type NativeGenerationEvent = (
  tokens: Int32Array,
  bytes: Uint8Array,
  done: NativeGenerationDone | null,
  error?: Error,
) => void;

export interface NativeContext {
  /** tokens: the whole sequence; the first `keep` are in its KV cache already */
  generate(
    seq: number,
    keep: number,
    tokens: Int32Array,
    sampler: NativeSampler,
    options: { maxTokens: number; window: number; special: boolean },
    control: Int32Array,
    onEvent: NativeGenerationEvent,
  ): void;
  /** runs between two decode steps of the context's scheduler */
  removeTokens(seq: number, from: number, to: number): Promise<boolean>;
  saveSequence(seq: number): Promise<Buffer>;
  /** resolves with the number of positions the sequence holds afterwards */
  restoreSequence(seq: number, state: Uint8Array): Promise<number>;
  /**
   * replaces the adapters the context applies, between two decode steps; ERR_BUSY while a
   * sequence generates. Resolves with whether the adapters in effect changed (every sequence's
   * KV cache is cleared then).
   */
  setLoras(loras: NativeLoraUse[]): Promise<boolean>;
  /** the state of the cells at positions [from, to) (to < 0: to the end), saved through the empty sequence `scratch` */
  saveSequenceRange(seq: number, scratch: number, from: number, to: number): Promise<Buffer>;
  /** drops positions from `keep` on and adds the cells of a saveSequenceRange state (starting at `keep`); resolves with the positions held */
  appendSequence(seq: number, scratch: number, keep: number, state: Uint8Array): Promise<number>;
  stats(): {
    nCtx: number;
    nCtxSeq: number;
    nBatch: number;
    nUbatch: number;
    nSeqMax: number;
    threads: number;
    threadsBatch: number;
    decodeSteps: number;
    decodedTokens: number;
    widestStep: number;
  };
  /** frees the KV cache and joins the scheduler off the main thread */
  dispose(): Promise<void>;
}

export interface NativeEmbeddingContext {
  /** tokens: the inputs one after another; lengths: each input's count */
  embed(tokens: Int32Array, lengths: Int32Array, control: Int32Array): Promise<{ data: Float32Array; decodes: number }>;
  stats(): { nCtx: number; nSeqMax: number; nEmbd: number; pooling: string };
  /** frees the context off the main thread */
  dispose(): Promise<void>;
}

export interface NativeSampler {
  accept(tokens: Int32Array): void;
  reset(): void;
  dispose(): void;
}

export interface NativeSystemInfo {
  llamaCommit: string;
  systemInfo: string;
  supportsGpuOffload: boolean;
  supportsMmap: boolean;
  supportsMlock: boolean;
  maxDevices: number;
  hardwareConcurrency: number;
}

export interface NativeAddon {
  Sampler: new (model: NativeModel, options: Record<string, unknown>) => NativeSampler;
  loadModel(
    path: string,
    options: NativeLoadOptions,
    onProgress: ((progress: number) => void) | null,
    control: Int32Array,
  ): Promise<NativeModel>;
  createContext(model: NativeModel, options: NativeContextOptions): Promise<NativeContext>;
  /** pooling: llama_pooling_type, -1 for the model's own */
  createEmbeddingContext(
    model: NativeModel,
    options: { nCtx: number; nSeqMax: number; threads: number; pooling: number; flashAttention: -1 | 0 | 1 },
  ): Promise<NativeEmbeddingContext>;
  /** loads a LoRA adapter file for the model (off the main thread) */
  loadLora(model: NativeModel, path: string): Promise<NativeLora>;
  quantize(input: string, output: string, ftype: number, threads: number): Promise<void>;
  setLogger(fn: ((level: string, line: string) => void) | null, minLevel?: number): void;
  systemInfo(): NativeSystemInfo;
  /** the devices an rpc-server offers, with their memory (network: off the main thread) */
  rpcDevices(endpoint: string): Promise<Array<{ name: string; description: string; freeBytes: number; totalBytes: number }>>;
  /** serves this process's device over ggml-rpc in a thread of its own, until the process ends */
  rpcStartServer(endpoint: string, cacheDir: string | null, threads: number, device: string | null, memoryLimitBytes: number): void;
  backendInfo(): {
    devices: Array<{ name: string; description: string; type: string; backend: string; freeBytes: number; totalBytes: number }>;
    backends: Array<{ name: string; features: Record<string, string> }>;
    dynamic: boolean;
    directory?: string;
    /** run-time loaded builds: the backend libraries beside the addon, with why one cannot be opened */
    libraries?: Array<{ file: string; error?: string }>;
  };
}

/** The package root (holds package.json, prebuilds/ and build/). */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let cached: NativeAddon | undefined;
let loadedFrom: string | undefined;

/** The file the addon was loaded from, once getAddon() has loaded it. */
export function addonPath(): string | undefined {
  return loadedFrom;
}

/**
 * What to do when no addon loads. From an app, npm 11 runs a dependency's install script (which
 * picks a prebuild or builds from source) only once it is approved; in a checkout of the package
 * itself, `npm run build:native` builds it.
 * @internal
 */
export function addonLoadHint(inCheckout: boolean): string {
  const fromApp =
    'in your app\'s folder run `npm install-scripts approve hermes3-native` (npm 11 blocks the install scripts of dependencies until they are approved), then `npm rebuild hermes3-native` (it takes a prebuild that fits, or builds from source with cmake and a C++17 compiler; clang is preferred)';
  return inCheckout ? `run \`npm run build:native\` in the package folder to rebuild it; or, ${fromApp}` : fromApp;
}

/** Loads the addon once: a prebuild matching this platform, or the local build output. */
export function getAddon(): NativeAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const override = process.env.HERMES3_ADDON_PATH;
  const tried: string[] = [];
  try {
    if (override) {
      tried.push(override);
      cached = require(override) as NativeAddon;
      loadedFrom = require.resolve(override);
    } else {
      const load = require('node-gyp-build') as { resolve(dir: string): string };
      const path = load.resolve(packageRoot);
      tried.push(path);
      cached = require(path) as NativeAddon;
      loadedFrom = path;
    }
    return cached;
  } catch (err) {
    const where = tried.length ? tried.join(', ') : `prebuilds/${process.platform}-${process.arch}/ and build/Release/ under ${packageRoot}`;
    const hint = addonLoadHint(existsSync(join(packageRoot, 'vendor', 'llama.cpp')));
    const cause = (err as Error).message.replace(/\s+/g, ' ').trim();
    throw new NativeError(
      'ERR_ADDON_LOAD',
      `the hermes3-native addon could not be loaded for ${process.platform}-${process.arch} (Node ${process.versions.node}, N-API ${process.versions.napi}). Tried: ${where}. Cause: ${cause}. To fix: ${hint}.`,
      { cause: err },
    );
  }
}
