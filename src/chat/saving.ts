/**
 * Saving a chat and loading it again (the file format is in persist.ts). The first save to a
 * path writes the whole conversation and its KV cache; each later save of the same chat to that
 * path appends what changed since: the messages after the ones still saved, and the KV cells of
 * the tokens after the longest prefix still saved. The whole file is written again when the
 * saved tokens that no longer count outweigh half of those that do, when the file was replaced
 * meanwhile, or when the context cannot save a range (no free sequence slot, or a KV cache that
 * is not unified).
 */
import { resolve } from 'node:path';
import { BusyError, ChatFileError, NativeError } from '../errors.js';
import type { Model } from '../engine/model.js';
import { commonPrefix, type Sequence } from '../engine/sequence.js';
import type { ChatMessage } from './messages.js';
import { normalizeMessages } from './normalize.js';
import { ChatFileReader, appendChatRecord, writeChatFile, type ChatRecord, type ModelIdentity } from './persist.js';

/** What a chat keeps between turns, and what a file restores. */
export interface ChatSnapshot {
  systemPrompt: string | undefined;
  messages: ChatMessage[];
  replies: Map<number, number[]>;
}

export interface ChatSaveResult {
  /** 'full': the file was written whole; 'append': the changes since the last save were appended */
  mode: 'full' | 'append';
  /** bytes written by this save */
  bytesWritten: number;
  /** the file's length afterwards */
  fileBytes: number;
  /** tokens whose KV cache the file holds */
  tokens: number;
  /** tokens whose KV cells this save wrote */
  tokensWritten: number;
}

export interface ChatLoadResult {
  /** tokens restored into the KV cache */
  tokens: number;
  messages: number;
  /** saves the file holds (the whole conversation, then each appended change) */
  saves: number;
  /**
   * bytes after the last complete save, left out: a save that did not finish (the process
   * stopped while writing). The state of the save before it was loaded; the next save to the
   * file replaces those bytes.
   */
  tornBytes: number;
}

interface Saved {
  path: string;
  fileId: Buffer;
  /** end of the last record */
  bytes: number;
  tokens: number[];
  messages: ChatMessage[];
  replies: Map<number, number[]>;
  systemPrompt: string | undefined;
  /** tokens held in the file that the last state no longer holds */
  deadTokens: number;
  /** bytes after `bytes` may be a save that did not finish (a failed append, or a torn file loaded) */
  torn: boolean;
}

/** Identity of a model for chat files: a state is only meaningful to the model that made it. */
export function modelIdentity(model: Model): ModelIdentity {
  const { architecture, name, nParams, sizeBytes, nLayer, nEmbd, nHeadKv, nVocab, fileType } = model.info;
  return { architecture, name, nParams, sizeBytes, nLayer, nEmbd, nHeadKv, nVocab, fileType };
}

export class ChatSaver {
  private saved: Saved | undefined;

  constructor(private readonly model: Model) {}

  async save(path: string, seq: Sequence, snap: ChatSnapshot): Promise<ChatSaveResult> {
    const abs = resolve(path);
    const tokens = seq.tokens.slice(0, seq.cachedTokens);
    const last = this.saved;
    if (last && last.path === abs) {
      const keepTokens = commonPrefix(last.tokens, tokens);
      const deadTokens = last.deadTokens + last.tokens.length - keepTokens;
      if (deadTokens <= tokens.length / 2) {
        const appended = await this.append(last, seq, snap, tokens, keepTokens, deadTokens);
        if (appended) return appended;
      }
    }
    const { state } = await seq.saveState();
    const record: ChatRecord = {
      kind: 'base',
      model: modelIdentity(this.model),
      systemPrompt: snap.systemPrompt ?? null,
      keepMessages: 0,
      messages: snap.messages,
      replies: [...snap.replies],
      keepTokens: 0,
      tokens,
    };
    const { fileId, bytes } = await writeChatFile(abs, record, state);
    this.remember({ path: abs, fileId, bytes, tokens, deadTokens: 0, torn: false, ...snap });
    return { mode: 'full', bytesWritten: bytes, fileBytes: bytes, tokens: tokens.length, tokensWritten: tokens.length };
  }

  /** Restores `path` into `seq`; the caller takes the snapshot. On failure the file is left out of later saves. */
  async load(path: string, seq: Sequence): Promise<{ snap: ChatSnapshot; result: ChatLoadResult }> {
    const abs = resolve(path);
    const reader = await ChatFileReader.open(abs);
    this.saved = undefined;
    try {
      const first = await reader.next();
      if (!first) throw new ChatFileError('ERR_CHAT_FILE', `${path} is not a hermes3 chat file: it holds no conversation; pass a file written by chat.save()`, { path });
      this.checkModel(path, first.record.model!, reader.version);
      let messages: ChatMessage[] = [];
      let replies = new Map<number, number[]>();
      let systemPrompt: string | undefined;
      let deadTokens = 0;
      let saves = 0;
      for (let next: typeof first | undefined = first; next; next = await reader.next()) {
        const { record, state } = next;
        const keepTokens = record.kind === 'base' ? 0 : record.keepTokens;
        const keepMessages = record.kind === 'base' ? 0 : record.keepMessages;
        if (keepMessages > messages.length || keepTokens > seq.cachedTokens) {
          throw new ChatFileError('ERR_CHAT_FILE', `${path} is damaged: save ${saves + 1} builds on more than the saves before it hold; restore the file from a backup, or start a new chat`, { path });
        }
        let added: ChatMessage[];
        try {
          added = normalizeMessages(record.messages, 'messages');
        } catch (err) {
          throw new ChatFileError('ERR_CHAT_FILE', `${path} is damaged: save ${saves + 1} holds a message that is not one (${(err as Error).message}); restore the file from a backup, or start a new chat`, { path, cause: err });
        }
        if (record.kind === 'delta') deadTokens += seq.cachedTokens - keepTokens;
        try {
          if (record.kind === 'base') await seq.restoreState({ tokens: record.tokens, state });
          else await seq.appendState({ from: keepTokens, tokens: record.tokens, state });
        } catch (err) {
          const fix =
            err instanceof BusyError || (err instanceof NativeError && err.code === 'ERR_STATE' && /unified/.test(err.message))
              ? 'a file with appended saves loads through a free sequence slot of a unified KV cache: give the context one more in nSeqMax (and kvUnified: true), or load the file in a chat of its own'
              : `load it into a chat whose context is set like the one that saved it (nCtx at least ${keepTokens + record.tokens.length}, the same KV cache type, and with kvUnified: false the same nSeqMax)`;
          throw new ChatFileError('ERR_CHAT_FILE', `cannot restore save ${saves + 1} of ${path} into this chat's context: ${(err as Error).message}; ${fix}`, { path, cause: err });
        }
        messages = [...messages.slice(0, keepMessages), ...added];
        replies = new Map([...replies].filter(([i]) => i < keepMessages));
        for (const [i, ids] of record.replies) if (i < messages.length) replies.set(i, ids);
        systemPrompt = record.systemPrompt ?? undefined;
        saves++;
      }
      const snap: ChatSnapshot = { systemPrompt, messages, replies };
      const tokens = seq.tokens.slice(0, seq.cachedTokens);
      if (reader.fileId) this.remember({ path: abs, fileId: reader.fileId, bytes: reader.end, tokens, deadTokens, torn: reader.tornBytes > 0, ...snap });
      return { snap, result: { tokens: tokens.length, messages: messages.length, saves, tornBytes: reader.tornBytes } };
    } finally {
      await reader.close();
    }
  }

  private async append(last: Saved, seq: Sequence, snap: ChatSnapshot, tokens: number[], keepTokens: number, deadTokens: number): Promise<ChatSaveResult | undefined> {
    let keepMessages = 0;
    const n = Math.min(last.messages.length, snap.messages.length);
    while (keepMessages < n && last.messages[keepMessages] === snap.messages[keepMessages] && last.replies.get(keepMessages) === snap.replies.get(keepMessages)) {
      keepMessages++;
    }
    let range: { state: Buffer };
    try {
      range = await seq.saveStateRange(keepTokens);
    } catch (err) {
      // no free slot, or a KV cache whose sequences do not share cells: the whole state it is
      if (err instanceof BusyError || (err instanceof NativeError && err.code === 'ERR_STATE')) return undefined;
      throw err;
    }
    const record: ChatRecord = {
      kind: 'delta',
      systemPrompt: snap.systemPrompt ?? null,
      keepMessages,
      messages: snap.messages.slice(keepMessages),
      replies: [...snap.replies].filter(([i]) => i >= keepMessages),
      keepTokens,
      tokens: tokens.slice(keepTokens),
    };
    let bytes: number | undefined;
    try {
      bytes = await appendChatRecord(last.path, last.fileId, last.bytes, last.torn, record, range.state);
    } catch (err) {
      last.torn = true;
      throw err;
    }
    if (bytes === undefined) return undefined;
    const bytesWritten = bytes - last.bytes;
    this.remember({ ...last, bytes, tokens, deadTokens, torn: false, ...snap });
    return { mode: 'append', bytesWritten, fileBytes: bytes, tokens: tokens.length, tokensWritten: tokens.length - keepTokens };
  }

  private remember(saved: Saved): void {
    // the chat changes its arrays in place: keep copies
    this.saved = { ...saved, messages: saved.messages.slice(), replies: new Map(saved.replies) };
  }

  private checkModel(path: string, saved: ModelIdentity, version: number): void {
    const mine = modelIdentity(this.model);
    // version 1 files name fewer properties of the model
    const keys = version === 1 ? ['architecture', 'nParams', 'nVocab', 'fileType'] : Object.keys(mine);
    const differs = keys.filter((k) => saved?.[k] !== mine[k]);
    if (differs.length > 0) {
      const show = (m: ModelIdentity | undefined) => `${m?.name || m?.architecture} (${differs.map((k) => `${k} ${JSON.stringify(m?.[k])}`).join(', ')})`;
      throw new ChatFileError('ERR_CHAT_FILE_MODEL', `${path} was saved with another model, ${show(saved)}; this chat runs ${show(mine)}: load it into a chat of the model it was saved with`, { path });
    }
  }
}
