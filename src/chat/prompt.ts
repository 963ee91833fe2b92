/** Turning a conversation into the token ids of a prompt, in the chat's format. */
import type { Model } from '../engine/model.js';
import { renderChat } from './format.js';
import type { ChatMessage, PromptPart, ToolSpec } from './messages.js';
import { renderModelTemplate } from './template.js';
import { tokenizeParts } from './tokenize.js';

export type ChatFormatter = (messages: readonly ChatMessage[], options: { addGenerationPrompt: boolean; tools?: readonly ToolSpec[] }) => string;
export type ChatFormat = 'chatml' | 'model' | ChatFormatter;

/**
 * Token ids of `messages` with the generation prompt. `replies` maps message indexes to the
 * token ids the model generated for them (ChatML only), so their KV cache is reused as it is.
 */
export function promptTokens(
  model: Model,
  format: ChatFormat,
  messages: readonly ChatMessage[],
  options: { tools?: readonly ToolSpec[]; replies?: ReadonlyMap<number, readonly number[]> } = {},
): number[] {
  if (format === 'chatml') {
    return tokenizeParts(model, renderChat(messages, { tools: options.tools }), { addBos: true, replies: options.replies });
  }
  const text =
    format === 'model'
      ? renderModelTemplate(model.info.chatTemplate ?? '', messages, {
          tools: options.tools,
          addGenerationPrompt: true,
          eosToken: model.detokenize([model.info.specialTokens.eos], { special: true }),
        })
      : format(messages, { addGenerationPrompt: true, tools: options.tools });
  // a template string mixes template and content: special tokens are parsed throughout
  const parts: PromptPart[] = [{ text, special: true }];
  const tokens = tokenizeParts(model, parts, { addBos: true });
  const bos = model.info.specialTokens.bos;
  if (tokens[0] === bos && tokens[1] === bos) tokens.shift();
  return tokens;
}
