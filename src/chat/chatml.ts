/** ChatML, the prompt format Hermes 3 is trained on. */
export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/**
 * Renders messages as ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n` per turn, ending with
 * `<|im_start|>assistant\n` when `addGenerationPrompt` is set. BOS is not part of the string:
 * tokenization adds it once when the model asks for it.
 */
export function formatChat(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): string {
  let out = '';
  for (const m of messages) out += `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`;
  if (options.addGenerationPrompt ?? true) out += '<|im_start|>assistant\n';
  return out;
}
