import { readGgufHeader } from '../gguf/reader.js';
import { AbortError, DisposedError, ModelLoadError, OptionsError, fromNative } from '../errors.js';
import { getAddon, type NativeModel, type NativeModelInfo } from '../native/index.js';
import { Chat, type ChatOptions } from '../chat/session.js';
import { chatTemplateWarning } from '../chat/template.js';
import { Context } from './context.js';
import { EmbeddingContext } from './embedding.js';
import type { EmbeddingContextOptions } from './embedding-options.js';
import { LoraAdapter, loadLoraAdapter } from './lora.js';
import { inspectLora } from '../gguf/lora.js';
import { rpcDevices } from './rpc.js';
import { getBackendInfo, offloadGpus } from './backends.js';
import { fitContext, fitMemory } from './fit.js';
import { basename } from 'node:path';
import { DEFAULT_CTX, THREAD_PRIORITIES, contextSchema, loadModelSchema, type ContextOptions, type LoadModelOptions, type Logger, type ThreadPriority } from './options.js';
import { parseOptions } from './validate.js';

export type ModelInfo = NativeModelInfo;

const LOG_LEVEL_IDS = { debug: 1, info: 2, warn: 3, error: 4 } as const;

/** Routes llama.cpp's log lines to `logger` (process-wide), or silences them with null. */
export function setLogger(logger: Logger | null, level: keyof typeof LOG_LEVEL_IDS = 'warn'): void {
  getAddon().setLogger(logger ? (lvl, line) => logger(lvl as never, line) : null, LOG_LEVEL_IDS[level]);
}

/** A warning about loading goes to the caller's logger, or else to process warnings. */
function warn(opts: { logger?: Logger }, code: string, message: string): void {
  if (opts.logger) opts.logger('warn', message);
  else process.emitWarning(message, { code });
}

/**
 * Loads a GGUF model off the main thread. The file's header is checked first, so a missing,
 * truncated or foreign file fails fast with GgufFormatError.
 */
export async function loadModel(options: LoadModelOptions): Promise<Model> {
  const opts = parseOptions(loadModelSchema, options, 'loadModel');
  if (opts.signal?.aborted) throw new AbortError('model loading was aborted before it started');
  const header = await readGgufHeader(opts.modelPath);
  const arch = header.metadata.get('general.architecture')?.value;
  // a file that is GGUF but no model llama.cpp can load is a ModelLoadError, as llama.cpp's own refusals are
  if (typeof arch !== 'string') {
    throw new ModelLoadError(`${opts.modelPath} has no general.architecture key: it is not a model file llama.cpp can load`);
  }
  const nLayer = header.metadata.get(`${arch}.block_count`)?.value;
  if (!opts.vocabOnly && header.tensors.length > 0 && !(typeof nLayer === 'number' && nLayer > 0)) {
    throw new ModelLoadError(`${opts.modelPath} has tensors but ${nLayer === undefined ? `no ${arch}.block_count key` : `${arch}.block_count ${String(nLayer)}`}: llama.cpp cannot load it as a ${arch} model`);
  }
  // adapter files are checked against the model before anything is loaded
  for (const l of opts.lora ?? []) await inspectLora(l.path, opts.modelPath);
  const addon = getAddon();
  if (opts.logger) setLogger(opts.logger, opts.logLevel);
  // plan the memory before loading: 'auto' settings are fitted, and a request that cannot fit
  // fails here with InsufficientMemoryError instead of in the allocator
  const nCtxTrain = Number(header.metadata.get(`${arch}.context_length`)?.value ?? 4096);
  // the layer count llama.cpp will really offload: blocks plus the output layer, none without a GPU
  let nGpuLayers = 0;
  let tensorSplit: number[] | undefined;
  // a length to fit ('auto' or a range) is fitted once, here: contexts then default to the result
  const fitsLength = opts.nCtx !== undefined && typeof opts.nCtx !== 'number';
  let defaultNCtx = typeof opts.nCtx === 'number' ? opts.nCtx : undefined;
  const rpcServers = opts.rpcServers && opts.rpcServers.length > 0 ? opts.rpcServers : undefined;
  // remote devices come first, as the native side orders them
  const remote = rpcServers ? await rpcDevices(rpcServers) : [];
  if (!opts.vocabOnly && header.tensors.length > 0) {
    const devices = [...remote, ...getBackendInfo().devices];
    const fit = await fitMemory({
      model: { modelPath: opts.modelPath, lora: opts.lora },
      nCtx: opts.nCtx ?? Math.min(nCtxTrain, DEFAULT_CTX),
      nGpuLayers: opts.nGpuLayers,
      nCtxTrain,
      devices,
      label: basename(opts.modelPath),
      keepsMappedCopies: opts.useMmap && opts.useMlock,
    });
    nGpuLayers = fit.nGpuLayers;
    // several GPUs: load with the split the plan assumed, so that layers land where planned
    tensorSplit = fit.tensorSplit;
    if (fitsLength) defaultNCtx = fit.nCtx;
    if ((opts.nGpuLayers === 'max' || (typeof opts.nGpuLayers === 'number' && opts.nGpuLayers > 0)) && offloadGpus(devices).length === 0) {
      warn(
        opts,
        'HERMES3_NO_GPU',
        `nGpuLayers ${opts.nGpuLayers} was asked for, but no GPU device is available (devices: ${devices.map((d) => d.name).join(', ')}): every layer runs on the CPU. A CUDA, Metal or Vulkan build is made with HERMES3_CUDA=1, HERMES3_METAL=1 or HERMES3_VULKAN=1 npm rebuild hermes3-native.`,
      );
    }
  }
  const control = new Int32Array(2);
  const onAbort = () => Atomics.store(control, 0, 1);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // an abort while the header was read or the memory planned stops the load at its first step
  if (opts.signal?.aborted) onAbort();
  try {
    const native = await addon.loadModel(
      opts.modelPath,
      {
        nGpuLayers,
        tensorSplit,
        rpcServers,
        useMmap: opts.useMmap,
        useMlock: opts.useMlock,
        vocabOnly: opts.vocabOnly,
        checkTensors: opts.checkTensors,
        threadPriority: THREAD_PRIORITIES[opts.threadPriority],
      },
      opts.onProgress ?? null,
      control,
    );
    const model = new Model(native, opts.modelPath, defaultNCtx, nGpuLayers, tensorSplit, rpcServers, opts.threadPriority);
    if (opts.lora?.length) await model.loadDefaultLoras(opts.lora);
    const warning = chatTemplateWarning(model.info.chatTemplate, opts.modelPath);
    if (warning) warn(opts, 'HERMES3_CHAT_TEMPLATE', warning);
    return model;
  } catch (err) {
    throw fromNative(err, `cannot load ${opts.modelPath}`);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** A loaded model: its metadata, its vocabulary, and the contexts created over it. */
export class Model {
  /** Architecture, sizes, training context, chat template, special tokens and raw metadata. */
  readonly info: ModelInfo;
  readonly path: string;
  private readonly contexts = new Set<Context | EmbeddingContext>();
  private readonly adapters = new Set<LoraAdapter>();
  #lora: ReadonlyArray<{ adapter: LoraAdapter; scale: number }> = [];
  private disposed = false;
  private disposing: Promise<void> | undefined;

  /** @internal */
  constructor(
    /** @internal */ readonly native: NativeModel,
    path: string,
    private readonly defaultNCtx: number | undefined,
    /** layers offloaded to the GPU: the output layer first, then blocks from the last one down (nLayer + 1: all) */
    readonly nGpuLayers: number = 0,
    /** how the offloaded layers are split between several GPUs (llama.cpp's tensor_split) */
    readonly tensorSplit: readonly number[] | undefined = undefined,
    /** the rpc-servers whose devices the model uses (before the local GPUs) */
    readonly rpcServers: readonly string[] | undefined = undefined,
    /** loadModel's threadPriority: the priority of the native threads, and its contexts' default */
    readonly threadPriority: ThreadPriority = 'low',
  ) {
    this.path = path;
    this.info = native.info();
  }

  /** Token ids of `text`. `special` parses special-token text such as <|im_start|>; `addBos` prepends BOS when the model asks for it. */
  tokenize(text: string, options: { special?: boolean; addBos?: boolean } = {}): number[] {
    this.assertLive();
    if (typeof text !== 'string') throw new OptionsError(`Invalid argument text for tokenize: expected a string, received ${typeof text}`);
    return Array.from(this.native.tokenize(text, options.addBos ?? false, options.special ?? false));
  }

  /**
   * Text of `tokens`: the concatenation of their pieces, exactly what streaming yields for them.
   * `special` renders control tokens as their text.
   */
  detokenize(tokens: ArrayLike<number>, options: { special?: boolean } = {}): string {
    this.assertLive();
    try {
      return new TextDecoder('utf-8').decode(this.native.tokenPieces(Int32Array.from(tokens), options.special ?? false));
    } catch (err) {
      throw fromNative(err);
    }
  }

  /**
   * Starts a chat: a conversation with its own sequence (and, unless `context` is given, its own
   * context, created on the first turn). Generation options given here apply to every turn.
   */
  chat(options: ChatOptions = {}): Chat {
    this.assertLive();
    return new Chat(this, options);
  }

  /**
   * Loads a LoRA adapter for this model, checked against it first (another base model, a tensor
   * it lacks or of another shape: ModelLoadError ERR_LORA_MISMATCH). Apply it to a context with
   * `ctx.setLoras([{ adapter, scale }])` or `createContext({ lora })`; the model disposes it.
   */
  async loadLora(path: string): Promise<LoraAdapter> {
    this.assertLive();
    const adapter = await loadLoraAdapter(this, path, (a) => {
      this.adapters.delete(a);
      // a disposed adapter is no longer one of the defaults of new contexts
      this.#lora = this.#lora.filter((l) => l.adapter !== a);
    });
    this.adapters.add(adapter);
    return adapter;
  }

  /** The adapters of the loadModel `lora` option: every context applies them unless it says otherwise. */
  get lora(): ReadonlyArray<{ adapter: LoraAdapter; scale: number }> {
    return this.#lora;
  }

  /** @internal */
  async loadDefaultLoras(list: ReadonlyArray<{ path: string; scale: number }>): Promise<void> {
    try {
      const loaded: Array<{ adapter: LoraAdapter; scale: number }> = [];
      for (const { path, scale } of list) loaded.push({ adapter: await this.loadLora(path), scale });
      this.#lora = loaded;
    } catch (err) {
      await this.dispose();
      throw err;
    }
  }

  /** Creates a context (KV cache and compute buffers) over this model. */
  async createContext(options: ContextOptions = {}): Promise<Context> {
    this.assertLive();
    if (this.info.nLayer === 0) throw new OptionsError('this model was loaded with vocabOnly: true and cannot create contexts');
    const opts = parseOptions(contextSchema, options, 'createContext');
    const requested = opts.nCtx ?? this.defaultNCtx ?? Math.min(this.info.nCtxTrain || DEFAULT_CTX, DEFAULT_CTX);
    const nBatch = Math.min(opts.nBatch, typeof requested === 'number' ? requested : opts.nBatch);
    const nCtx = await fitContext({
      model: { modelPath: this.path },
      nCtx: requested,
      nGpuLayers: this.nGpuLayers,
      tensorSplit: this.tensorSplit ? [...this.tensorSplit] : undefined,
      nCtxTrain: this.info.nCtxTrain,
      kvCacheType: opts.kvCacheType,
      nSeqMax: opts.nSeqMax,
      nUbatch: Math.min(opts.nUbatch ?? nBatch, nBatch),
      flashAttention: opts.flashAttention !== false,
      devices: this.rpcServers ? [...(await rpcDevices(this.rpcServers)), ...getBackendInfo().devices] : getBackendInfo().devices,
      label: basename(this.path),
    });
    const ctx = await Context.create(this, { ...opts, nCtx, lora: opts.lora ?? [...this.#lora] }, (c) => this.contexts.delete(c));
    this.contexts.add(ctx);
    return ctx;
  }

  /**
   * Creates a context that computes embeddings (vectors for retrieval and similarity) with this
   * model's weights, beside any generation contexts.
   */
  async createEmbeddingContext(options: EmbeddingContextOptions = {}): Promise<EmbeddingContext> {
    this.assertLive();
    if (this.info.nLayer === 0) throw new OptionsError('this model was loaded with vocabOnly: true and cannot create contexts');
    const ctx = await EmbeddingContext.create(this, options, (c) => this.contexts.delete(c));
    this.contexts.add(ctx);
    return ctx;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Disposes every context (aborting their generations) and frees the weights. Safe to call twice. */
  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      this.disposed = true;
      await Promise.all([...this.contexts].map((c) => c.dispose()));
      await Promise.all([...this.adapters].map((a) => a.dispose()));
      await this.native.dispose();
    })();
    return this.disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  private assertLive(): void {
    if (this.disposed) throw new DisposedError('the model has been disposed');
  }
}
