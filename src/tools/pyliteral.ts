/**
 * Reads JSON that a model wrote loosely: Python-style dicts (single quotes, True/False/None),
 * trailing commas. Returns undefined when the text is not one value.
 */
export function parseLooseJson(text: string): unknown {
  const trimmed = text.trim();
  if (!trimmed) return undefined;
  try {
    return JSON.parse(trimmed);
  } catch {
    // fall through to the Python-literal reading
  }
  let out = '';
  let i = 0;
  const s = trimmed;
  while (i < s.length) {
    const c = s[i];
    if (c === '"' || c === "'") {
      // copy a string literal, re-quoted with double quotes
      let j = i + 1;
      let body = '';
      while (j < s.length && s[j] !== c) {
        if (s[j] === '\\' && j + 1 < s.length) {
          const n = s[j + 1];
          body += n === "'" ? "'" : `\\${n}`;
          j += 2;
          continue;
        }
        body += s[j] === '"' ? '\\"' : s[j] === '\n' ? '\\n' : s[j];
        j++;
      }
      if (j >= s.length) return undefined;
      out += `"${body}"`;
      i = j + 1;
      continue;
    }
    const word = /^[A-Za-z_]+/.exec(s.slice(i))?.[0];
    if (word) {
      const map: Record<string, string> = { True: 'true', False: 'false', None: 'null', true: 'true', false: 'false', null: 'null' };
      if (!(word in map)) return undefined;
      out += map[word];
      i += word.length;
      continue;
    }
    if (c === ',') {
      // drop trailing commas before a closing bracket
      const rest = s.slice(i + 1).trimStart();
      if (rest.startsWith('}') || rest.startsWith(']')) {
        i++;
        continue;
      }
    }
    out += c;
    i++;
  }
  try {
    return JSON.parse(out);
  } catch {
    return undefined;
  }
}

/** Splits text holding several top-level JSON objects (one per line, or back to back). */
export function splitObjects(text: string): string[] | undefined {
  const parts: string[] = [];
  let depth = 0;
  let start = -1;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === '}') {
      depth--;
      if (depth < 0) return undefined;
      if (depth === 0) parts.push(text.slice(start, i + 1));
    } else if (depth === 0 && !/\s|,/.test(c)) {
      return undefined;
    }
  }
  return depth === 0 && parts.length > 0 ? parts : undefined;
}
