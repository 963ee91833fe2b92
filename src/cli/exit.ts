/** Exit codes that mean something, for scripts and service managers. */
import { AbortError, Hermes3Error, InsufficientMemoryError, OptionsError } from '../errors.js';

export const EXIT = {
  ok: 0,
  /** the command ran and failed (a model that does not load, a failed check) */
  failure: 1,
  /** wrong usage: an unknown command or option, a bad value */
  usage: 2,
  /** a model file or reference that does not exist */
  notFound: 3,
  /** the model or context does not fit in memory */
  memory: 4,
  /** a download failed or its file did not verify */
  download: 5,
  /** stopped with Ctrl-C */
  interrupted: 130,
} as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof OptionsError) return EXIT.usage;
  if (err instanceof InsufficientMemoryError) return EXIT.memory;
  if (err instanceof AbortError) return EXIT.interrupted;
  if (err instanceof Hermes3Error) {
    if (err.code === 'ERR_FILE_NOT_FOUND' || err.code === 'ERR_MODEL_NOT_FOUND') return EXIT.notFound;
    if (err.code === 'ERR_DOWNLOAD' || err.code === 'ERR_INTEGRITY' || err.code === 'ERR_DISK_FULL') return EXIT.download;
  }
  return EXIT.failure;
}

export const exitCodesHelp = `Exit codes: 0 ok, 1 failure, 2 usage, 3 model not found, 4 out of memory, 5 download or
integrity failure, 130 interrupted.`;
