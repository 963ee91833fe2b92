/** The model's own chat template: a ChatML check on load, and Jinja rendering for chatFormat 'model'. */
import { Template } from '@huggingface/jinja';
import { OptionsError } from '../errors.js';
import type { ChatMessage, ToolSpec } from './messages.js';

/** True when a chat template speaks ChatML (as Hermes 3's does). */
export function isChatMLTemplate(template: string): boolean {
  return template.includes('<|im_start|>') && template.includes('<|im_end|>');
}

/** The warning to show when a model's template is not ChatML, or undefined when it is (or has none). */
export function chatTemplateWarning(template: string | null, path: string): string | undefined {
  if (!template || isChatMLTemplate(template)) return undefined;
  return (
    `${path}: the model's chat template (tokenizer.chat_template) is not ChatML, the format Hermes 3 is trained on. ` +
    "Chats still use ChatML (chatFormat: 'chatml', the default), which is right for Hermes 3 fine-tunes with a stale template; " +
    "for a model of another family pass chatFormat: 'model' to render its own template, or a function."
  );
}

const cache = new Map<string, Template>();

/** Renders messages with the model's own Jinja template (BOS left to tokenization). */
export function renderModelTemplate(
  template: string,
  messages: readonly ChatMessage[],
  options: { tools?: readonly ToolSpec[]; addGenerationPrompt: boolean; eosToken: string },
): string {
  let compiled = cache.get(template);
  try {
    if (!compiled) {
      compiled = new Template(template);
      cache.set(template, compiled);
    }
    return compiled.render({
      messages: messages.map((m) =>
        m.role === 'assistant' && m.toolCalls
          ? { role: m.role, content: m.content, tool_calls: m.toolCalls.map((c) => ({ type: 'function', function: c })) }
          : m,
      ),
      tools: options.tools?.map((t) => ({ type: 'function', function: t })),
      add_generation_prompt: options.addGenerationPrompt,
      bos_token: '',
      eos_token: options.eosToken,
    });
  } catch (err) {
    throw new OptionsError(`the model's chat template could not be rendered: ${(err as Error).message}; use chatFormat: 'chatml' or a function`, { cause: err });
  }
}
