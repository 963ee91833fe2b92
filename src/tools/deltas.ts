/**
 * Tool calls as they are written, for APIs that stream them piece by piece (OpenAI's
 * `delta.tool_calls`): a call's name as soon as it is known, then its arguments' JSON text as
 * it grows, then the parsed call when its block closes. Under the tool-call grammar a block
 * is always `<tool_call>\n{"name": "...", "arguments": {...}}\n</tool_call>`; a block in any
 * other form is read whole when it closes (parseCallBlock), and text that is no call stays text.
 */
import { heldSuffixLength } from '../engine/stop.js';
import { parseCallBlock, type ParsedToolCall } from './parse.js';
import { parseLooseJson } from './pyliteral.js';

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';
const HEADER = /^\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*/;

export type ToolDeltaEvent =
  | { type: 'text'; text: string }
  /** a call begins: its index among the reply's calls and its name */
  | { type: 'call_start'; index: number; name: string }
  /** more of the call's arguments, as JSON text; joined, they are the whole arguments */
  | { type: 'call_args'; index: number; text: string }
  /** the call is complete; `arguments` is the JSON text of all call_args events (or of call.arguments when none were sent) */
  | { type: 'call_end'; index: number; call: ParsedToolCall; arguments: string };

interface Open {
  body: string;
  /** streaming the arguments: set once the header has been read */
  args?: { text: string; depth: number; inString: boolean; escape: boolean; done: boolean };
  index?: number;
  name?: string;
}

export class ToolCallDeltaStream {
  private buffer = '';
  private open: Open | undefined;
  private calls = 0;

  /** how many calls have started so far */
  get callCount(): number {
    return this.calls;
  }

  push(text: string): ToolDeltaEvent[] {
    const out: ToolDeltaEvent[] = [];
    this.buffer += text;
    for (;;) {
      if (!this.open) {
        const at = this.buffer.indexOf(OPEN);
        if (at === -1) {
          const keep = heldSuffixLength(this.buffer, [OPEN]);
          emitText(out, this.buffer.slice(0, this.buffer.length - keep));
          this.buffer = this.buffer.slice(this.buffer.length - keep);
          return out;
        }
        emitText(out, this.buffer.slice(0, at));
        this.buffer = this.buffer.slice(at + OPEN.length);
        this.open = { body: '' };
        continue;
      }
      // inside a block: it ends at </tool_call>, or where the next block opens
      const close = this.buffer.indexOf(CLOSE);
      const next = this.buffer.indexOf(OPEN);
      const end = close === -1 ? next : next === -1 ? close : Math.min(close, next);
      if (end === -1) {
        // keep back what could be the start of a closing or opening tag
        const keep = heldSuffixLength(this.buffer, [CLOSE, OPEN]);
        this.feed(out, this.buffer.slice(0, this.buffer.length - keep));
        this.buffer = this.buffer.slice(this.buffer.length - keep);
        return out;
      }
      this.feed(out, this.buffer.slice(0, end));
      this.buffer = this.buffer.slice(end === close ? end + CLOSE.length : end);
      this.finish(out, end === close);
    }
  }

  /** Ends the stream: an unclosed block is read as it is (a reply cut short, or a missing </tool_call>). */
  end(): ToolDeltaEvent[] {
    const out: ToolDeltaEvent[] = [];
    if (this.open) {
      this.feed(out, this.buffer);
      this.finish(out, false);
    } else {
      emitText(out, this.buffer);
    }
    this.buffer = '';
    return out;
  }

  private feed(out: ToolDeltaEvent[], text: string): void {
    const open = this.open!;
    open.body += text;
    if (!open.args) {
      const m = HEADER.exec(open.body);
      if (!m) return;
      let name: string;
      try {
        name = JSON.parse(`"${m[1]}"`) as string;
      } catch {
        return;
      }
      open.index = this.calls++;
      open.name = name;
      out.push({ type: 'call_start', index: open.index, name });
      open.args = { text: '', depth: 0, inString: false, escape: false, done: false };
      text = open.body.slice(m[0].length);
    }
    const a = open.args;
    let sent = '';
    for (const ch of text) {
      if (a.done) break;
      if (a.depth === 0 && a.text.length === 0) {
        // the arguments must be an object to stream; anything else is read at the block's end
        if (/\s/.test(ch)) continue;
        if (ch !== '{') {
          a.done = true;
          break;
        }
      }
      sent += ch;
      a.text += ch;
      if (a.inString) {
        if (a.escape) a.escape = false;
        else if (ch === '\\') a.escape = true;
        else if (ch === '"') a.inString = false;
      } else if (ch === '"') a.inString = true;
      else if (ch === '{' || ch === '[') a.depth++;
      else if (ch === '}' || ch === ']') {
        a.depth--;
        if (a.depth === 0) a.done = true;
      }
    }
    if (sent) out.push({ type: 'call_args', index: open.index!, text: sent });
  }

  private finish(out: ToolDeltaEvent[], closed: boolean): void {
    const open = this.open!;
    this.open = undefined;
    const parsed = parseCallBlock(open.body);
    if (open.index === undefined) {
      // never streamed: the whole block at once, or text when it is no call
      if (!parsed) {
        emitText(out, OPEN + open.body + (closed ? CLOSE : ''));
        return;
      }
      for (const call of parsed) {
        const index = this.calls++;
        const args = JSON.stringify(call.arguments);
        out.push({ type: 'call_start', index, name: call.name }, { type: 'call_args', index, text: args }, { type: 'call_end', index, call, arguments: args });
      }
      return;
    }
    const streamed = open.args!.text;
    let call = parsed?.[0];
    if (!call) {
      const name = open.name!;
      const value = parseLooseJson(streamed);
      call = { name, arguments: value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {} };
    }
    if (streamed.length === 0) {
      // the arguments were not an object: send them whole
      const args = JSON.stringify(call.arguments);
      out.push({ type: 'call_args', index: open.index, text: args }, { type: 'call_end', index: open.index, call, arguments: args });
      return;
    }
    out.push({ type: 'call_end', index: open.index, call, arguments: streamed });
  }
}

function emitText(out: ToolDeltaEvent[], text: string): void {
  if (!text) return;
  const last = out[out.length - 1];
  if (last && last.type === 'text') last.text += text;
  else out.push({ type: 'text', text });
}
