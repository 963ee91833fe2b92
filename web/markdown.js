// Markdown for the chat page: the model's text never becomes HTML; links only to http(s) and
// mailto; images only as links. Loaded after marked.js (window.marked) and before app.js.

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]);
const SAFE_URL = /^(https?:\/\/|mailto:)/i;

function linkHtml(href, title, inner) {
  const url = String(href ?? '').trim();
  if (!SAFE_URL.test(url)) return inner;
  const t = title ? ` title="${escapeHtml(title)}"` : '';
  return `<a href="${escapeHtml(url)}"${t} target="_blank" rel="noopener noreferrer nofollow">${inner}</a>`;
}

if (window.marked) {
  window.marked.use({
    gfm: true,
    renderer: {
      // raw HTML in the model's Markdown is shown as text
      html({ text, block }) {
        return block ? `<p>${escapeHtml(text)}</p>` : escapeHtml(text);
      },
      link({ href, title, tokens }) {
        return linkHtml(href, title, this.parser.parseInline(tokens));
      },
      // no images from model output: a link to them at most
      image({ href, title, text }) {
        return linkHtml(href, title, escapeHtml(text || href));
      },
    },
  });
}

function markdown(text) {
  if (!window.marked) return `<p class="plain">${escapeHtml(text)}</p>`;
  return window.marked.parse(text, { async: false });
}
