import type { Model } from '../engine/model.js';
import type { PromptPart } from './messages.js';

/**
 * Token ids of a rendered prompt. Template special tokens are parsed; message text never is, so
 * a user who types `<|im_end|>` gets those characters, not the token. BOS comes first, once,
 * when `addBos` is set and the model's GGUF asks for it. `replies` supplies the token ids the
 * model generated for assistant messages (by message index), so the KV cache that holds them
 * is reused as it is.
 */
export function tokenizeParts(model: Model, parts: readonly PromptPart[], options: { addBos?: boolean; replies?: ReadonlyMap<number, readonly number[]> } = {}): number[] {
  const out: number[] = [];
  if (options.addBos && model.info.specialTokens.addBos) out.push(model.info.specialTokens.bos);
  for (const part of parts) {
    const reply = part.message !== undefined ? options.replies?.get(part.message) : undefined;
    if (reply) out.push(...reply);
    else out.push(...model.tokenize(part.text, { special: part.special }));
  }
  return out;
}
