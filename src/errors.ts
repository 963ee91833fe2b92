/**
 * Every error the package raises is a Hermes3Error with a stable `code`. Messages say what was
 * expected, what was received and what to do.
 */
export class Hermes3Error extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An option or argument failed validation. */
export class OptionsError extends Hermes3Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_OPTIONS', message, options);
  }
}

/** A GGUF file is truncated, corrupt or not a GGUF file at all. */
export class GgufFormatError extends Hermes3Error {
  readonly path?: string;
  readonly offset?: number;
  constructor(message: string, details: { path?: string; offset?: number } = {}) {
    super('ERR_GGUF_FORMAT', message);
    this.path = details.path;
    this.offset = details.offset;
  }
}

/**
 * A model file cannot be read at all: it is missing (ERR_FILE_NOT_FOUND), a directory
 * (ERR_NOT_A_FILE), not readable by this process (ERR_FILE_UNREADABLE) or fails to open for
 * another reason (ERR_FILE_READ). An empty or foreign file is a GgufFormatError.
 */
export class ModelFileError extends Hermes3Error {
  readonly path: string;
  constructor(code: 'ERR_FILE_NOT_FOUND' | 'ERR_NOT_A_FILE' | 'ERR_FILE_UNREADABLE' | 'ERR_FILE_READ', message: string, details: { path: string; cause?: unknown }) {
    super(code, message, { cause: details.cause });
    this.path = details.path;
  }
}

/**
 * llama.cpp could not load a model file (ERR_MODEL_LOAD), or a LoRA adapter is not one it can use
 * (ERR_LORA_INVALID), was made for another base model (ERR_LORA_MISMATCH) or failed to load
 * (ERR_LORA_LOAD).
 */
export class ModelLoadError extends Hermes3Error {
  constructor(message: string, options?: { cause?: unknown; code?: 'ERR_MODEL_LOAD' | 'ERR_LORA_INVALID' | 'ERR_LORA_MISMATCH' | 'ERR_LORA_LOAD' }) {
    super(options?.code ?? 'ERR_MODEL_LOAD', message, { cause: options?.cause });
  }
}

/** The requested model, context or offload does not fit in the memory available. */
export class InsufficientMemoryError extends Hermes3Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INSUFFICIENT_MEMORY', message, options);
  }
}

/** The context has no room left for the tokens of a request. */
export class ContextOverflowError extends Hermes3Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CONTEXT_OVERFLOW', message, options);
  }
}

/** An operation was cancelled through an AbortSignal. */
export class AbortError extends Hermes3Error {
  constructor(message = 'the operation was aborted', options?: { cause?: unknown }) {
    super('ABORT_ERR', message, options);
  }
}

/** A model, context or sequence was used after dispose(). */
export class DisposedError extends Hermes3Error {
  constructor(message: string) {
    super('ERR_DISPOSED', message);
  }
}

/** The object is already running an operation that cannot run concurrently. */
export class BusyError extends Hermes3Error {
  constructor(message: string) {
    super('ERR_BUSY', message);
  }
}

/** The native addon could not be loaded, or failed in a way with no more specific class. */
export class NativeError extends Hermes3Error {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Maps an error thrown by the native addon (an Error with a string `code`) to a typed class. */
export function fromNative(err: unknown, context?: string): Hermes3Error {
  if (err instanceof Hermes3Error) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'ERR_NATIVE';
  const raw = typeof e?.message === 'string' ? e.message : String(err);
  const message = context ? `${context}: ${raw}` : raw;
  switch (code) {
    case 'ERR_MODEL_LOAD':
    case 'ERR_LORA_LOAD':
      return new ModelLoadError(message, { cause: err, code: code as 'ERR_MODEL_LOAD' | 'ERR_LORA_LOAD' });
    case 'ERR_RPC_CONNECT':
    case 'ERR_RPC_UNAVAILABLE':
      return new RpcError(message, { cause: err });
    case 'ERR_CONTEXT_FULL':
      return new ContextOverflowError(message, { cause: err });
    case 'ABORT_ERR':
      return new AbortError(message, { cause: err });
    case 'ERR_DISPOSED':
      return new DisposedError(message);
    case 'ERR_BUSY':
      return new BusyError(message);
    case 'ERR_INVALID_ARG':
    case 'ERR_INVALID_GRAMMAR':
      return new OptionsError(message, { cause: err });
    default:
      return new NativeError(code, message, { cause: err });
  }
}

/** A JSON-mode reply did not validate against its schema. */
export class SchemaValidationError extends Hermes3Error {
  readonly text: string;
  constructor(message: string, text: string, options?: { cause?: unknown }) {
    super('ERR_SCHEMA_VALIDATION', message, options);
    this.text = text;
  }
}

/** A download failed: the server refused it, the connection broke, or the answer made no sense. */
export class DownloadError extends Hermes3Error {
  readonly url?: string;
  /** the HTTP status, when the server answered */
  readonly status?: number;
  constructor(message: string, details: { url?: string; status?: number; cause?: unknown } = {}) {
    super('ERR_DOWNLOAD', message, { cause: details.cause });
    this.url = details.url;
    this.status = details.status;
  }
}

/** A downloaded file's size or SHA-256 is not the published one: it was refused and deleted. */
export class IntegrityError extends Hermes3Error {
  readonly path: string;
  readonly expected: string;
  readonly actual: string;
  constructor(message: string, details: { path: string; expected: string; actual: string }) {
    super('ERR_INTEGRITY', message);
    this.path = details.path;
    this.expected = details.expected;
    this.actual = details.actual;
  }
}

/** A model reference names no repository, file or quantization that exists, or no pulled model. */
export class ModelNotFoundError extends Hermes3Error {
  /** what does exist (quantizations or files), when known */
  readonly available: string[];
  constructor(message: string, available: string[] = []) {
    super('ERR_MODEL_NOT_FOUND', message);
    this.available = available;
  }
}

/** The disk holding the models directory is full; the partial download is kept for a resume. */
export class DiskFullError extends Hermes3Error {
  readonly path: string;
  /** bytes still to be written */
  readonly neededBytes: number;
  constructor(message: string, details: { path: string; neededBytes: number; cause?: unknown }) {
    super('ERR_DISK_FULL', message, { cause: details.cause });
    this.path = details.path;
    this.neededBytes = details.neededBytes;
  }
}

/** A model would have to be downloaded, and nobody agreed to it (no --yes, no confirmation). */
export class DownloadNotConfirmedError extends Hermes3Error {
  constructor(message: string) {
    super('ERR_DOWNLOAD_NOT_CONFIRMED', message);
  }
}

/** An rpc-server (ggml-rpc) could not be reached, refused, or went away; the message names it. */
export class RpcError extends Hermes3Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_RPC', message, options);
  }
}

/**
 * A chat file cannot be written (ERR_FILE_WRITE) or loaded: it is missing or unreadable
 * (ERR_FILE_NOT_FOUND, ERR_FILE_READ), not a chat file or damaged (ERR_CHAT_FILE), written by
 * a newer version (ERR_CHAT_FILE_VERSION), or saved with another model (ERR_CHAT_FILE_MODEL).
 * The chat that tried keeps its conversation.
 */
export class ChatFileError extends Hermes3Error {
  readonly path: string;
  constructor(
    code: 'ERR_FILE_NOT_FOUND' | 'ERR_FILE_READ' | 'ERR_FILE_WRITE' | 'ERR_CHAT_FILE' | 'ERR_CHAT_FILE_VERSION' | 'ERR_CHAT_FILE_MODEL',
    message: string,
    details: { path: string; cause?: unknown },
  ) {
    super(code, message, { cause: details.cause });
    this.path = details.path;
  }
}
