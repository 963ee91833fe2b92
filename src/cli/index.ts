#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { Hermes3Error, OptionsError } from '../errors.js';
import type { CliIO } from './args.js';
import { register as bench } from './bench.js';
import { register as chat } from './chat.js';
import { register as demo } from './demo.js';
import { register as doctor } from './doctor.js';
import { EXIT, exitCodeFor, exitCodesHelp } from './exit.js';
import { register as inspect } from './inspect.js';
import { register as models } from './models.js';
import { register as plan } from './plan.js';
import { register as pull } from './pull.js';
import { register as quantize } from './quantize.js';
import { register as rpcServer } from './rpc-server.js';
import { register as run } from './run.js';
import { register as serve } from './serve.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The hermes3 program: every command registers itself on it. */
export function buildProgram(io: CliIO): Command {
  const program = new Command('hermes3')
    .description('Run Hermes 3 (Llama 3.1) GGUF models: chat, serve over HTTP, inspect, plan memory, benchmark.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(add --help for usage)')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) })
    .addHelpText('after', `\nEvery command takes --help.\n${exitCodesHelp}`);
  for (const register of [run, chat, serve, pull, models, inspect, plan, quantize, bench, doctor, rpcServer, demo]) register(program, io);
  for (const cmd of program.commands) cmd.exitOverride().showHelpAfterError('(add --help for usage)');
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  const io: CliIO = { out: process.stdout, signal: controller.signal };
  const program = buildProgram(io);
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return EXIT.usage;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return io.exitCode ?? EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here too
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    const name = program.args[0] ?? '';
    if (err instanceof OptionsError) {
      process.stderr.write(`hermes3 ${name}: ${err.message}\n(add --help for usage)\n`);
      return EXIT.usage;
    }
    if (err instanceof Hermes3Error) {
      process.stderr.write(`hermes3 ${name}: ${err.message} [${err.code}]\n`);
      return exitCodeFor(err);
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
