// The chat page at / in a real browser (Debian's chromium driven by playwright-core) against a
// real server on the synthetic model: streaming, Stop, reload, tool calls, errors, HTML escaping.
// The synthetic model writes random tokens, so the checks are on behaviour, not on text.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../src/index.js';
import { createServer, type Hermes3Server } from '../../src/server/index.js';
import { FIXTURES, root } from '../fixtures.js';

function findChromium(): string | undefined {
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const executablePath = findChromium();
const screenshot = join(root, '.cache', 'web-page.png');
const screenshotDark = join(root, '.cache', 'web-page-dark.png');
// generous: vitest runs other test files beside this one, and a starved CPU slows decoding a lot
const WAIT = { timeout: 45_000, interval: 50 };

const weatherTool = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Get the weather for a city.',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', enum: ['Paris', 'Oslo', 'Lima'] }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
        required: ['city', 'unit'],
      },
    },
  },
];

if (!executablePath) {
  console.warn('web page test skipped: chromium is not installed (apt-get install chromium)');
  describe.skip('the web chat page in a browser', () => {
    it.skip('chromium is not installed: apt-get install chromium', () => {});
  });
}

describe.runIf(executablePath !== undefined)('the web chat page in a browser', () => {
  let model: Model;
  let server: Hermes3Server;
  let url: string;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    model = await loadModel({ modelPath: FIXTURES.q8 });
    server = await createServer({ model, parallel: 2, ctx: 1024 });
    url = await server.listen({ port: 0 });
    browser = await chromium.launch({ executablePath, args: ['--no-sandbox'], headless: true });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    page.on('console', (msg) => {
      if (/Content.Security.Policy|Refused to/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await model?.dispose();
  });

  const byTestId = (id: string) => page.getByTestId(id);
  const lastReply = () => byTestId('message-assistant').last();
  const text = async (l: Locator) => (await l.textContent()) ?? '';
  const statusOf = (l: Locator) => l.getAttribute('data-status');

  async function settings(values: Record<string, string>) {
    for (const [id, value] of Object.entries(values)) {
      if (id === 'tool-choice') await byTestId(id).selectOption(value);
      else await byTestId(id).fill(value);
    }
  }

  /** Records the length of the newest reply's text (and tool arguments) at every DOM change. */
  async function watchLengths() {
    await page.evaluate(`(() => {
      window.__lengths = [];
      window.__argLengths = [];
      window.__observer?.disconnect();
      window.__observer = new MutationObserver(() => {
        const replies = document.querySelectorAll('[data-testid=message-assistant]');
        const last = replies[replies.length - 1];
        if (!last) return;
        window.__lengths.push(last.querySelector('[data-testid=message-content]').textContent.length);
        const args = last.querySelector('[data-testid=tool-call-args]');
        if (args) window.__argLengths.push(args.textContent.length);
      });
      window.__observer.observe(document.getElementById('messages'), { subtree: true, childList: true, characterData: true });
    })()`);
  }
  const distinctNonZero = async (name: string): Promise<number[]> => [...new Set((await page.evaluate(`window.${name}`)) as number[])].filter((n) => n > 0);

  async function waitForReplyEnd(): Promise<string | null> {
    await expect.poll(() => statusOf(lastReply()), WAIT).not.toBe('streaming');
    return statusOf(lastReply());
  }

  /** The newest reply as the page shows it (for failure messages). */
  async function describeReply(): Promise<string> {
    const r = lastReply();
    const error = (await r.getByTestId('message-error').count()) > 0 ? await text(r.getByTestId('message-error')) : '';
    return `status ${await statusOf(r)}, ${(await text(r.getByTestId('message-content'))).length} characters, stats "${await text(r.getByTestId('message-stats'))}", error "${error}"`;
  }

  /** Sends a message through the composer and waits for the reply to start streaming text. */
  async function sendAndWaitForText(message: string, minLength: number): Promise<void> {
    const replies = await byTestId('message-assistant').count();
    await byTestId('prompt').fill(message);
    await byTestId('prompt').press('Enter');
    await expect.poll(() => byTestId('message-assistant').count(), WAIT).toBe(replies + 1);
    const end = Date.now() + WAIT.timeout;
    while ((await text(lastReply().getByTestId('message-content'))).length <= minLength) {
      if ((await statusOf(lastReply())) !== 'streaming' || Date.now() > end) throw new Error(`expected a reply streaming text; the page shows ${await describeReply()}`);
      await page.waitForTimeout(WAIT.interval);
    }
  }

  async function health(): Promise<{ slots_busy: number }> {
    return (await (await fetch(`${url}/health`)).json()) as { slots_busy: number };
  }

  it('loads and shows the model name from /v1/models', async () => {
    await page.goto(url);
    await expect.poll(() => text(byTestId('model-name')), WAIT).toBe(server.modelId);
    expect(await byTestId('stop').isDisabled()).toBe(true);
    await settings({ 'system-prompt': 'You are Hermes.', temperature: '0.7', 'top-p': '0.95', 'min-p': '0.05', 'max-tokens': '40', seed: '1' });
  });

  it('streams a reply that grows as tokens arrive, renders it as Markdown and shows tokens/s', async () => {
    await watchLengths();
    const prompt = byTestId('prompt');
    await prompt.click();
    await page.keyboard.type('Tell me a story');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('about a lighthouse.');
    expect(await prompt.inputValue()).toBe('Tell me a story\nabout a lighthouse.');
    expect(await byTestId('message-user').count()).toBe(0);
    await page.keyboard.press('Enter');

    await expect.poll(() => byTestId('message-user').count(), WAIT).toBe(1);
    expect(await text(byTestId('message-user').first().getByTestId('message-content'))).toBe('Tell me a story\nabout a lighthouse.');
    expect(await prompt.inputValue()).toBe('');
    expect(await waitForReplyEnd()).toBe('done');

    const reply = lastReply();
    const final = (await text(reply.getByTestId('message-content'))).length;
    const seen = await distinctNonZero('__lengths');
    // the reply was seen at two lengths or more on its way to the end
    expect(final).toBeGreaterThan(0);
    expect(seen.filter((n) => n < final).length).toBeGreaterThanOrEqual(1);
    // rendered through marked: elements, not a raw string
    expect(await reply.getByTestId('message-content').locator(':scope > *').count()).toBeGreaterThan(0);
    expect(await text(reply.getByTestId('message-stats'))).toMatch(/\d+ tokens · [\d.]+ tok\/s/);
    expect(await byTestId('send').isEnabled()).toBe(true);
  });

  it('Stop ends a long generation, keeps what arrived and frees the server slot', async () => {
    await settings({ 'max-tokens': '2000' });
    await sendAndWaitForText('Write a very long essay.', 20);
    expect(await byTestId('stop').isEnabled()).toBe(true);
    await byTestId('stop').click();

    await expect.poll(() => statusOf(lastReply()), WAIT).toBe('stopped');
    const kept = await text(lastReply().getByTestId('message-content'));
    expect(kept.length).toBeGreaterThan(20);
    await page.waitForTimeout(600);
    expect(await text(lastReply().getByTestId('message-content'))).toBe(kept);
    expect(await text(lastReply().getByTestId('message-stats'))).toContain('stopped');
    expect(await byTestId('send').isEnabled()).toBe(true);
    expect(await byTestId('stop').isDisabled()).toBe(true);
    await expect.poll(async () => (await health()).slots_busy, { timeout: 10_000, interval: 50 }).toBe(0);
  });

  it('keeps the conversation and settings across a reload', async () => {
    const before = await byTestId('messages').getByTestId('message-content').allTextContents();
    expect(before.length).toBe(4);
    await page.reload();
    await expect.poll(() => text(byTestId('model-name')), WAIT).toBe(server.modelId);
    expect(await byTestId('messages').getByTestId('message-content').allTextContents()).toEqual(before);
    expect(await statusOf(lastReply())).toBe('stopped');
    expect(await byTestId('max-tokens').inputValue()).toBe('2000');
    expect(await byTestId('system-prompt').inputValue()).toBe('You are Hermes.');
  });

  it('shows a tool call block whose name and arguments grow as they stream', async () => {
    await page.getByText('Tools', { exact: true }).click();
    await settings({ tools: JSON.stringify(weatherTool, null, 2), 'tool-choice': 'required', 'max-tokens': '120' });
    try {
      await watchLengths();
      await byTestId('prompt').fill('What is the weather in Paris?');
      await byTestId('prompt').press('Enter');

      const call = lastReply().getByTestId('tool-call');
      await expect.poll(() => call.count(), WAIT).toBeGreaterThan(0);
      await expect.poll(() => text(call.first().getByTestId('tool-call-name')), WAIT).toBe('get_weather');
      await waitForReplyEnd();
      const args = await text(call.first().getByTestId('tool-call-args'));
      expect(args.length).toBeGreaterThan(0);
      expect((await distinctNonZero('__argLengths')).filter((n) => n < args.length).length).toBeGreaterThanOrEqual(1);

      mkdirSync(join(root, '.cache'), { recursive: true });
      await page.screenshot({ path: screenshot });
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.screenshot({ path: screenshotDark });
      await page.emulateMedia({ colorScheme: 'light' });
      expect(existsSync(screenshot)).toBe(true);

      // a finished call asks for its result, which goes back as a tool message for the next reply
      if ((await statusOf(lastReply())) === 'done' && (await byTestId('tool-results').count()) > 0) {
        const replies = await byTestId('message-assistant').count();
        const fields = byTestId('tool-results').locator('textarea');
        const calls = await fields.count();
        // a call cut short by max tokens has no JSON object to answer
        expect(calls).toBeGreaterThanOrEqual(1);
        expect(calls).toBeLessThanOrEqual(await call.count());
        for (let i = 0; i < calls; i++) await fields.nth(i).fill(`{"temperature": ${20 + i}}`);
        await settings({ 'tool-choice': 'none', 'max-tokens': '16' });
        await byTestId('tool-results').getByRole('button', { name: 'Send results' }).click();
        await expect.poll(() => byTestId('message-tool').count(), WAIT).toBe(calls);
        await expect.poll(() => byTestId('message-assistant').count(), WAIT).toBe(replies + 1);
        expect(await waitForReplyEnd()).not.toBe('error');
      }
    } finally {
      // the next tests write plain replies, whatever happened here
      if (await byTestId('stop').isEnabled()) await byTestId('stop').click();
      await settings({ tools: '', 'tool-choice': 'auto', 'max-tokens': '16' });
    }
  });

  it('shows the server error of a refused request', async () => {
    await settings({ 'max-tokens': '100000' });
    await byTestId('prompt').fill('This asks for too many tokens.');
    await byTestId('prompt').press('Enter');
    expect(await waitForReplyEnd()).toBe('error');
    expect(await text(lastReply().getByTestId('message-error'))).toMatch(/max_tokens.*at most \d+ tokens.*HTTP 400/);
    expect(await byTestId('send').isEnabled()).toBe(true);
    await settings({ 'max-tokens': '16' });
  });

  it('never turns message text into HTML', async () => {
    const attack = '<img src=x onerror=alert(1)>';
    await byTestId('prompt').fill(attack);
    await byTestId('prompt').press('Enter');
    expect(await waitForReplyEnd(), await describeReply()).not.toBe('error');
    expect(await text(byTestId('message-user').last().getByTestId('message-content'))).toBe(attack);
    expect(await page.locator('#messages img').count()).toBe(0);

    // a reply with raw HTML and unsafe links, as a model might write it, restored from storage
    // (in a page of its own: the page above saves its conversation when it goes away)
    const reply = [attack, '', '<script>alert(2)</script>', '', '[bad](javascript:alert(3)) [good](https://example.com/) ![pic](https://example.com/a.png) **bold** <b onmouseover=alert(4)>b</b>'].join('\n');
    const context = await browser.newContext();
    await context.addInitScript(`localStorage.setItem('hermes3.chat', ${JSON.stringify(JSON.stringify([{ role: 'user', content: attack }, { role: 'assistant', content: reply }]))})`);
    const other = await context.newPage();
    other.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    other.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    await other.goto(url);
    const content = other.getByTestId('message-assistant').last().getByTestId('message-content');
    await expect.poll(() => content.count(), WAIT).toBe(1);
    expect(await other.locator('#messages img, #messages script, #messages b').count()).toBe(0);
    expect(await other.locator('#messages a[href^="javascript"]').count()).toBe(0);
    expect(await content.locator('a[href="https://example.com/"]').count()).toBe(1);
    expect(await content.locator('a[href="https://example.com/"]').getAttribute('rel')).toContain('noopener');
    expect(await content.locator('strong').count()).toBe(1);
    expect(await text(content)).toContain(attack);
    await context.close();
  });

  it('New chat empties the conversation, in storage too, and ends a reply under way', async () => {
    await settings({ 'max-tokens': '2000' });
    await sendAndWaitForText('Another long essay, please.', 0);
    await byTestId('new-chat').click();
    expect(await byTestId('messages').locator('article').count()).toBe(0);
    expect(await byTestId('send').isEnabled()).toBe(true);
    await expect.poll(async () => (await health()).slots_busy, { timeout: 10_000, interval: 50 }).toBe(0);
    await page.waitForTimeout(300);
    expect(await byTestId('messages').locator('article').count()).toBe(0);
    await page.reload();
    await expect.poll(() => text(byTestId('model-name')), WAIT).toBe(server.modelId);
    expect(await byTestId('messages').locator('article').count()).toBe(0);
    expect(problems).toEqual([]);
  });
});
