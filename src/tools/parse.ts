/**
 * Reading the tool calls Hermes writes, final and incremental. Accepts every variant in the
 * format notes: either key order, Python-style quotes, arguments as a JSON string, a missing
 * final </tool_call>, ```json fences, several calls in one block, and <scratch_pad>/<think>
 * blocks (dropped from the content). Whatever text does not parse stays content; only a
 * value that is not a string at all is refused (OptionsError).
 */
import { OptionsError } from '../errors.js';
import { describeValue } from '../engine/validate.js';
import { parseLooseJson, splitObjects } from './pyliteral.js';
import { heldSuffixLength } from '../engine/stop.js';

export interface ParsedToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

export interface ParsedOutput {
  content: string;
  toolCalls: ParsedToolCall[];
}

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';
const THINK = [
  ['<scratch_pad>', '</scratch_pad>'],
  ['<think>', '</think>'],
] as const;

function unfence(text: string): string {
  const m = /^\s*```[a-zA-Z]*\s*\n?([\s\S]*?)\n?\s*```\s*$/.exec(text);
  return m ? m[1] : text;
}

function toCall(value: unknown): ParsedToolCall | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  let v = value as Record<string, unknown>;
  if (v.function && typeof v.function === 'object' && !('name' in v)) v = v.function as Record<string, unknown>;
  if (typeof v.name !== 'string' || v.name.length === 0) return undefined;
  let args: unknown = v.arguments ?? v.parameters ?? {};
  if (typeof args === 'string') args = args.trim() === '' ? {} : parseLooseJson(args);
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return undefined;
  return { name: v.name, arguments: args as Record<string, unknown> };
}

/** The calls in one <tool_call> block's body, or undefined when it does not parse. */
export function parseCallBlock(body: string): ParsedToolCall[] | undefined {
  const text = unfence(body).trim();
  if (!text) return undefined;
  const whole = parseLooseJson(text);
  const values = whole !== undefined ? (Array.isArray(whole) ? whole : [whole]) : splitObjects(text)?.map(parseLooseJson);
  if (!values || values.length === 0) return undefined;
  const calls = values.map(toCall);
  return calls.every((c): c is ParsedToolCall => c !== undefined) ? calls : undefined;
}

/** Parses a whole reply: its content and its tool calls. */
export function parseToolCalls(text: string): ParsedOutput {
  if (typeof text !== 'string') throw new OptionsError(`Invalid argument text for parseToolCalls: expected a string (the reply's text), received ${describeValue(text)}`);
  const stream = new ToolCallStream();
  const events = [...stream.push(text), ...stream.end()];
  const toolCalls = events.flatMap((e) => (e.type === 'tool_call' ? [e.call] : []));
  let content = events.filter((e) => e.type === 'text').map((e) => (e as { text: string }).text).join('');
  // fences that wrapped the calls are not content
  if (toolCalls.length > 0) content = content.replace(/^[ \t]*```[a-zA-Z]*[ \t]*$/gm, '');
  return { content: content.trim(), toolCalls };
}

export type ToolStreamEvent = { type: 'text'; text: string } | { type: 'tool_call'; call: ParsedToolCall };

/**
 * Incremental reading for streaming: text is passed on as soon as it cannot be the start of a
 * tool call or a thinking block; a call is reported when its block closes (or at the end).
 */
export class ToolCallStream {
  private buffer = '';
  private mode: 'text' | 'call' | 'think' = 'text';
  private thinkClose = '';

  push(text: string): ToolStreamEvent[] {
    if (typeof text !== 'string') throw new OptionsError(`Invalid argument text for ToolCallStream.push: expected a string, received ${describeValue(text)}`);
    this.buffer += text;
    const out: ToolStreamEvent[] = [];
    for (;;) {
      if (this.mode === 'text') {
        const opens = [OPEN, ...THINK.map((t) => t[0])];
        let at = -1;
        let mark = '';
        for (const m of opens) {
          const i = this.buffer.indexOf(m);
          if (i !== -1 && (at === -1 || i < at)) [at, mark] = [i, m];
        }
        if (at === -1) {
          const keep = heldSuffixLength(this.buffer, opens);
          this.emitText(out, this.buffer.slice(0, this.buffer.length - keep));
          this.buffer = this.buffer.slice(this.buffer.length - keep);
          return out;
        }
        this.emitText(out, this.buffer.slice(0, at));
        this.buffer = this.buffer.slice(at + mark.length);
        if (mark === OPEN) this.mode = 'call';
        else {
          this.mode = 'think';
          this.thinkClose = THINK.find((t) => t[0] === mark)![1];
        }
      } else if (this.mode === 'think') {
        const i = this.buffer.indexOf(this.thinkClose);
        if (i === -1) return out;
        this.buffer = this.buffer.slice(i + this.thinkClose.length);
        this.mode = 'text';
      } else {
        // a call block ends at </tool_call>, or where the next block opens
        const close = this.buffer.indexOf(CLOSE);
        const next = this.buffer.indexOf(OPEN);
        const end = close === -1 ? next : next === -1 ? close : Math.min(close, next);
        if (end === -1) return out;
        this.finishBlock(out, this.buffer.slice(0, end), end === close);
        this.buffer = this.buffer.slice(end === close ? end + CLOSE.length : end);
        this.mode = 'text';
      }
    }
  }

  /** Ends the stream: an unclosed call block is parsed as it is (a missing </tool_call>). */
  end(): ToolStreamEvent[] {
    const out: ToolStreamEvent[] = [];
    if (this.mode === 'call') this.finishBlock(out, this.buffer, false);
    else if (this.mode === 'text') this.emitText(out, this.buffer);
    // an unclosed thinking block is dropped
    this.buffer = '';
    this.mode = 'text';
    return out;
  }

  private finishBlock(out: ToolStreamEvent[], body: string, closed: boolean): void {
    const calls = parseCallBlock(body);
    if (calls) {
      for (const call of calls) out.push({ type: 'tool_call', call });
    } else {
      this.emitText(out, OPEN + body + (closed ? CLOSE : ''));
    }
  }

  private emitText(out: ToolStreamEvent[], text: string): void {
    if (!text) return;
    const last = out[out.length - 1];
    if (last && last.type === 'text') last.text += text;
    else out.push({ type: 'text', text });
  }
}
