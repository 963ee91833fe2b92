/**
 * The chat format: whether the file's tokenizer.chat_template is Hermes's ChatML, what it carries
 * instead, and whether the vocabulary has ChatML's markers as single special tokens.
 */
import { isChatMLTemplate } from '../chat/template.js';
import type { GgufHeader } from '../gguf/reader.js';
import type { GgufArray } from '../gguf/types.js';
import type { Finding } from './types.js';

// markers of the other chat formats a GGUF may carry, the most specific first
const FORMATS: Array<[RegExp, string]> = [
  [/<\|start_header_id\|>/, "Llama 3's header format (<|start_header_id|>role<|end_header_id|> ... <|eot_id|>)"],
  [/<start_of_turn>/, "Gemma's turns (<start_of_turn> ... <end_of_turn>)"],
  [/\[INST\]/, "Llama 2 / Mistral's [INST] ... [/INST] format"],
  [/<\|User\|>|<｜User｜>/, "DeepSeek's <|User|> / <|Assistant|> format"],
  [/<\|user\|>|<\|assistant\|>/, 'the <|user|> / <|assistant|> format (Zephyr, Phi-3)'],
  [/### Instruction/, "Alpaca's ### Instruction / ### Response format"],
  [/<\|im_start\|>/, 'part of ChatML (<|im_start|> but no <|im_end|>)'],
];

const CHATML_FIX =
  "chats in hermes3-native use ChatML whatever the file says (chatFormat: 'chatml', the default), so they are right for Hermes 3. " +
  'Tools that follow the file\'s template (llama-server --jinja, LM Studio, Ollama imports) will prompt Hermes 3 in the wrong format, which explains gibberish or endless replies there: ' +
  'give them ChatML (llama-server --chat-template chatml), or get the official GGUF (NousResearch/Hermes-3-Llama-3.1-*-GGUF). ' +
  "If this model is not a Hermes 3 fine-tune, pass chatFormat: 'model' to render its own template.";

/** What a non-ChatML template carries, in words. */
export function templateFormat(template: string): string {
  for (const [pattern, name] of FORMATS) if (pattern.test(template)) return name;
  return `an unrecognised format (it begins ${JSON.stringify(template.slice(0, 60))})`;
}

export function checkChatTemplate(header: Pick<GgufHeader, 'metadata'>): Finding {
  const template = header.metadata.get('tokenizer.chat_template')?.value;
  if (typeof template !== 'string' || template.length === 0) {
    return {
      id: 'chat.template',
      status: 'warn',
      title: 'the model has no chat template',
      detail: 'tokenizer.chat_template is absent: hermes3-native still renders ChatML, but other tools fall back to guesses.',
      fix: CHATML_FIX,
    };
  }
  if (isChatMLTemplate(template)) {
    return { id: 'chat.template', status: 'ok', title: 'chat template is ChatML', detail: `tokenizer.chat_template (${template.length} characters) has <|im_start|> and <|im_end|>, Hermes 3's format` };
  }
  const carries = templateFormat(template);
  return {
    id: 'chat.template',
    status: 'warn',
    title: 'the chat template is not ChatML',
    detail: `tokenizer.chat_template (${template.length} characters) carries ${carries} instead of ChatML (<|im_start|> ... <|im_end|>), the format Hermes 3 is trained on.`,
    fix: CHATML_FIX,
    data: { carries },
  };
}

const TOKEN_TYPES: Record<number, string> = { 1: 'normal', 2: 'unknown', 3: 'control', 4: 'user-defined', 5: 'unused', 6: 'byte' };

/** ChatML's markers must each be one special token, or prompts become plain-text pieces the model never saw. */
export function checkChatTokens(header: Pick<GgufHeader, 'metadata'>): Finding {
  const tokens = header.metadata.get('tokenizer.ggml.tokens')?.value as GgufArray | undefined;
  if (!tokens || !('values' in tokens)) {
    return { id: 'chat.tokens', status: 'fail', title: 'the model has no vocabulary', detail: 'tokenizer.ggml.tokens is missing: llama.cpp cannot tokenize with this file.', fix: 'use a complete model GGUF (a file converted with its tokenizer)' };
  }
  const types = header.metadata.get('tokenizer.ggml.token_type')?.value as GgufArray | undefined;
  const values = tokens.values;
  const found: string[] = [];
  const problems: string[] = [];
  for (const marker of ['<|im_start|>', '<|im_end|>']) {
    const id = values.indexOf(marker);
    if (id < 0) {
      problems.push(`${marker} is not in the vocabulary (it is split into pieces)`);
      continue;
    }
    const type = types ? Number(types.values[id]) : undefined;
    // llama.cpp matches control, user-defined and unknown tokens as whole tokens in text
    if (type !== undefined && type !== 3 && type !== 4 && type !== 2) problems.push(`${marker} is token ${id} but of type ${TOKEN_TYPES[type] ?? type}, so text is not matched to it`);
    else found.push(`${marker} ${id}`);
  }
  if (problems.length === 0) return { id: 'chat.tokens', status: 'ok', title: 'ChatML tokens in the vocabulary', detail: `single special tokens: ${found.join(', ')}` };
  return {
    id: 'chat.tokens',
    status: 'warn',
    title: 'the vocabulary lacks ChatML tokens',
    detail: `${problems.join('; ')}. This is not a Hermes 3 vocabulary: ChatML prompts reach the model as ordinary text.`,
    fix: "for a model of another family pass chatFormat: 'model' (its own template); for Hermes 3, get the official GGUF (NousResearch/Hermes-3-Llama-3.1-*-GGUF)",
  };
}
