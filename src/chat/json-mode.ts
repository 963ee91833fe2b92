/** Hermes 3's JSON-mode system prompt (see hermes-format.md): the schema the reply must follow. */
import { pyJson } from './pyjson.js';

export function jsonModePrompt(schema: Record<string, unknown>): string {
  return `You are a helpful assistant that answers in JSON. Here's the json schema you must adhere to:\n<schema>\n${pyJson(schema)}\n</schema>`;
}
