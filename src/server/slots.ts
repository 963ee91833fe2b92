/**
 * Request slots: the sequences of the server's one context. A request takes the free slot
 * whose KV cache shares the longest prefix with its prompt (a client that resends its
 * conversation evaluates only the new turn), else the one idle longest; when all are busy it
 * waits in a bounded FIFO queue.
 */
import { AbortError, Hermes3Error } from '../errors.js';
import type { Context } from '../engine/context.js';
import { commonPrefix, type Sequence } from '../engine/sequence.js';

/** Every slot is busy and the queue is full: the client should retry later. */
export class ServerBusyError extends Hermes3Error {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super('ERR_SERVER_BUSY', message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export interface Slot {
  readonly id: number;
  readonly sequence: Sequence;
}

interface SlotState extends Slot {
  busy: boolean;
  lastUsed: number;
}

interface Waiter {
  prompt: readonly number[];
  resolve: (slot: Slot) => void;
  reject: (err: Error) => void;
}

export class SlotPool {
  private readonly slots: SlotState[];
  private readonly queue: Waiter[] = [];
  private clock = 0;
  private closed = false;

  constructor(
    readonly context: Context,
    private readonly maxQueue: number,
  ) {
    this.slots = Array.from({ length: context.nSeqMax }, (_, id) => ({ id, sequence: context.sequence(), busy: false, lastUsed: 0 }));
  }

  get size(): number {
    return this.slots.length;
  }

  get busyCount(): number {
    return this.slots.filter((s) => s.busy).length;
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  /** Takes a slot for `prompt`, waiting for one when all are busy. */
  acquire(prompt: readonly number[], signal?: AbortSignal): Promise<Slot> {
    if (this.closed) return Promise.reject(new ServerBusyError('the server is shutting down', 5));
    if (signal?.aborted) return Promise.reject(new AbortError('the request was aborted before it got a slot'));
    const free = this.pick(prompt);
    if (free) return Promise.resolve(this.take(free));
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(
        new ServerBusyError(`all ${this.slots.length} slots are busy and ${this.queue.length} requests are waiting; retry later`, 1),
      );
    }
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter = {
        prompt,
        resolve: (slot) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(slot);
        },
        reject,
      };
      const onAbort = () => {
        const i = this.queue.indexOf(waiter);
        if (i !== -1) this.queue.splice(i, 1);
        reject(new AbortError('the request was aborted while it waited for a slot'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /** Gives a slot back; the first waiter takes it. */
  release(slot: Slot): void {
    const s = this.slots[slot.id];
    s.busy = false;
    s.lastUsed = ++this.clock;
    const waiter = this.queue.shift();
    if (waiter) waiter.resolve(this.take(s));
  }

  /** Refuses new requests and fails those waiting. */
  close(): void {
    this.closed = true;
    for (const w of this.queue.splice(0)) w.reject(new ServerBusyError('the server is shutting down', 5));
  }

  private pick(prompt: readonly number[]): SlotState | undefined {
    let best: SlotState | undefined;
    let bestShared = -1;
    for (const s of this.slots) {
      if (s.busy) continue;
      const seq = s.sequence;
      const shared = commonPrefix(seq.tokens.slice(0, seq.cachedTokens), prompt);
      if (shared > bestShared || (shared === bestShared && best !== undefined && s.lastUsed < best.lastUsed)) {
        best = s;
        bestShared = shared;
      }
    }
    return best;
  }

  private take(s: SlotState): Slot {
    s.busy = true;
    return s;
  }
}
