/**
 * The token ids of a chat's ChatML prompt, kept between turns. A prompt is the system turns,
 * then the messages, then the generation prompt; ChatML puts a special token between any two
 * messages (except within a run of tool results, which is one turn), and special tokens are
 * tokenized apart from text, so each message (or run of tool results) tokenizes on its own to
 * the ids it has in the whole prompt. They are kept per message object: a turn tokenizes only
 * the messages it has not seen, and a run of tool results again when a message comes after it
 * (the template then closes it differently).
 */
import type { Model } from '../engine/model.js';
import { IM_START, renderChat, renderMessageRange, renderToolsTurnParts } from './format.js';
import type { ChatMessage, PromptPart, ToolSpec } from './messages.js';
import { tokenizeParts } from './tokenize.js';

interface Unit {
  /** the messages of the unit: one, or a run of tool results */
  members: readonly ChatMessage[];
  /** what else the rendering depended on: neighbours, and the reply ids of an assistant message */
  variant: string;
  reply: readonly number[] | undefined;
  tokens: number[];
}

export class ChatTokens {
  private units = new WeakMap<ChatMessage, Unit>();
  private head: { key: string; tokens: number[] } | undefined;
  private generationPrompt: number[] | undefined;
  /** messages tokenized so far (a run of tool results counts its members) */
  tokenizedMessages = 0;

  constructor(private readonly model: Model) {}

  /**
   * Token ids of the prompt for `system` turns, `tools` and `messages`, with the generation
   * prompt; `replies` maps indexes of `messages` to the token ids the model generated for them.
   * Equal to promptTokens(model, 'chatml', [...system, ...messages], { tools, replies }) with
   * the replies' indexes moved by system.length.
   */
  prompt(system: readonly ChatMessage[], tools: readonly ToolSpec[], messages: readonly ChatMessage[], replies: ReadonlyMap<number, readonly number[]>): number[] {
    const all = [...system, ...messages];
    const s = system.length;
    if (s === 0 && tools.length > 0 && messages[0]?.role === 'tool') {
      // the tool results' text would join the tools turn's last text: no boundary to cut at
      const shifted = new Map([...replies].map(([i, t]) => [i + s, t]));
      this.tokenizedMessages += messages.length;
      return tokenizeParts(this.model, renderChat(all, { tools }), { addBos: true, replies: shifted });
    }
    const out = [...this.headTokens(all, s, tools)];
    for (let i = 0; i < messages.length; ) {
      let j = i + 1;
      if (messages[i].role === 'tool') while (j < messages.length && messages[j].role === 'tool') j++;
      for (const t of this.unitTokens(all, s, i, j, replies.get(i))) out.push(t);
      i = j;
    }
    for (const t of (this.generationPrompt ??= this.tokenize([{ text: IM_START, special: true }, { text: 'assistant\n', special: false }]))) out.push(t);
    return out;
  }

  private headTokens(all: readonly ChatMessage[], s: number, tools: readonly ToolSpec[]): number[] {
    const key = JSON.stringify([tools, all.slice(0, s)]);
    if (this.head?.key !== key) {
      this.head = { key, tokens: this.tokenize([...renderToolsTurnParts(tools), ...renderMessageRange(all, 0, s)], true) };
    }
    return this.head.tokens;
  }

  /** messages[i, j) of the prompt whose first s messages are system turns */
  private unitTokens(all: readonly ChatMessage[], s: number, i: number, j: number, reply: readonly number[] | undefined): number[] {
    const first = all[s + i];
    const members = all.slice(s + i, s + j);
    const variant = first.role === 'tool' ? `${s + i > 0 ? 'after' : 'first'}:${s + j < all.length ? 'followed' : 'last'}` : '';
    const known = this.units.get(first);
    if (
      known &&
      known.variant === variant &&
      known.reply === reply &&
      known.members.length === members.length &&
      known.members.every((m, k) => m === members[k])
    ) {
      return known.tokens;
    }
    const parts = renderMessageRange(all, s + i, s + j);
    const tokens = tokenizeParts(this.model, parts, { replies: reply ? new Map([[s + i, reply]]) : undefined });
    this.tokenizedMessages += members.length;
    this.units.set(first, { members, variant, reply, tokens });
    return tokens;
  }

  private tokenize(parts: readonly PromptPart[], addBos = false): number[] {
    return tokenizeParts(this.model, parts, { addBos });
  }
}
