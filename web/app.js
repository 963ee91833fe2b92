// The chat page of `hermes3 serve`: streams POST v1/chat/completions (OpenAI's SSE), renders
// replies as Markdown with raw HTML escaped, and keeps the conversation and settings in
// localStorage. Plain browser JavaScript, no build step; marked.js (loaded before) sets window.marked.
'use strict';

const $ = (id) => document.getElementById(id);
const KEYS = { chat: 'hermes3.chat', settings: 'hermes3.settings', apiKey: 'hermes3.apiKey' };
const SETTINGS = ['system-prompt', 'temperature', 'top-p', 'min-p', 'max-tokens', 'seed', 'tools', 'tool-choice'];

const state = {
  /** { role: 'user' | 'assistant' | 'tool', content, tool_calls?, tool_call_id?, name?, stats?, error?, status? } */
  messages: [],
  modelId: null,
  /** the AbortController of the reply being streamed */
  controller: null,
};

// ---------------------------------------------------------------------------------------------
// Storage

function load(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

// private mode or full storage: the page still works, it just forgets
const store = (key, value) => {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {}
};

const saveChat = () => store(KEYS.chat, state.messages);

// ---------------------------------------------------------------------------------------------
// Rendering

const list = $('messages');

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}

function atBottom() {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

function renderMessage(m) {
  const node = el('article', { class: `msg ${m.role}`, 'data-testid': `message-${m.role}`, 'data-role': m.role });
  if (m.role === 'tool') {
    node.append(el('div', { class: 'label' }, `Result${m.name ? ` of ${m.name}` : ''}`), el('pre', { class: 'tool-result', 'data-testid': 'tool-result' }, m.content));
    return node;
  }
  node.append(el('div', { class: 'label' }, m.role === 'user' ? 'You' : 'Hermes'));
  node.append(el('div', { class: m.role === 'user' ? 'content plain' : 'content markdown', 'data-testid': 'message-content' }));
  if (m.role === 'assistant') node.append(el('div', { class: 'tool-calls' }), el('div', { class: 'stats', 'data-testid': 'message-stats' }));
  updateMessage(node, m);
  return node;
}

/** Brings a message's element up to date with the message (called as a reply streams in). */
function updateMessage(node, m) {
  const content = node.querySelector('.content');
  if (m.role === 'user') content.textContent = m.content;
  else content.innerHTML = markdown(m.content);
  content.hidden = m.role === 'assistant' && m.content === '' && (m.tool_calls?.length ?? 0) > 0;
  if (m.role !== 'assistant') return;
  node.dataset.status = m.status ?? 'done';
  const calls = node.querySelector('.tool-calls');
  (m.tool_calls ?? []).forEach((c, i) => {
    let block = calls.children[i];
    if (!block) {
      block = el('div', { class: 'tool-call', 'data-testid': 'tool-call' });
      block.append(el('div', { class: 'tool-head' }, 'Tool call '), el('pre', { class: 'tool-args', 'data-testid': 'tool-call-args' }));
      block.firstChild.append(el('code', { class: 'tool-name', 'data-testid': 'tool-call-name' }));
      calls.append(block);
    }
    block.querySelector('.tool-name').textContent = c.function.name;
    block.querySelector('.tool-args').textContent = c.function.arguments;
  });
  node.querySelector('.stats').textContent = m.stats ?? '';
  let error = node.querySelector('.msg-error');
  if (m.error && !error) node.append((error = el('div', { class: 'msg-error', 'data-testid': 'message-error' })));
  if (error) error.textContent = m.error ?? '';
}

function renderAll() {
  list.replaceChildren();
  if (state.messages.length === 0) list.append(el('p', { class: 'empty', id: 'empty-hint' }, 'Send a message to start. Enter sends, Shift+Enter starts a new line.'));
  for (const m of state.messages) list.append(renderMessage(m));
  renderToolResults();
  list.scrollTop = list.scrollHeight;
}

function append(m) {
  $('empty-hint')?.remove();
  const node = list.appendChild(renderMessage(m));
  list.scrollTop = list.scrollHeight;
  return node;
}

/** Tool calls that ended a reply want results: a field per call, sent back as tool messages. */
function renderToolResults() {
  list.querySelector('.tool-results')?.remove();
  const last = state.messages.at(-1);
  const calls = last?.role === 'assistant' ? validCalls(last) : [];
  if (calls.length === 0 || state.controller) return;
  const form = el('form', { class: 'tool-results', 'data-testid': 'tool-results' });
  form.append(el('div', { class: 'label' }, 'Answer the tool calls'));
  calls.forEach((c, i) => {
    const id = `tool-result-${i}`;
    form.append(el('label', { for: id }, `Result of ${c.function.name}`), el('textarea', { id, rows: '2', spellcheck: 'false' }));
  });
  form.append(el('button', { type: 'submit' }, 'Send results'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (state.controller) return;
    calls.forEach((c, i) => {
      const m = { role: 'tool', tool_call_id: c.id, name: c.function.name, content: form.querySelector(`#tool-result-${i}`).value };
      state.messages.push(m);
      append(m);
    });
    form.remove();
    saveChat();
    generate();
  });
  list.append(form);
}

// ---------------------------------------------------------------------------------------------
// The API

function showError(message) {
  const banner = $('error');
  banner.textContent = message ?? '';
  banner.hidden = !message;
}

function headers() {
  const h = { 'content-type': 'application/json' };
  const key = $('api-key').value.trim();
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

/** The message of OpenAI's `{ error: { message } }`, or what the response says. */
async function errorOf(res) {
  const text = await res.text().catch(() => '');
  let message;
  try {
    message = JSON.parse(text)?.error?.message;
  } catch {}
  return message ? `${message} (HTTP ${res.status})` : `HTTP ${res.status} ${res.statusText}${text ? `: ${text.slice(0, 200)}` : ''}`;
}

async function loadModelName() {
  const label = $('model-name');
  try {
    const res = await fetch('v1/models', { headers: headers() });
    // the server wants a key: show the field for it
    if (res.status === 401) $('settings').open = true;
    if (!res.ok) throw new Error(await errorOf(res));
    state.modelId = (await res.json())?.data?.[0]?.id ?? null;
    label.textContent = state.modelId ?? 'no model';
    label.classList.remove('unavailable');
    showError('');
  } catch (err) {
    state.modelId = null;
    label.textContent = 'model unavailable';
    label.classList.add('unavailable');
    showError(`Could not list the models: ${err.message}`);
  }
}

/** A tool call whose arguments are a JSON object (one cut short by Stop or max tokens is not). */
function validCalls(m) {
  return (m.tool_calls ?? []).filter((c) => {
    try {
      const v = JSON.parse(c.function.arguments);
      return c.function.name && typeof v === 'object' && v !== null && !Array.isArray(v);
    } catch {
      return false;
    }
  });
}

function history() {
  const out = [];
  const system = $('system-prompt').value.trim();
  if (system) out.push({ role: 'system', content: system });
  for (const m of state.messages) {
    if (m.role === 'user') out.push({ role: 'user', content: m.content });
    else if (m.role === 'tool') out.push({ role: 'tool', tool_call_id: m.tool_call_id, content: m.content });
    else if (m.role === 'assistant') {
      const calls = validCalls(m).map(({ id, type, function: f }) => ({ id, type, function: { name: f.name, arguments: f.arguments } }));
      if (m.content === '' && calls.length === 0) continue;
      out.push(calls.length > 0 ? { role: 'assistant', content: m.content || null, tool_calls: calls } : { role: 'assistant', content: m.content });
    }
  }
  return out;
}

/** A number input's value; undefined when empty, which leaves the server's default. */
function numberField(id, name, integer = false) {
  const raw = $(id).value.trim();
  if (raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new Error(`${name} must be ${integer ? 'an integer' : 'a number'}`);
  return n;
}

function buildRequest() {
  const body = { model: state.modelId, messages: history(), stream: true, stream_options: { include_usage: true } };
  // min_p beside OpenAI's fields, as llama.cpp's server takes it
  const fields = [['temperature', 'temperature', 'Temperature'], ['top_p', 'top-p', 'Top-p'], ['min_p', 'min-p', 'Min-p'], ['max_tokens', 'max-tokens', 'Max tokens', true], ['seed', 'seed', 'Seed', true]];
  for (const [key, id, name, integer] of fields) {
    const v = numberField(id, name, integer);
    if (v !== undefined) body[key] = v;
  }
  const toolsText = $('tools').value.trim();
  if (toolsText) {
    let tools;
    try {
      tools = JSON.parse(toolsText);
    } catch (err) {
      throw new Error(`Tools are not JSON: ${err.message}`);
    }
    if (!Array.isArray(tools)) throw new Error('Tools must be a JSON array of { type: "function", function: { name, description, parameters } }');
    if (tools.length > 0) {
      body.tools = tools;
      body.tool_choice = $('tool-choice').value;
    }
  }
  return body;
}

/** The `data:` payloads of a server-sent event stream. */
async function* sseData(stream) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const events = (buffer + value).split(/\r?\n\r?\n/);
      buffer = events.pop();
      for (const event of events) {
        const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
        if (data.length > 0) yield data.join('\n');
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function statsOf({ usage, pieces, started, first, end, finish, stopped }) {
  const parts = [];
  const tokens = usage?.completion_tokens ?? pieces;
  if (tokens > 0) parts.push(`${usage ? '' : '≈'}${tokens} token${tokens === 1 ? '' : 's'}`);
  if (tokens > 1 && end > first) parts.push(`${((tokens - 1) / ((end - first) / 1000)).toFixed(1)} tok/s`);
  if (first) parts.push(`first token ${((first - started) / 1000).toFixed(2)} s`);
  if (stopped) parts.push('stopped');
  else if (finish === 'length') parts.push('cut at max tokens');
  return parts.join(' · ');
}

async function generate() {
  showError('');
  let body;
  try {
    if (!state.modelId) await loadModelName();
    if (!state.modelId) return;
    body = buildRequest();
  } catch (err) {
    showError(err.message);
    return;
  }
  const reply = { role: 'assistant', content: '', tool_calls: [], status: 'streaming' };
  state.messages.push(reply);
  const node = append(reply);
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  const run = { usage: null, pieces: 0, started: performance.now(), first: 0, end: 0, finish: null, stopped: false };
  let frame = 0;
  const paint = () => {
    frame = 0;
    const stick = atBottom();
    updateMessage(node, reply);
    if (stick) list.scrollTop = list.scrollHeight;
  };
  try {
    const res = await fetch('v1/chat/completions', { method: 'POST', headers: headers(), body: JSON.stringify(body), signal: controller.signal });
    if (!res.ok) throw new Error(await errorOf(res));
    for await (const data of sseData(res.body)) {
      if (data === '[DONE]') break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message ?? 'the server reported an error');
      if (chunk.usage) run.usage = chunk.usage;
      const choice = chunk.choices?.[0];
      if (!choice) continue;
      const delta = choice.delta ?? {};
      if (delta.content) reply.content += delta.content;
      for (const tc of delta.tool_calls ?? []) {
        const call = (reply.tool_calls[tc.index ?? 0] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
        if (tc.id) call.id = tc.id;
        if (tc.function?.name) call.function.name += tc.function.name;
        if (tc.function?.arguments) call.function.arguments += tc.function.arguments;
      }
      if (delta.content || delta.tool_calls) {
        run.pieces++;
        run.first ||= performance.now();
        frame ||= requestAnimationFrame(paint);
      }
      if (choice.finish_reason) run.finish = choice.finish_reason;
    }
  } catch (err) {
    if (controller.signal.aborted) run.stopped = true;
    else reply.error = err instanceof TypeError ? `Could not reach the server: ${err.message}` : err.message;
  } finally {
    cancelAnimationFrame(frame);
    run.end = performance.now();
    reply.status = reply.error ? 'error' : run.stopped ? 'stopped' : 'done';
    reply.stats = statsOf(run);
    updateMessage(node, reply);
    saveChat();
    // (New chat may have let go of this reply already)
    if (state.controller === controller) {
      state.controller = null;
      setBusy(false);
      renderToolResults();
    }
    if (atBottom() || reply.error) list.scrollTop = list.scrollHeight;
  }
}

// ---------------------------------------------------------------------------------------------
// Controls

function setBusy(busy) {
  $('send').disabled = busy;
  $('stop').disabled = !busy;
  list.setAttribute('aria-busy', String(busy));
}

const stop = () => state.controller?.abort();

function send() {
  const prompt = $('prompt');
  const text = prompt.value;
  if (state.controller || text.trim() === '') return;
  const m = { role: 'user', content: text };
  state.messages.push(m);
  list.querySelector('.tool-results')?.remove();
  append(m);
  prompt.value = '';
  saveChat();
  generate();
}

function newChat() {
  stop();
  state.controller = null;
  setBusy(false);
  state.messages = [];
  saveChat();
  showError('');
  renderAll();
  $('prompt').focus();
}

const saveSettings = () => store(KEYS.settings, Object.fromEntries(SETTINGS.map((id) => [id, $(id).value])));

function restore() {
  const settings = load(KEYS.settings, {});
  for (const id of SETTINGS) if (typeof settings[id] === 'string') $(id).value = settings[id];
  $('api-key').value = load(KEYS.apiKey, '');
  const messages = load(KEYS.chat, []);
  state.messages = Array.isArray(messages) ? messages.filter((m) => m && typeof m.content === 'string') : [];
  // a reply that was streaming when the page went away
  for (const m of state.messages) if (m.status === 'streaming') m.status = 'stopped';
  renderAll();
}

$('composer').addEventListener('submit', (e) => (e.preventDefault(), send()));
$('prompt').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  } else if (e.key === 'Escape' && state.controller) {
    stop();
  }
});
$('stop').addEventListener('click', stop);
$('new-chat').addEventListener('click', newChat);
$('settings-form').addEventListener('submit', (e) => e.preventDefault());
$('settings-form').addEventListener('input', (e) => e.target.id !== 'api-key' && saveSettings());
let keyTimer = 0;
$('api-key').addEventListener('input', () => {
  store(KEYS.apiKey, $('api-key').value.trim());
  clearTimeout(keyTimer);
  keyTimer = setTimeout(loadModelName, 400);
});
// a reload or closed tab mid-reply keeps what arrived
window.addEventListener('pagehide', saveChat);

// on a phone the settings start folded, leaving the screen to the chat
if (matchMedia('(max-width: 820px)').matches) $('settings').open = false;
restore();
loadModelName();
$('prompt').focus();
