/**
 * ChatML rendering exactly as Hermes 3 expects it: byte-equal to the GGUF's plain ChatML
 * template, and with tools to llama.cpp's NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja
 * (quirks included: consecutive tool results share one turn that ends without a newline).
 */
import type { ChatMessage, PromptPart, ToolCall, ToolSpec } from './messages.js';
import { normalizeMessages, normalizeTools, type ChatMessageInput, type ToolSpecInput } from './normalize.js';
import { pyJson, pythonType } from './pyjson.js';

export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';

export interface FormatOptions {
  /** tools to offer, in the project's shape or OpenAI's: renders the Hermes function-calling system turn first */
  tools?: readonly ToolSpecInput[];
  /** end with `<|im_start|>assistant\n` (default true) */
  addGenerationPrompt?: boolean;
}

class Parts {
  readonly parts: PromptPart[] = [];
  text(s: string): void {
    if (s.length === 0) return;
    const last = this.parts[this.parts.length - 1];
    if (last && !last.special && last.message === undefined) last.text += s;
    else this.parts.push({ text: s, special: false });
  }
  /** an assistant reply, kept whole: a chat substitutes the token ids the model generated */
  content(s: string, message: number): void {
    if (s.length > 0) this.parts.push({ text: s, special: false, message });
  }
  special(s: string): void {
    this.parts.push({ text: s, special: true });
  }
}

const TOOLS_INTRO =
  "You are a function calling AI model. You are provided with function signatures within <tools></tools> XML tags. You may call one or more functions to assist with the user query. Don't make assumptions about what values to plug into functions. Here are the available tools: <tools> ";
const TOOLS_OUTRO =
  ' </tools>Use the following pydantic model json schema for each tool call you will make: {"properties": {"name": {"title": "Name", "type": "string"}, "arguments": {"title": "Arguments", "type": "object"}}, "required": ["name", "arguments"], "title": "FunctionCall", "type": "object"}}\n' +
  'For each function call return a json object with function name and arguments within <tool_call></tool_call> XML tags as follows:\n' +
  '<tool_call>\n{"name": <function-name>, "arguments": <args-dict>}\n</tool_call>';

/** One tool as the template prints it inside <tools></tools>. */
export function renderTool(tool: ToolSpec): string {
  const params = (tool.parameters ?? {}) as { properties?: Record<string, Record<string, unknown>> };
  const props = Object.entries(params.properties ?? {});
  let desc = `${tool.name}(${props.map(([name, field]) => `${name}: ${pythonType(field)}`).join(', ')})`;
  if (tool.return !== undefined) desc += ` -> ${pythonType(tool.return)}`;
  desc += ` - ${tool.description ?? ''}\n\n`;
  props.forEach(([name, field], i) => {
    if (i === 0) desc += '    Args:\n';
    const text = typeof field?.description === 'string' ? field.description.trim() : '';
    desc += `        ${name}(${pythonType(field)}): ${text}`;
  });
  if (tool.return !== undefined && typeof tool.return.description === 'string') desc += `\n    Returns:\n        ${tool.return.description}`;
  const parameters = props.length === 0 ? '{}' : pyJson(tool.parameters);
  return `{"type": "function", "function": {"name": "${tool.name}", "description": "${desc}", "parameters": ${parameters}}`;
}

function renderToolCall(call: ToolCall): string {
  const args = typeof call.arguments === 'string' ? call.arguments : pyJson(call.arguments);
  return `\n<tool_call>\n{"name": "${call.name}", "arguments": ${args}}\n</tool_call>`;
}

/**
 * The prompt as parts: template special tokens apart from text (see tokenizeParts). Messages
 * and tools may come in the project's shape or OpenAI's (see normalizeMessages); anything
 * that fits neither is an OptionsError naming the path of the value at fault.
 */
export function renderChat(input: readonly ChatMessageInput[], options: FormatOptions = {}): PromptPart[] {
  const messages = normalizeMessages(input);
  const tools = options?.tools == null ? [] : normalizeTools(options.tools);
  const out = new Parts();
  renderToolsTurn(out, tools);
  renderMessages(out, messages, 0, messages.length);
  if (options?.addGenerationPrompt ?? true) {
    out.special(IM_START);
    out.text('assistant\n');
  }
  return out.parts;
}

/**
 * The parts of `messages[from, to)` as they stand inside the whole prompt of `messages` (a
 * message's neighbours decide how a run of tool results opens and closes). Concatenated over
 * consecutive ranges that split no run of tool results, they give renderChat's parts.
 */
export function renderMessageRange(messages: readonly ChatMessage[], from: number, to: number): PromptPart[] {
  const out = new Parts();
  renderMessages(out, messages, from, to);
  return out.parts;
}

/** The parts of the function-calling system turn for `tools` (none without tools). */
export function renderToolsTurnParts(tools: readonly ToolSpec[]): PromptPart[] {
  const out = new Parts();
  renderToolsTurn(out, tools);
  return out.parts;
}

function renderToolsTurn(out: Parts, tools: readonly ToolSpec[]): void {
  if (tools.length === 0) return;
  out.special(IM_START);
  out.text(`system\n${TOOLS_INTRO}${tools.map(renderTool).join('\n')}${TOOLS_OUTRO}`);
  out.special(IM_END);
  out.text('\n');
}

function renderMessages(out: Parts, messages: readonly ChatMessage[], from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const m = messages[i];
    const prev = messages[i - 1];
    const next = messages[i + 1];
    if (m.role === 'tool') {
      // a run of tool results is one turn; the template opens it only after another message
      if (prev && prev.role !== 'tool') {
        out.special(IM_START);
        out.text('tool\n');
      }
      out.text(`<tool_response>\n${m.content}\n</tool_response>${next ? '\n' : ''}`);
      if (!next || next.role !== 'tool') out.special(IM_END);
      continue;
    }
    out.special(IM_START);
    if (m.role === 'assistant' && m.toolCalls !== undefined) {
      out.text(`assistant${m.toolCalls.map(renderToolCall).join('')}`);
    } else if (m.role === 'assistant') {
      out.text('assistant\n');
      out.content(m.content, i);
    } else {
      out.text(`${m.role}\n${m.content}`);
    }
    out.special(IM_END);
    out.text('\n');
  }
}

/**
 * The exact ChatML prompt string. BOS is not part of it: tokenization adds it once, at the
 * start of a sequence, when the model's GGUF asks for it.
 */
export function formatChat(messages: readonly ChatMessageInput[], options: FormatOptions = {}): string {
  return renderChat(messages, options).map((p) => p.text).join('');
}
