/**
 * The message and tool shapes the chat functions accept: the project's own (ChatMessage,
 * ToolSpec) and OpenAI's, as the Chat Completions API and Transformers' apply_chat_template
 * take them. Everything is brought to the project's shape before rendering, and anything that
 * fits neither is an OptionsError naming the path, e.g. `messages[2].tool_calls[0].function.name`.
 *
 * Hand-written rather than zod: each value may take one of two shapes, told apart by which
 * fields it has, and zod's union issues would lose the path to the field at fault.
 */
import { describeValue } from '../engine/validate.js';
import { OptionsError } from '../errors.js';
import type { ChatMessage, ToolCall, ToolSpec } from './messages.js';

/** A part of OpenAI's array content. Only text: other parts (images, audio) are refused. */
export interface OpenAITextPart {
  type: 'text';
  text: string;
}

/** Content as OpenAI takes it: a string, or text parts (joined with `\n`, as llama.cpp's server and vLLM join them). */
export type OpenAIContent = string | OpenAITextPart[];

/** A tool call as OpenAI writes it: `arguments` is JSON text of an object (an object is accepted too). */
export interface OpenAIToolCall {
  id?: string;
  type?: 'function';
  function: { name: string; arguments: string | Record<string, unknown> };
}

/** A message of OpenAI's Chat Completions API (text only). `developer` is a system message. */
export type OpenAIChatMessage =
  | { role: 'system' | 'developer' | 'user'; content: OpenAIContent; name?: string }
  | { role: 'assistant'; content?: OpenAIContent | null; tool_calls?: OpenAIToolCall[]; name?: string; refusal?: string | null }
  | { role: 'tool'; content: OpenAIContent; tool_call_id: string; name?: string };

/** A tool as OpenAI's API takes it. */
export interface OpenAIToolSpec {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean | null };
}

/** A message in the project's shape or OpenAI's. */
export type ChatMessageInput = ChatMessage | OpenAIChatMessage;
/** A tool in the project's shape or OpenAI's. */
export type ToolSpecInput = ToolSpec | OpenAIToolSpec;

type Fields = Record<string, unknown>;

const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value);

function invalid(path: string, expected: string, value: unknown, why = ''): OptionsError {
  return new OptionsError(`Invalid ${path}: ${expected}, received ${describeValue(value)}${why}`);
}

function text(value: unknown, path: string): string {
  if (typeof value !== 'string') throw invalid(path, 'expected a string', value);
  return value;
}

const TEXT_PART = "{ type: 'text', text }";

function content(value: unknown, path: string): string {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) throw invalid(path, `expected a string or an array of text parts ${TEXT_PART}`, value);
  return value
    .map((part, k) => {
      const at = `${path}[${k}]`;
      if (!isObject(part)) throw invalid(at, `expected a text part ${TEXT_PART}`, part);
      if (part.type !== 'text') {
        throw invalid(`${at}.type`, "expected 'text'", part.type, '; images and other media are not supported by this model (Hermes 3 reads text only)');
      }
      return text(part.text, `${at}.text`);
    })
    .join('\n');
}

/**
 * The object inside OpenAI's `{ type: 'function', function: {...} }` wrapper (tools and tool
 * calls alike), or the value itself when it has no wrapper; the template unwraps the same way.
 */
function unwrap(value: Fields, path: string, expected: string): [Fields, string] {
  if (value.function === undefined) return [value, path];
  if (value.type !== undefined && value.type !== 'function') throw invalid(`${path}.type`, "expected 'function'", value.type);
  if (!isObject(value.function)) throw invalid(`${path}.function`, `expected an object ${expected}`, value.function);
  return [value.function, `${path}.function`];
}

/**
 * A call's arguments. In the project's shape a string is the model's own JSON text and is shown
 * as it is (as the template shows a string). OpenAI's is JSON text of an object, compact as
 * JSON.stringify writes it: parsed, it renders as the template renders a mapping (`tojson`),
 * i.e. exactly as the model wrote the call and as the project's object form renders.
 */
function callArguments(value: unknown, path: string, parseJson: boolean): Record<string, unknown> | string {
  const expected = 'expected an object or a JSON string of an object';
  if (typeof value === 'string' && parseJson) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (err) {
      throw invalid(path, expected, value, ` (not JSON: ${(err as Error).message})`);
    }
    if (!isObject(parsed)) throw invalid(path, expected, value, ' (JSON, but not of an object)');
    return parsed;
  }
  if (typeof value === 'string' || isObject(value)) return value;
  throw invalid(path, expected, value);
}

function toolCall(value: unknown, path: string, parseJson: boolean): ToolCall {
  const shape = '{ name, arguments }';
  if (!isObject(value)) throw invalid(path, `expected a tool call { type: 'function', function: ${shape} } or ${shape}`, value);
  const [call, at] = unwrap(value, path, shape);
  return { name: text(call.name, `${at}.name`), arguments: callArguments(call.arguments, `${at}.arguments`, parseJson) };
}

function assistant(m: Fields, path: string): ChatMessage {
  const own = m.toolCalls != null;
  const openai = m.tool_calls != null;
  if (own && openai) throw new OptionsError(`Invalid ${path}: has both toolCalls and tool_calls; give one of them`);
  if (!own && !openai) return { role: 'assistant', content: content(m.content, `${path}.content`) };
  const key = own ? 'toolCalls' : 'tool_calls';
  const calls = m[key];
  if (!Array.isArray(calls)) throw invalid(`${path}.${key}`, 'expected an array of tool calls', calls);
  return {
    role: 'assistant',
    // the template leaves out the text of a message with tool calls; OpenAI sends null there
    content: m.content == null ? '' : content(m.content, `${path}.content`),
    toolCalls: calls.map((c, j) => toolCall(c, `${path}.${key}[${j}]`, openai)),
  };
}

function message(m: unknown, path: string): ChatMessage {
  if (!isObject(m)) throw invalid(path, 'expected a message object { role, content }', m);
  switch (m.role) {
    case 'system':
    case 'developer':
      return { role: 'system', content: content(m.content, `${path}.content`) };
    case 'user':
      return { role: 'user', content: content(m.content, `${path}.content`) };
    case 'assistant':
      return assistant(m, path);
    case 'tool': {
      // tool_call_id pairs a result with its call; the Hermes template shows only the content
      if (m.tool_call_id !== undefined) text(m.tool_call_id, `${path}.tool_call_id`);
      const out: ChatMessage & { role: 'tool' } = { role: 'tool', content: content(m.content, `${path}.content`) };
      if (m.name !== undefined) out.name = text(m.name, `${path}.name`);
      return out;
    }
    default:
      throw invalid(`${path}.role`, "expected 'system', 'user', 'assistant', 'tool' or 'developer'", m.role);
  }
}

/**
 * Messages in the project's shape (ChatMessage) or OpenAI's, as new ChatMessage objects.
 * Throws an OptionsError naming the path (`${where}[i].field`) of the first value that fits neither.
 */
export function normalizeMessages(messages: unknown, where = 'messages'): ChatMessage[] {
  if (!Array.isArray(messages)) throw invalid(where, 'expected an array of messages', messages);
  return messages.map((m, i) => message(m, `${where}[${i}]`));
}

function tool(value: unknown, path: string): ToolSpec {
  const shape = '{ name, description, parameters }';
  if (!isObject(value)) throw invalid(path, `expected a tool { type: 'function', function: ${shape} } or ${shape}`, value);
  const [spec, at] = unwrap(value, path, shape);
  const out: ToolSpec = { name: text(spec.name, `${at}.name`) };
  if (spec.description !== undefined) out.description = text(spec.description, `${at}.description`);
  for (const key of ['parameters', 'return'] as const) {
    const schema = spec[key];
    if (schema === undefined) continue;
    if (!isObject(schema)) throw invalid(`${at}.${key}`, 'expected a JSON Schema object', schema);
    out[key] = schema;
  }
  return out;
}

/**
 * Tools in the project's shape (ToolSpec) or OpenAI's, as new ToolSpec objects.
 * Throws an OptionsError naming the path (`${where}[i].field`) of the first value that fits neither.
 */
export function normalizeTools(tools: unknown, where = 'tools'): ToolSpec[] {
  if (!Array.isArray(tools)) throw invalid(where, 'expected an array of tools', tools);
  return tools.map((t, i) => tool(t, `${where}[${i}]`));
}
