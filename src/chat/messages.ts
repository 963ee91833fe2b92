/** The messages of a Hermes 3 conversation. */
export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

/** A call the assistant made: arguments as an object, or as the JSON text the model wrote. */
export interface ToolCall {
  name: string;
  arguments: Record<string, unknown> | string;
}

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: ToolCall[] }
  | { role: 'tool'; content: string; name?: string };

/** A tool as the prompt shows it: a name, a description and a JSON Schema for its arguments. */
export interface ToolSpec {
  name: string;
  description?: string;
  /** JSON Schema of an object: `properties` (each with a `description`) and `required` */
  parameters?: Record<string, unknown>;
  /** JSON Schema of the result, shown as `-> type` and under "Returns:" */
  return?: Record<string, unknown>;
}

/** One piece of a rendered prompt: template special tokens are kept apart from all other text. */
export interface PromptPart {
  text: string;
  /** true for a special token of the template (tokenized with special-token parsing) */
  special: boolean;
  /** set on the part that is exactly the content of messages[message], an assistant reply */
  message?: number;
}
