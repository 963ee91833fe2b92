/**
 * JSON Schema to GBNF (llama.cpp's grammar format), for the schemas zod writes: objects with
 * required and optional properties, strings (enum, const, length), numbers, integers, booleans,
 * null, arrays (items, prefixItems, min/max items), unions (anyOf, oneOf, type lists), records
 * (additionalProperties) and $ref into $defs. Numeric bounds, string patterns and formats are
 * not enforced by the grammar, nor are length and item bounds above MAX_REPEAT (llama.cpp expands
 * a repetition into one rule per repeat); the caller validates the parsed value. A schema that is
 * malformed, admits no value or uses an unsupported type raises OptionsError.
 */
import { OptionsError } from '../errors.js';

type Schema = Record<string, unknown> | boolean;

/** The largest length or item bound written into a grammar; larger ones are left to validation. */
export const MAX_REPEAT = 1000;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const PRIMITIVES: Record<string, string> = {
  space: '| " " | "\\n" [ \\t]{0,20}',
  boolean: '("true" | "false") space',
  null: '"null" space',
  // at most 15 digits: every such integer is exact in a JS number
  integer: '("-"? ([0-9] | [1-9] [0-9]{0,14})) space',
  number: '("-"? ([0-9] | [1-9] [0-9]{0,14})) ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,2})? space',
  'nonnegative-integer': '([0-9] | [1-9] [0-9]{0,14}) space',
  'nonnegative-number': '([0-9] | [1-9] [0-9]{0,14}) ("." [0-9]{1,15})? space',
  char: '[^"\\\\\\x7F\\x00-\\x1F] | [\\\\] (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})',
  string: '"\\"" char* "\\"" space',
  value: 'object | array | string | number | boolean | null',
  object: '"{" space ( string ":" space value ("," space string ":" space value)* )? "}" space',
  array: '"[" space ( value ("," space value)* )? "]" space',
};
const DEPENDS: Record<string, string[]> = {
  string: ['char', 'space'],
  value: ['object', 'array', 'string', 'number', 'boolean', 'null'],
  object: ['string', 'value', 'space'],
  array: ['value', 'space'],
  boolean: ['space'],
  null: ['space'],
  integer: ['space'],
  number: ['space'],
  'nonnegative-integer': ['space'],
  'nonnegative-number': ['space'],
};

/** A GBNF string literal for `text`. */
export function gbnfLiteral(text: string): string {
  return `"${text.replace(/[\\"\n\r\t]/g, (c) => ({ '\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c]!)}"`;
}

export class GrammarBuilder {
  private rules = new Map<string, string>();
  private defs: Record<string, Schema> = {};
  private refs = new Map<string, string>();
  private root: Schema | undefined;

  private static base(name: string): string {
    return name.replace(/[^a-zA-Z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'r';
  }

  /** A rule name no rule has yet. */
  private fresh(name: string): string {
    const base = GrammarBuilder.base(name);
    let n = base;
    for (let i = 1; this.rules.has(n); i++) n = `${base}-${i}`;
    return n;
  }

  /** Adds a rule, renaming on collision; returns its name. */
  rule(name: string, body: string): string {
    const base = GrammarBuilder.base(name);
    let n = base;
    for (let i = 1; this.rules.has(n) && this.rules.get(n) !== body; i++) n = `${base}-${i}`;
    this.rules.set(n, body);
    return n;
  }

  private primitive(name: string): string {
    if (!this.rules.has(name)) {
      this.rules.set(name, PRIMITIVES[name]);
      for (const dep of DEPENDS[name] ?? []) this.primitive(dep);
    }
    return name;
  }

  /** Adds the rules for a JSON schema; returns the rule name that matches its values. */
  schema(schema: Schema, name: string): string {
    this.root = schema;
    this.refs.clear();
    if (isPlainObject(schema)) {
      const defs = schema.$defs ?? schema.definitions;
      if (isPlainObject(defs)) Object.assign(this.defs, defs);
    }
    return this.visit(schema, name);
  }

  private visit(schema: Schema, name: string): string {
    if (typeof schema !== 'boolean' && !isPlainObject(schema)) {
      throw new OptionsError(`the schema at ${name} is ${schema === null ? 'null' : Array.isArray(schema) ? 'an array' : `a ${typeof schema}`}; expected an object or a boolean`);
    }
    if (schema === true || (typeof schema === 'object' && Object.keys(schema).filter((k) => !['description', 'title', 'default', '$schema', 'examples'].includes(k)).length === 0)) {
      return this.primitive('value');
    }
    if (schema === false) throw new OptionsError(`the schema at ${name} is false: it admits no value`);
    const s = schema as Record<string, unknown>;
    if (typeof s.$ref === 'string') return this.ref(s.$ref);
    if ('const' in s) return this.withSpace(name, `${gbnfLiteral(JSON.stringify(s.const))} space`);
    if (Array.isArray(s.enum)) {
      if (s.enum.length === 0) throw new OptionsError(`the enum at ${name} is empty: it admits no value`);
      this.primitive('space');
      return this.rule(name, `(${s.enum.map((v) => gbnfLiteral(JSON.stringify(v))).join(' | ')}) space`);
    }
    const alternatives = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
    if (Array.isArray(alternatives)) {
      if (alternatives.length === 0) throw new OptionsError(`the anyOf/oneOf at ${name} is empty: it admits no value`);
      const names = alternatives.map((alt, i) => this.visit(alt, `${name}-${i}`));
      return this.rule(name, names.join(' | '));
    }
    if (Array.isArray(s.allOf) && s.allOf.length === 1) return this.visit(s.allOf[0] as Schema, name);
    if (Array.isArray(s.type)) {
      if (s.type.length === 0) throw new OptionsError(`the type list at ${name} is empty: it admits no value`);
      const names = s.type.map((t, i) => this.visit({ ...s, type: t }, `${name}-${i}`));
      return this.rule(name, names.join(' | '));
    }
    switch (s.type) {
      case 'string':
        return this.stringRule(s, name);
      case 'integer':
      case 'number':
        return this.numberRule(s, s.type, name);
      case 'boolean':
      case 'null':
        return this.primitive(s.type);
      case 'array':
        return this.arrayRule(s, name);
      case 'object':
        return this.objectRule(s, name);
      case undefined:
        if (s.properties) return this.objectRule(s, name);
        if (s.items || s.prefixItems) return this.arrayRule(s, name);
        return this.primitive('value');
      default:
        throw new OptionsError(`unsupported type ${JSON.stringify(s.type)} at ${name} (expected string, integer, number, boolean, null, array or object)`);
    }
  }

  private withSpace(name: string, body: string): string {
    this.primitive('space');
    return this.rule(name, body);
  }

  private ref(ref: string): string {
    const known = this.refs.get(ref);
    if (known) return known;
    const m = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref);
    const target = ref === '#' ? this.root : m && Object.hasOwn(this.defs, m[2]) ? this.defs[m[2]] : undefined;
    if (target === undefined) throw new OptionsError(`unresolved $ref ${ref} (only "#" and "#/$defs/<name>" of the root schema are followed)`);
    // a name of its own, reserved now so that recursion finds it ("a b" and "a-b" must not share one)
    const name = this.fresh(`ref-${m ? m[2] : 'root'}`);
    this.rules.set(name, '""');
    this.refs.set(ref, name);
    const body = this.visit(target, `${name}-body`);
    this.rules.set(name, body);
    return name;
  }

  // Small integer ranges are listed outright; a lower bound of zero or more drops the sign. Other
  // bounds are left to validation.
  private numberRule(s: Record<string, unknown>, type: 'integer' | 'number', name: string): string {
    const lo = typeof s.exclusiveMinimum === 'number' ? s.exclusiveMinimum + (type === 'integer' ? 1 : Number.EPSILON) : s.minimum;
    const hi = typeof s.exclusiveMaximum === 'number' ? s.exclusiveMaximum - 1 : s.maximum;
    // (only safe integers: past 2^53, v++ leaves v as it is)
    if (type === 'integer' && typeof lo === 'number' && typeof hi === 'number' && Number.isSafeInteger(Math.ceil(lo)) && Number.isSafeInteger(Math.floor(hi)) && hi - lo <= 256) {
      const values: string[] = [];
      for (let v = Math.ceil(lo); v <= Math.floor(hi); v++) values.push(gbnfLiteral(String(v)));
      if (values.length === 0) throw new OptionsError(`the integer range at ${name} (${lo} to ${hi}) is empty`);
      return this.withSpace(name, `(${values.join(' | ')}) space`);
    }
    if (typeof lo === 'number' && lo >= 0) return this.primitive(`nonnegative-${type}`);
    return this.primitive(type);
  }

  /** minX and maxX as a repetition's bounds: checked, and capped at MAX_REPEAT. */
  private bounds(s: Record<string, unknown>, minKey: string, maxKey: string, name: string): { min: number; max: number | undefined } {
    const read = (key: string): number | undefined => {
      const v = s[key];
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new OptionsError(`${key} at ${name} is ${JSON.stringify(v)}; expected a non-negative integer`);
      return v;
    };
    const min = read(minKey) ?? 0;
    const max = read(maxKey);
    if (max !== undefined && max < min) throw new OptionsError(`${maxKey} ${max} at ${name} is less than ${minKey} ${min}: it admits no value`);
    return { min: Math.min(min, MAX_REPEAT), max: max !== undefined && max <= MAX_REPEAT ? max : undefined };
  }

  private stringRule(s: Record<string, unknown>, name: string): string {
    const { min, max } = this.bounds(s, 'minLength', 'maxLength', name);
    this.primitive('string');
    if (min === 0 && max === undefined) return 'string';
    return this.rule(name, `"\\"" char{${min},${max ?? ''}} "\\"" space`);
  }

  private arrayRule(s: Record<string, unknown>, name: string): string {
    this.primitive('space');
    if (Array.isArray(s.prefixItems)) {
      const items = s.prefixItems.map((it, i) => this.visit(it as Schema, `${name}-${i}`));
      return this.rule(name, `"[" space ${items.join(' "," space ')} "]" space`);
    }
    const { min, max } = this.bounds(s, 'minItems', 'maxItems', name);
    if (s.items === false) {
      if (min > 0) throw new OptionsError(`the array at ${name} has items: false and minItems ${min}: it admits no value`);
      return this.rule(name, '"[" space "]" space');
    }
    const item = s.items !== undefined ? this.visit(s.items as Schema, `${name}-item`) : this.primitive('value');
    let list: string;
    if (max === 0) list = '';
    else if (min === 0) list = `( ${item} ("," space ${item}){0,${max === undefined ? '' : max - 1}} )?`;
    else list = `${item} ("," space ${item}){${min - 1},${max === undefined ? '' : max - 1}}`;
    return this.rule(name, `"[" space ${list} "]" space`);
  }

  private objectRule(s: Record<string, unknown>, name: string): string {
    this.primitive('space');
    if (s.properties !== undefined && !isPlainObject(s.properties)) throw new OptionsError(`properties at ${name} is not an object`);
    const props = Object.entries((s.properties ?? {}) as Record<string, Schema>);
    const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
    const extra = s.additionalProperties;
    if (props.length === 0) {
      if (extra === false) return this.rule(name, '"{" space "}" space');
      const value = extra && extra !== true ? this.visit(extra as Schema, `${name}-value`) : this.primitive('value');
      this.primitive('string');
      return this.rule(name, `"{" space ( string ":" space ${value} ("," space string ":" space ${value})* )? "}" space`);
    }
    const kv = (key: string, sub: Schema) => `${gbnfLiteral(JSON.stringify(key))} space ":" space ${this.visit(sub, `${name}-${key}`)}`;
    const req = props.filter(([k]) => required.has(k)).map(([k, v]) => kv(k, v));
    const opt = props.filter(([k]) => !required.has(k)).map(([k, v]) => kv(k, v));
    let body: string;
    if (req.length > 0) {
      body = req.join(' "," space ') + opt.map((o) => ` ( "," space ${o} )?`).join('');
    } else {
      // no required property: any in-order subset of the optional ones, commas between
      let chain = '';
      for (let i = opt.length - 1; i >= 0; i--) {
        const rest = chain ? ` ( "," space ${chain} )?` : '';
        const rule = this.rule(`${name}-opt-${i}`, chain ? `${opt[i]}${rest} | ${chain}` : opt[i]);
        chain = rule;
      }
      body = `( ${chain} )?`;
    }
    return this.rule(name, `"{" space ${body} "}" space`);
  }

  /**
   * Refuses left recursion, which llama.cpp's grammar parser rejects: a $ref cycle or a union that
   * reaches its own rule before any text is matched (`{"$ref": "#"}`, `a: {"anyOf": [{"$ref": "#/$defs/a"}, ...]}`).
   * The rules here begin with a literal except unions and references, whose alternatives begin
   * with a rule name: those are the edges followed.
   */
  private checkLeftRecursion(): void {
    const leftmost = (body: string): string[] => {
      const names: string[] = [];
      let depth = 0;
      let start = true;
      for (let i = 0; i < body.length; i++) {
        const c = body[i];
        if (c === '"' || c === '[') {
          const close = c === '"' ? '"' : ']';
          for (i++; i < body.length && body[i] !== close; i++) if (body[i] === '\\') i++;
          start = false;
        } else if (c === '(') { depth++; start = false; }
        else if (c === ')') depth--;
        else if (c === '|' && depth === 0) start = true;
        else if (start && /[a-zA-Z]/.test(c)) {
          const m = /^[a-zA-Z0-9-]+/.exec(body.slice(i))!;
          names.push(m[0]);
          i += m[0].length - 1;
          start = false;
        } else if (c !== ' ') start = false;
      }
      return names;
    };
    const state = new Map<string, 'open' | 'done'>();
    const path: string[] = [];
    const visit = (name: string): void => {
      if (state.get(name) === 'done') return;
      if (state.get(name) === 'open') {
        const cycle = [...path.slice(path.indexOf(name)), name];
        throw new OptionsError(`the schema refers to itself before any text (${cycle.join(' -> ')}): llama.cpp grammars cannot express this left recursion`);
      }
      state.set(name, 'open');
      path.push(name);
      for (const next of leftmost(this.rules.get(name) ?? '')) if (this.rules.has(next)) visit(next);
      path.pop();
      state.set(name, 'done');
    };
    for (const name of this.rules.keys()) visit(name);
  }

  /** The grammar text with `root` as its start rule. */
  build(root: string): string {
    this.checkLeftRecursion();
    const lines = [`root ::= ${root}`];
    for (const [name, body] of this.rules) lines.push(`${name} ::= ${body}`);
    return lines.join('\n') + '\n';
  }
}

/** GBNF for values of a JSON schema. */
export function schemaToGrammar(schema: Schema): string {
  const b = new GrammarBuilder();
  return b.build(b.schema(schema, 'value-root'));
}
