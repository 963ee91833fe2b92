/**
 * JSON the way the Hermes tool_use template prints it (Jinja's `tojson` as @huggingface/jinja
 * and transformers render it): `", "` and `": "` separators, keys in insertion order, non-ASCII
 * characters as they are.
 */
export function pyJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) return `[${value.map((v) => pyJson(v)).join(', ')}]`;
  // a Date (or any value with toJSON) as JSON.stringify writes it
  if (typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') return pyJson((value as { toJSON(): unknown }).toJSON());
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${pyJson(v)}`).join(', ')}}`;
  }
  return JSON.stringify(String(value));
}

const BASIC: Record<string, string> = { string: 'str', number: 'float', integer: 'int', boolean: 'bool' };

/**
 * The template's `json_to_python_type` macro, with two deliberate deviations where the template
 * is broken:
 * - arrays: it reads `json_spec|items` where it means `json_spec.items`, so Python's Jinja2
 *   writes `list[Union[]]`; this writes the intended element type, e.g. `list[str]`;
 * - type names it does not know (`"null"` in `["string", "null"]`): it iterates the string's
 *   characters and recurses forever; this writes `Any` for them (`Union[str,Any]`);
 * - a field without `type`, or `additionalProperties: false` (zod writes it for every object):
 *   Python's Jinja2 writes `Union[]` and `dict[str, Union[]]` (Undefined iterates as empty) and
 *   @huggingface/jinja throws; this writes `Any` and `dict`.
 */
export function pythonType(spec: unknown): string {
  const type = spec !== null && typeof spec === 'object' ? (spec as Record<string, unknown>).type : undefined;
  const s = spec as Record<string, unknown>;
  if (typeof type === 'string' && type in BASIC) return BASIC[type];
  if (type === 'array') return `list[${pythonType(s.items)}]`;
  if (type === 'object') {
    const extra = s.additionalProperties;
    if (extra === undefined || extra === false) return 'dict';
    return `dict[str, ${extra === true ? 'Any' : pythonType(extra)}]`;
  }
  // Jinja's `is iterable` holds for strings (their characters), lists and mappings (their keys)
  let members: unknown[] | undefined;
  if (typeof type === 'string') return 'Any';
  else if (Array.isArray(type)) members = type;
  else if (type !== null && typeof type === 'object') members = Object.keys(type);
  if (members) return `Union[${members.map((t) => pythonType({ type: t })).join(',')}]`;
  return 'Any';
}
