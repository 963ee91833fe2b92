/** Server figures in Prometheus's text format (GET /metrics), as llama-server offers them. */
import type { GenerationTimings } from '../engine/sequence.js';

export class Metrics {
  private readonly requests = new Map<string, number>();
  private promptTokens = 0;
  private cachedTokens = 0;
  private evaluatedTokens = 0;
  private generatedTokens = 0;
  private promptMs = 0;
  private generateMs = 0;
  private busyMs = 0;
  private processingNow = 0;
  private queuedNow = 0;
  private slotsTotal = 0;
  private embeddedInputs = 0;
  private embeddedTokens = 0;
  private embeddingDecodes = 0;

  setSlots(n: number): void {
    this.slotsTotal = n;
  }

  /** A request answered: its route and HTTP status. */
  request(route: string, status: number): void {
    const key = `${route}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  queued(delta: number): void {
    this.queuedNow += delta;
  }

  processing(delta: number): void {
    this.processingNow += delta;
  }

  generation(t: GenerationTimings, wallMs: number): void {
    this.promptTokens += t.promptTokens;
    this.cachedTokens += t.cachedTokens;
    this.evaluatedTokens += t.evaluatedTokens;
    this.generatedTokens += t.generatedTokens;
    this.promptMs += t.promptMs;
    this.generateMs += t.generateMs;
    this.busyMs += wallMs;
  }

  /** An embedding request done: its inputs, their tokens, and the decodes they shared. */
  embedding(inputs: number, tokens: number, decodes: number): void {
    this.embeddedInputs += inputs;
    this.embeddedTokens += tokens;
    this.embeddingDecodes += decodes;
  }

  render(batch?: { decodeSteps: number; decodedTokens: number; widestStep: number }): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[string, number]>) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${Number.isFinite(value) ? value : 0}`);
    };
    const requests = [...this.requests].map(([key, n]): [string, number] => {
      const [route, status] = key.split('\u0000');
      return [`{route="${route.replace(/["\\\n]/g, '_')}",status="${status}"}`, n];
    });
    metric('hermes3_requests_total', 'counter', 'HTTP requests answered, by route and status.', requests.length > 0 ? requests : [['', 0]]);
    metric('hermes3_prompt_tokens_total', 'counter', 'Prompt tokens of all generations, cached or not.', [['', this.promptTokens]]);
    metric('hermes3_prompt_tokens_cached_total', 'counter', 'Prompt tokens found in a slot\'s KV cache and not evaluated again.', [['', this.cachedTokens]]);
    metric('hermes3_prompt_tokens_evaluated_total', 'counter', 'Prompt tokens evaluated.', [['', this.evaluatedTokens]]);
    metric('hermes3_generated_tokens_total', 'counter', 'Tokens generated.', [['', this.generatedTokens]]);
    metric('hermes3_prompt_seconds_total', 'counter', 'Time spent evaluating prompts.', [['', this.promptMs / 1000]]);
    metric('hermes3_generation_seconds_total', 'counter', 'Time spent generating.', [['', this.generateMs / 1000]]);
    metric('hermes3_prompt_tokens_per_second', 'gauge', 'Average prompt evaluation speed of one request.', [['', rate(this.evaluatedTokens, this.promptMs)]]);
    metric('hermes3_generated_tokens_per_second', 'gauge', 'Average generation speed of one request.', [['', rate(this.generatedTokens, this.generateMs)]]);
    metric('hermes3_requests_processing', 'gauge', 'Requests holding a slot now.', [['', this.processingNow]]);
    metric('hermes3_requests_queued', 'gauge', 'Requests waiting for a slot now.', [['', this.queuedNow]]);
    metric('hermes3_slots', 'gauge', 'Request slots (sequences of the shared context).', [['', this.slotsTotal]]);
    metric('hermes3_slot_busy_seconds_total', 'counter', 'Time requests held a slot, summed over slots.', [['', this.busyMs / 1000]]);
    metric('hermes3_embedding_inputs_total', 'counter', 'Inputs embedded (/v1/embeddings, /api/embed).', [['', this.embeddedInputs]]);
    metric('hermes3_embedding_tokens_total', 'counter', 'Tokens of the inputs embedded.', [['', this.embeddedTokens]]);
    metric('hermes3_embedding_decodes_total', 'counter', 'Decodes of the embedding context (several inputs share one).', [['', this.embeddingDecodes]]);
    if (batch) {
      metric('hermes3_decode_steps_total', 'counter', 'llama_decode calls of the shared context (one per step of all generating requests).', [['', batch.decodeSteps]]);
      metric('hermes3_decoded_tokens_total', 'counter', 'Tokens decoded in those steps, prompts included.', [['', batch.decodedTokens]]);
      metric('hermes3_batch_widest', 'gauge', 'The most requests one decode step has served.', [['', batch.widestStep]]);
    }
    return lines.join('\n') + '\n';
  }
}

function rate(n: number, ms: number): number {
  return ms > 0 ? (n * 1000) / ms : 0;
}
