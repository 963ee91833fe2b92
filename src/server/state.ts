/** What the routes share: the engine, the model's identity, limits, and the shutdown signal. */
import { setMaxListeners } from 'node:events';
import { statSync } from 'node:fs';
import type { Model } from '../engine/model.js';
import { ApiError, toApiError } from './http.js';
import type { ServerEngine } from './engine.js';
import type { Metrics } from './metrics.js';

export class ServerState {
  readonly createdAt = new Date();
  readonly fingerprint: string;
  readonly fileSize: number;
  readonly modifiedAt: Date;
  private readonly controller = new AbortController();

  constructor(
    readonly model: Model,
    readonly modelId: string,
    readonly engine: ServerEngine,
    readonly metrics: Metrics,
    readonly maxTokens: number,
    readonly version: string,
    /** where the server's log lines go (`ServerOptions.log`) */
    readonly log?: (line: string) => void,
  ) {
    // every request in flight listens for the shutdown: many more than Node's default warning level
    setMaxListeners(0, this.controller.signal);
    const st = statSync(model.path);
    this.fileSize = st.size;
    this.modifiedAt = st.mtime;
    this.fingerprint = `hermes3-native-${version}`;
  }

  /** aborted when the grace period of a shutdown ends */
  get shutdown(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * The API error for a failure. One the client cannot act on (a 500 that says "see the server
   * log") is written to the log with its stack, also when it ends a stream whose status was sent.
   */
  apiError(err: unknown, where: string): ApiError {
    const e = toApiError(err);
    if (e.status >= 500 && e.code === 'internal_error') this.log?.(`error in ${where}: ${(err as Error)?.stack ?? String(err)}`);
    return e;
  }

  abortAll(): void {
    this.controller.abort();
  }

  /** The names a client may use for the model: its id, with Ollama's `:latest`, or its file name. */
  names(): string[] {
    const file = this.model.path.split(/[\\/]/).pop()!;
    return [this.modelId, `${this.modelId}:latest`, file];
  }

  checkModel(name: string, param = 'model'): void {
    if (!this.names().includes(name)) {
      throw new ApiError(404, `the model ${JSON.stringify(name)} does not exist on this server; it serves ${JSON.stringify(this.modelId)} (GET /v1/models)`, 'invalid_request_error', 'model_not_found', param);
    }
  }

  checkMaxTokens(n: number | null | undefined, param = 'max_tokens'): void {
    if (n != null && n > this.maxTokens) {
      throw new ApiError(400, `${param} is ${n} but this server allows at most ${this.maxTokens} tokens per reply (--max-tokens)`, 'invalid_request_error', 'invalid_value', param);
    }
  }

  modelCard() {
    return { id: this.modelId, object: 'model', created: Math.floor(this.modifiedAt.getTime() / 1000), owned_by: 'hermes3-native' };
  }
}
