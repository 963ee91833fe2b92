import { createInterface, type Interface } from 'node:readline';
import { Hermes3Error } from '../errors.js';
import type { Chat } from '../chat/session.js';
import type { Command } from 'commander';
import { modelOptions, openModel, samplingArgs, samplingOptions, type CliIO, type Values } from './args.js';

const HELP = `In the chat:
  /system TEXT         set the system prompt (empty: none)
  /reset               forget the conversation
  /save FILE           save the conversation and its KV cache
  /load FILE           resume a saved conversation
  /help                this list
  /exit                quit`;

async function reply(chat: Chat, rl: Interface, text: string, out: NodeJS.WritableStream): Promise<void> {
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  rl.on('SIGINT', onSigint);
  try {
    out.write('\n');
    for await (const ev of chat.send(text, { signal: controller.signal })) {
      if (ev.type === 'text') out.write(ev.text);
      else if (ev.type === 'done') {
        const t = ev.timings;
        const reason = ev.finishReason === 'abort' ? 'stopped' : ev.finishReason;
        const dropped = ev.droppedMessages ? `, ${ev.droppedMessages} old messages dropped` : '';
        out.write(`\n\x1b[2m[${reason}: ${ev.usage.completionTokens} tokens, ${t.generateTokensPerSecond.toFixed(1)} tok/s, ${ev.usage.cachedTokens} of ${ev.usage.promptTokens} prompt tokens cached${dropped}]\x1b[0m\n\n`);
      }
    }
  } finally {
    rl.off('SIGINT', onSigint);
  }
}

async function command(chat: Chat, line: string, out: NodeJS.WritableStream): Promise<boolean> {
  const [name, ...rest] = line.slice(1).split(' ');
  const arg = rest.join(' ').trim();
  switch (name) {
    case 'exit':
    case 'quit':
      return false;
    case 'help':
      out.write(HELP + '\n');
      return true;
    case 'system':
      chat.systemPrompt = arg || undefined;
      out.write(arg ? 'system prompt set\n' : 'system prompt cleared\n');
      return true;
    case 'reset':
      chat.reset();
      out.write('conversation cleared\n');
      return true;
    case 'save':
    case 'load':
      if (!arg) {
        out.write(`usage: /${name} FILE\n`);
        return true;
      }
      if (name === 'save') {
        const r = await chat.save(arg);
        out.write(`saved to ${arg} (${r.mode === 'append' ? `${r.bytesWritten} bytes appended` : `${r.bytesWritten} bytes`})\n`);
      } else {
        const r = await chat.load(arg);
        out.write(`loaded ${arg} (${chat.history.length} messages)\n`);
        if (r.tornBytes > 0) out.write(`its last save was cut short (${r.tornBytes} bytes left out): the save before it was loaded\n`);
      }
      return true;
    default:
      out.write(`unknown command /${name}; /help lists the commands\n`);
      return true;
  }
}

export function register(program: Command, io: CliIO): void {
  const cmd = program
    .command('chat')
    .summary('chat with a model in the terminal')
    .description(
      'An interactive chat in the terminal. Replies stream as they are generated; Ctrl-C stops a reply\n(what was shown stays in the conversation), Ctrl-C on an empty line or Ctrl-D quits.',
    )
    .option('--system <text>', 'system prompt');
  samplingOptions(modelOptions(cmd), 512)
    .addHelpText('after', `\n${HELP}\n\nExample:\n  hermes3 chat --model Hermes-3-Llama-3.1-8B.Q4_K_M.gguf --system "You are Hermes."`)
    .action((values: Values) => chatCommand(values, io.out, io.signal));
}

export async function chatCommand(values: Values, out: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  const { model, context } = await openModel(values, 'chat', signal);
  const chat = model.chat({ context, systemPrompt: values.system as string | undefined, ...samplingArgs(values, 512) });
  const rl = createInterface({ input: process.stdin, output: out, terminal: process.stdin.isTTY });
  out.write(`${model.info.name || model.path} — /help for commands, Ctrl-D to quit\n\n`);
  // Ctrl-C at the prompt: clear a typed line, or quit on an empty one
  const onPromptSigint = () => {
    if (rl.line.length > 0) {
      (rl as unknown as { _deleteLineLeft?: () => void })._deleteLineLeft?.();
      rl.write('\n');
    } else rl.close();
  };
  // the line iterator buffers what is typed (or piped) while a reply streams
  const lines = rl[Symbol.asyncIterator]();
  rl.setPrompt('> ');
  try {
    for (;;) {
      rl.on('SIGINT', onPromptSigint);
      rl.prompt();
      const next = await lines.next();
      rl.off('SIGINT', onPromptSigint);
      if (next.done) break;
      const text = String(next.value).trim();
      if (!text) continue;
      try {
        if (text.startsWith('/')) {
          if (!(await command(chat, text, out))) break;
        } else {
          await reply(chat, rl, text, out);
        }
      } catch (err) {
        if (!(err instanceof Hermes3Error)) throw err;
        out.write(`error: ${err.message}\n`);
      }
    }
  } finally {
    rl.close();
    out.write('\n');
    await chat.dispose();
    await model.dispose();
  }
}
