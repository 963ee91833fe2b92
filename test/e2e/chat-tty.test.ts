// Drives `hermes3 chat` in a real terminal (tmux), as a user would: typing, Ctrl-C, commands.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES, cliPath } from '../fixtures.js';

const session = `hermes3-chat-${process.pid}`;
const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' });
const screen = () => tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-500');

async function waitFor(test: (text: string) => boolean, what: string, timeoutMs = 60_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const text = screen();
    if (test(text)) return text;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the screen shows:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const count = (text: string, s: string) => text.split(s).length - 1;

describe('hermes3 chat in a terminal', () => {
  afterAll(() => {
    try {
      tmux('kill-session', '-t', session);
    } catch {
      // already gone
    }
  });

  it('streams replies, stops one on Ctrl-C, runs /save /reset /load /system, and quits on Ctrl-C', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hermes3-tty-'));
    const saved = join(dir, 'talk.chat');
    const cmd = `${process.execPath} ${cliPath} chat --model ${FIXTURES.f16} --temperature 0 --max-tokens 3000; echo EXITED:$?; sleep 60`;
    tmux('new-session', '-d', '-s', session, '-x', '150', '-y', '50', cmd);
    await waitFor((t) => t.includes('/help for commands') && t.trimEnd().endsWith('>'), 'the first prompt');

    // a long reply, stopped with Ctrl-C once it has started streaming
    tmux('send-keys', '-t', session, 'Tell me everything you know.', 'Enter');
    const before = await waitFor((t) => t.split('Tell me everything you know.')[1]?.trim().length > 40, 'the reply to stream');
    tmux('send-keys', '-t', session, 'C-c');
    let text = await waitFor((t) => t.includes('[stopped:'), 'the reply to stop');
    expect(text).not.toContain('EXITED');
    expect(before.length).toBeGreaterThan(0);
    await waitFor((t) => t.trimEnd().endsWith('>'), 'the prompt after the stopped reply');

    tmux('send-keys', '-t', session, `/save ${saved}`, 'Enter');
    await waitFor((t) => t.includes(`saved to ${saved}`), 'the save');
    expect(existsSync(saved)).toBe(true);
    tmux('send-keys', '-t', session, '/reset', 'Enter');
    await waitFor((t) => t.includes('conversation cleared'), 'the reset');
    tmux('send-keys', '-t', session, `/load ${saved}`, 'Enter');
    await waitFor((t) => t.includes(`loaded ${saved} (2 messages)`), 'the load');
    tmux('send-keys', '-t', session, '/system Answer in one word.', 'Enter');
    await waitFor((t) => t.includes('system prompt set'), 'the system prompt');

    // Ctrl-C on an empty prompt quits cleanly
    tmux('send-keys', '-t', session, 'C-c');
    text = await waitFor((t) => t.includes('EXITED:'), 'the exit');
    expect(text).toContain('EXITED:0');
    expect(count(text, '[stopped:')).toBe(1);
  });
});
