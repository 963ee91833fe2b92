#!/usr/bin/env node
import { Hermes3Error, OptionsError } from '../errors.js';
import { benchCommand, benchUsage } from './bench.js';
import { chatCommand, chatUsage } from './chat.js';
import { demoCommand, demoUsage } from './demo.js';
import { inspectCommand, inspectUsage } from './inspect.js';
import { planCommand, planUsage } from './plan.js';
import { runCommand, runUsage } from './run.js';
import { serveCommand, serveUsage } from './serve.js';

const usage = `hermes3 <command> [options]

Commands:
  run      generate a reply to one prompt
  chat     chat with a model in the terminal
  serve    serve a model over HTTP: OpenAI's and Ollama's APIs and a chat page
  inspect  show what a GGUF file holds, without loading it
  plan     compute the memory a model, quantization and context need
  bench    measure speed, latency and memory beside llama.cpp's tools and node-llama-cpp
  demo     write a tiny synthetic model and stream a reply from it

Every command takes --help.`;

const commands: Record<string, { usage: string; run: (argv: string[], out: NodeJS.WritableStream, signal: AbortSignal) => Promise<unknown> }> = {
  run: { usage: runUsage, run: runCommand },
  chat: { usage: chatUsage, run: chatCommand },
  serve: { usage: serveUsage, run: serveCommand },
  inspect: { usage: inspectUsage, run: (argv, out) => inspectCommand(argv, out) },
  plan: { usage: planUsage, run: (argv, out) => planCommand(argv, out) },
  bench: { usage: benchUsage, run: benchCommand },
  demo: { usage: demoUsage, run: demoCommand },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(usage + '\n');
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`hermes3: unknown command '${name}'\n\n${usage}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage + '\n');
    return 0;
  }
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    await command.run(rest, process.stdout, controller.signal);
    return 0;
  } catch (err) {
    if (err instanceof OptionsError) {
      process.stderr.write(`hermes3 ${name}: ${err.message}\n\n${command.usage}\n`);
      return 2;
    }
    if (err instanceof Hermes3Error) {
      process.stderr.write(`hermes3 ${name}: ${err.message} [${err.code}]\n`);
      return 1;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

// a closed pipe (hermes3 plan | head) ends the program quietly
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
process.exitCode = await main(process.argv.slice(2));
