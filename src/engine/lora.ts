/**
 * LoRA adapters: loaded once for a model (checked against it first), then applied to any of its
 * contexts with a scale of their own, so one base model in memory serves several fine-tunes.
 * llama.cpp applies adapters per context: the sequences of one context share its adapters.
 */
import { DisposedError, OptionsError, fromNative } from '../errors.js';
import { inspectLora, type LoraFileInfo } from '../gguf/lora.js';
import { getAddon, type NativeLora, type NativeModel } from '../native/index.js';
import { describeValue } from './validate.js';

/** What loading an adapter needs of its model (kept structural: the Model class sits above). */
export interface LoraBase {
  readonly native: NativeModel;
  readonly path: string;
  readonly isDisposed: boolean;
  readonly info: { readonly nLayer: number };
}

/** A LoRA adapter loaded for one model. Apply it with `ctx.setLoras()` or `createContext({ lora })`. */
export class LoraAdapter {
  /** the adapter file */
  readonly path: string;
  /** adapter.lora.alpha: the update is scaled by scale * alpha / rank (0: by scale alone) */
  readonly alpha: number;
  /** the rank of its matrices (the largest, if they differ); undefined when it adapts no tensor */
  readonly rank: number | undefined;
  /** the model it was made for: architecture, and name when the file gives one */
  readonly baseModel: { readonly architecture: string; readonly name?: string };
  /** the base model's tensors it adapts */
  readonly targets: readonly string[];
  /** bytes of its tensors, held in memory while it is loaded */
  readonly sizeBytes: number;
  /** the adapter file's scalar metadata */
  readonly metadata: Readonly<Record<string, string>>;
  #native: NativeLora | undefined;
  #disposing: Promise<void> | undefined;

  /** @internal */
  constructor(
    /** the model it was loaded for */
    readonly model: LoraBase,
    native: NativeLora,
    info: LoraFileInfo,
    private readonly onDispose: (a: LoraAdapter) => void,
  ) {
    this.#native = native;
    this.path = info.path;
    this.alpha = info.alpha;
    this.rank = info.rank;
    this.baseModel = info.baseModel;
    this.targets = info.targets;
    this.sizeBytes = info.tensorBytes;
    this.metadata = native.info().metadata;
  }

  /** @internal the native adapter; DisposedError once disposed */
  get native(): NativeLora {
    if (!this.#native) throw new DisposedError(`the LoRA adapter ${this.path} has been disposed`);
    return this.#native;
  }

  get isDisposed(): boolean {
    return this.#native === undefined;
  }

  /**
   * Frees the adapter once no context applies it any more (contexts that do keep it until their
   * adapters change or they are disposed). Safe to call twice, before or after the model's dispose.
   */
  dispose(): Promise<void> {
    this.#disposing ??= (async () => {
      const native = this.#native;
      this.#native = undefined;
      this.onDispose(this);
      await native?.dispose();
    })();
    return this.#disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/**
 * Loads an adapter file for `model`: its header is checked against the model's first (missing or
 * corrupt file, another base model: typed errors), then llama.cpp loads it off the main thread.
 */
export async function loadLoraAdapter(model: LoraBase, path: unknown, onDispose: (a: LoraAdapter) => void): Promise<LoraAdapter> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new OptionsError(`Invalid argument path for loadLora: expected the path of a LoRA adapter GGUF file, received ${describeValue(path)}`);
  }
  if (model.info.nLayer === 0) throw new OptionsError('this model was loaded with vocabOnly: true and has no weights to adapt');
  const info = await inspectLora(path, model.path);
  if (model.isDisposed) throw new DisposedError('the model has been disposed');
  let native: NativeLora;
  try {
    native = await getAddon().loadLora(model.native, path);
  } catch (err) {
    throw fromNative(err, `cannot load the LoRA adapter ${path}`);
  }
  // the model went while the adapter loaded: the adapter goes with it
  if (model.isDisposed) {
    await native.dispose();
    throw new DisposedError('the model has been disposed');
  }
  return new LoraAdapter(model, native, info, onDispose);
}

/** Checks adapters given to a context of `model`: live, loaded for this model, each once. */
export function checkLoraUses(model: LoraBase, uses: ReadonlyArray<{ adapter: { readonly isDisposed: boolean }; scale: number }>, call: string): Array<{ adapter: LoraAdapter; scale: number }> {
  const seen = new Set<LoraAdapter>();
  return uses.map(({ adapter, scale }, i) => {
    if (!(adapter instanceof LoraAdapter)) throw new OptionsError(`Invalid option ${i}.adapter for ${call}: expected a LoraAdapter from model.loadLora()`);
    if (adapter.isDisposed) throw new DisposedError(`the LoRA adapter ${adapter.path} has been disposed; load it again with model.loadLora()`);
    if (adapter.model !== model) {
      throw new OptionsError(`the LoRA adapter ${adapter.path} was loaded for another model (${adapter.model.path}); load it for this one with model.loadLora()`);
    }
    if (seen.has(adapter)) throw new OptionsError(`the LoRA adapter ${adapter.path} is given twice to ${call}; give it once, with the sum of the scales`);
    seen.add(adapter);
    return { adapter, scale };
  });
}
