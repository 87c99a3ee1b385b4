/**
 * Applies overrides to a JSON config file (a Node app's `config/production.json`, an ASP.NET Core
 * `appsettings.json`, …).
 *
 * Like the XML writer, this splices values into the original text at the positions of the values
 * they replace, so everything else — key order, spacing, the indentation style, `\uXXXX` escapes
 * and number spellings elsewhere, `//` and `/* *\/` comments (accepted, as .NET and node-config do),
 * a trailing newline or its absence, a UTF-8 BOM, CRLF line ends — stays as it was. Inserted
 * members follow the indentation of their siblings and the file's line ends.
 *
 * - `json: { 'a.b': v }` sets a value whose path exists (else an error that points to `add`);
 * - `add: { 'a.b': v }` sets it if it exists, else creates it (and missing parent objects);
 *   `[n]` with n = the array's length appends to an array.
 * Key path syntax: see ./jsonpath.ts.
 */
import { splice, type Edit } from './splice';
import { isDeepStrictEqual } from 'node:util';
import { toJson } from './escape';
import { ConfigError, problemList, splitBom } from './errors';
import { formatJsonPath, parseJsonPath, type PathSegment } from './jsonpath';
import type { JsonFileOverrides, JsonOverrideValue } from './schema';
import { Secret } from './secrets';

export interface JsonRenderContext {
  configFile: string;
  envFile: string;
  /** The value of a secret. */
  resolveSecret: (s: Secret) => string;
}

type JNode =
  | { kind: 'object'; start: number; end: number; members: JMember[] }
  | { kind: 'array'; start: number; end: number; items: JNode[] }
  | { kind: 'scalar'; start: number; end: number };
interface JMember {
  key: string;
  keyStart: number;
  keyEnd: number;
  value: JNode;
}
type Plain = string | number | boolean | null | Plain[] | { [k: string]: Plain };

class Problem extends Error {}

function lineCol(s: string, at: number): string {
  let line = 1;
  let ls = 0;
  for (let i = 0; i < at && i < s.length; i++) {
    if (s[i] === '\n' || (s[i] === '\r' && s[i + 1] !== '\n')) {
      line++;
      ls = i + 1;
    }
  }
  return `line ${line}, column ${at - ls + 1}`;
}

/** A JSON parser that keeps the position of every value. Accepts // and /* *\/ comments. */
function parseJson(s: string): JNode {
  let i = 0;
  const fail = (what: string): never => {
    throw new Problem(`malformed JSON at ${lineCol(s, i)}: ${what}`);
  };
  const skip = () => {
    for (;;) {
      const c = s[i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') i++;
      else if (c === '/' && s[i + 1] === '/') {
        while (i < s.length && s[i] !== '\n' && s[i] !== '\r') i++;
      } else if (c === '/' && s[i + 1] === '*') {
        const e = s.indexOf('*/', i + 2);
        if (e < 0) fail('unterminated comment');
        i = e + 2;
      } else return;
    }
  };
  const str = (): string => {
    const start = i;
    i++;
    while (i < s.length && s[i] !== '"') i += s[i] === '\\' ? 2 : 1;
    if (i >= s.length) {
      i = start;
      fail('unterminated string');
    }
    i++;
    try {
      return JSON.parse(s.slice(start, i)) as string;
    } catch {
      i = start;
      return fail('invalid string (bad escape or raw control character)');
    }
  };
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const value = (): JNode => {
    skip();
    const start = i;
    const c = s[i];
    if (c === '{') {
      i++;
      const members: JMember[] = [];
      skip();
      if (s[i] === '}') {
        i++;
        return { kind: 'object', start, end: i, members };
      }
      for (;;) {
        skip();
        if (s[i] !== '"') fail(members.length ? 'expected a key (trailing commas are not allowed)' : 'expected a key or "}"');
        const keyStart = i;
        const key = str();
        const keyEnd = i;
        skip();
        if (s[i] !== ':') fail('expected ":"');
        i++;
        members.push({ key, keyStart, keyEnd, value: value() });
        skip();
        if (s[i] === ',') i++;
        else if (s[i] === '}') {
          i++;
          return { kind: 'object', start, end: i, members };
        } else fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const items: JNode[] = [];
      skip();
      if (s[i] === ']') {
        i++;
        return { kind: 'array', start, end: i, items };
      }
      for (;;) {
        skip();
        if (s[i] === ']') fail('trailing commas are not allowed');
        items.push(value());
        skip();
        if (s[i] === ',') i++;
        else if (s[i] === ']') {
          i++;
          return { kind: 'array', start, end: i, items };
        } else fail('expected "," or "]"');
      }
    }
    if (c === '"') {
      str();
      return { kind: 'scalar', start, end: i };
    }
    for (const lit of ['true', 'false', 'null']) {
      if (s.startsWith(lit, i)) {
        i += lit.length;
        return { kind: 'scalar', start, end: i };
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(s);
    if (m) {
      i += m[0].length;
      return { kind: 'scalar', start, end: i };
    }
    return fail(i >= s.length ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`);
  };
  const root = value();
  skip();
  if (i < s.length) fail('unexpected content after the end of the document');
  return root;
}

function toPlain(s: string, n: JNode): Plain {
  switch (n.kind) {
    case 'scalar':
      return JSON.parse(s.slice(n.start, n.end)) as Plain;
    case 'array':
      return n.items.map((x) => toPlain(s, x));
    case 'object': {
      const o: { [k: string]: Plain } = {};
      for (const m of n.members) Object.defineProperty(o, m.key, { value: toPlain(s, m.value), enumerable: true, writable: true, configurable: true });
      return o;
    }
  }
}

function resolveValue(v: JsonOverrideValue, ctx: JsonRenderContext): Plain {
  if (v instanceof Secret) return ctx.resolveSecret(v);
  if (Array.isArray(v)) return v.map((x) => resolveValue(x, ctx));
  if (typeof v === 'object' && v !== null) {
    const o: { [k: string]: Plain } = {};
    for (const [k, x] of Object.entries(v)) Object.defineProperty(o, k, { value: resolveValue(x, ctx), enumerable: true, writable: true, configurable: true });
    return o;
  }
  return v;
}


/** New members for an existing object, or new items for an existing array, in the order given. */
interface Additions {
  container: JNode & { kind: 'object' | 'array' };
  /** For an object: key → value (nested objects merged); for an array: appended values. */
  members: Map<string, Plain>;
  items: Plain[];
  owners: string[];
}

/**
 * Applies the overrides to the text of a JSON file (which may start with a BOM) and returns the
 * new text. Throws a {@link ConfigError} listing every problem.
 */
export function applyJsonOverrides(text: string, overrides: JsonFileOverrides, ctx: JsonRenderContext): string {
  const { problems, report } = problemList(ctx);
  const { bom, body: s } = splitBom(text);
  let root: JNode;
  try {
    root = parseJson(s);
  } catch (e) {
    if (!(e instanceof Problem)) throw e;
    report(undefined, e.message);
    throw new ConfigError(problems);
  }
  const eol = /\r\n/.test(s) ? '\r\n' : '\n';
  const unit = /(?:^|\n)([ \t]+)\S/.exec(s)?.[1] ?? '  ';

  const edits: Edit[] = [];
  const additions = new Map<JNode, Additions>();
  /** Every change as (path, value), to check the output against. */
  const changes: { segs: PathSegment[]; value: Plain }[] = [];
  const seen = new Map<string, string>();

  const entries = [
    ...Object.entries(overrides.json ?? {}).map(([p, v]) => ({ p, v, add: false })),
    ...Object.entries(overrides.add ?? {}).map(([p, v]) => ({ p, v, add: true })),
  ];
  for (const { p, v, add } of entries) {
    const where = `${add ? 'add' : 'json'} ${JSON.stringify(p)}`;
    try {
      const segs = parseJsonPath(p);
      const canonical = formatJsonPath(segs);
      const other = seen.get(canonical);
      if (other) throw new Problem(`sets the same path as ${other}; keep one`);
      seen.set(canonical, where);
      const value = resolveValue(v, ctx);
      changes.push({ segs, value });
      locate(segs, value, add, where);
    } catch (e) {
      if (!(e instanceof Problem) && !(e instanceof Error && e.name === 'JsonPathSyntaxError')) throw e;
      report(where, e.message);
    }
  }
  for (const a of additions.values()) {
    try {
      edits.push(insert(a));
    } catch (e) {
      if (!(e instanceof Problem)) throw e;
      report(a.owners.join(', '), e.message);
    }
  }
  if (problems.length) throw new ConfigError(problems);

  const out = splice(s, edits, (prev, e) => report(`${prev.owner} and ${e.owner}`, 'change overlapping parts of the file (one sets a value inside the other); keep one'));
  if (problems.length) throw new ConfigError(problems);

  // verify: the output parses, and equals the input with exactly these changes
  let actual: Plain;
  try {
    actual = toPlain(out, parseJson(out));
  } catch (e) {
    report(undefined, `internal error: the rendered file does not parse (${(e as Error).message}); please report this with the file`);
    throw new ConfigError(problems);
  }
  const expected = toPlain(s, root);
  for (const c of changes) setPlain(expected, c.segs, c.value);
  if (!isDeepStrictEqual(expected, actual)) {
    report(undefined, 'internal error: the rendered file differs from the base file by more than the overrides; please report this with the file');
    throw new ConfigError(problems);
  }
  return bom + out;

  // ---------------------------------------------------------------------------------------------

  function locate(segs: PathSegment[], value: Plain, add: boolean, owner: string): void {
    let node: JNode = root;
    let parent: JNode | undefined;
    for (let k = 0; k < segs.length; k++) {
      parent = node;
      const seg = segs[k]!;
      const at = k === 0 ? 'the top level' : formatJsonPath(segs.slice(0, k));
      if ('index' in seg) {
        if (node.kind !== 'array') throw new Problem(`${at} is ${kindName(node)}, not an array, so [${seg.index}] does not apply`);
        const item: JNode | undefined = node.items[seg.index];
        if (!item) {
          if (add && k === segs.length - 1 && seg.index === node.items.length + (additions.get(node)?.items.length ?? 0)) {
            addition(node, owner).items.push(value);
            return;
          }
          throw new Problem(
            `${formatJsonPath(segs.slice(0, k + 1))} does not exist: ${at} has ${node.items.length} element${node.items.length === 1 ? '' : 's'}` +
              (add ? (k === segs.length - 1 ? ` (to append, use index ${node.items.length})` : '') : '; use `add` to append'),
          );
        }
        node = item;
      } else {
        if (node.kind !== 'object') throw new Problem(`${at} is ${kindName(node)}, not an object, so it has no key ${JSON.stringify(seg.key)}`);
        const matches: JMember[] = node.members.filter((m) => m.key === seg.key);
        if (matches.length > 1) throw new Problem(`${at} has the key ${JSON.stringify(seg.key)} ${matches.length} times; which one is meant is ambiguous`);
        const m = matches[0];
        if (!m) {
          if (!add) {
            throw new Problem(`${formatJsonPath(segs.slice(0, k + 1))} does not exist in the file; to create it, put it under \`add\` instead of \`json\``);
          }
          const rest = segs.slice(k + 1);
          const bad = rest.find((r) => 'index' in r);
          if (bad) throw new Problem(`cannot create ${formatJsonPath(segs.slice(0, k + 1))} and an array inside it by path; add the whole value at ${formatJsonPath(segs.slice(0, k + 1))}`);
          let nested: Plain = value;
          for (const r of [...rest].reverse()) nested = { [(r as { key: string }).key]: nested };
          const a = addition(node, owner);
          const existing = a.members.get(seg.key);
          if (existing !== undefined) {
            if (!isObject(existing) || !isObject(nested)) throw new Problem(`conflicts with another \`add\` creating ${formatJsonPath(segs.slice(0, k + 1))}`);
            mergeInto(existing, nested, formatJsonPath(segs.slice(0, k + 1)));
          } else {
            a.members.set(seg.key, nested);
          }
          return;
        }
        node = m.value;
      }
    }
    // inside a one-line object or array, a new object/array value stays on one line too
    const compact = parent !== undefined && !/[\r\n]/.test(s.slice(parent.start, parent.end));
    edits.push({ start: node.start, end: node.end, text: serialize(value, node.start, compact), owner });
  }

  function addition(container: JNode & { kind: 'object' | 'array' }, owner: string): Additions {
    let a = additions.get(container);
    if (!a) additions.set(container, (a = { container, members: new Map(), items: [], owners: [] }));
    if (!a.owners.includes(owner)) a.owners.push(owner);
    return a;
  }

  /** Leading blanks of the line that contains offset `at`. */
  function lineIndent(at: number): string {
    let ls = at;
    while (ls > 0 && s[ls - 1] !== '\n' && s[ls - 1] !== '\r') ls--;
    return /^[ \t]*/.exec(s.slice(ls))![0];
  }

  /** A value as JSON, laid out like the file, for a place whose line is indented `indentOf(at)`. */
  function serialize(v: Plain, at: number, compact = false): string {
    if (compact) return toJson(v);
    return toJson(v, unit).split('\n').join(eol + lineIndent(at));
  }

  function insert(a: Additions): Edit {
    const c = a.container;
    const owner = a.owners.join(', ');
    const entries: { key?: string; value: Plain }[] =
      c.kind === 'object' ? [...a.members].map(([key, value]) => ({ key, value })) : a.items.map((value) => ({ value }));
    const existing: { start: number; end: number }[] =
      c.kind === 'object' ? c.members.map((m) => ({ start: m.keyStart, end: m.value.end })) : c.items.map((x) => ({ start: x.start, end: x.end }));
    const sepOf = () => {
      const m = c.kind === 'object' ? c.members.at(-1) : undefined;
      const sep = m ? s.slice(m.keyEnd, m.value.start) : ': ';
      return /^[ \t]*:[ \t]*$/.test(sep) ? sep : ': ';
    };
    const sep = sepOf();
    const last = existing.at(-1);
    const first = existing[0];
    if (last && first) {
      const multiline = /[\r\n]/.test(s.slice(c.start, first.start));
      if (multiline) {
        const indent = lineIndent(last.start);
        const text = entries
          .map((e) => `,${eol}${indent}${e.key !== undefined ? toJson(e.key) + sep : ''}${toJson(e.value, unit).split('\n').join(eol + indent)}`)
          .join('');
        return { start: last.end, end: last.end, text, owner };
      }
      const text = entries.map((e) => `, ${e.key !== undefined ? toJson(e.key) + sep : ''}${serialize(e.value, 0, true)}`).join('');
      return { start: last.end, end: last.end, text, owner };
    }
    // empty container
    const base = lineIndent(c.start);
    const indent = base + unit;
    const list = entries
      .map((e, i) => `${i ? ',' : ''}${eol}${indent}${e.key !== undefined ? toJson(e.key) + sep : ''}${toJson(e.value, unit).split('\n').join(eol + indent)}`)
      .join('');
    const inner = s.slice(c.start + 1, c.end - 1);
    if (/^\s*$/.test(inner)) {
      const [open, close] = c.kind === 'object' ? ['{', '}'] : ['[', ']'];
      return { start: c.start, end: c.end, text: `${open}${list}${eol}${base}${close}`, owner };
    }
    return { start: c.start + 1, end: c.start + 1, text: list, owner }; // only comments inside: keep them after
  }
}

function kindName(n: JNode): string {
  return n.kind === 'object' ? 'an object' : n.kind === 'array' ? 'an array' : 'a plain value';
}

function isObject(v: Plain | undefined): v is { [k: string]: Plain } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function mergeInto(target: { [k: string]: Plain }, src: { [k: string]: Plain }, at: string): void {
  for (const [k, v] of Object.entries(src)) {
    const t = Object.prototype.hasOwnProperty.call(target, k) ? target[k] : undefined;
    if (t === undefined) Object.defineProperty(target, k, { value: v, enumerable: true, writable: true, configurable: true });
    else if (isObject(t) && isObject(v)) mergeInto(t, v, `${at}.${k}`);
    else throw new Problem(`conflicts with another \`add\` creating ${at}.${k}`);
  }
}

function setPlain(root: Plain, segs: PathSegment[], value: Plain): void {
  let node = root;
  segs.forEach((seg, k) => {
    const lastSeg = k === segs.length - 1;
    if ('index' in seg) {
      const arr = node as Plain[];
      if (lastSeg) arr[seg.index] = value;
      else node = arr[seg.index]!;
    } else {
      const obj = node as { [k: string]: Plain };
      if (lastSeg) Object.defineProperty(obj, seg.key, { value, enumerable: true, writable: true, configurable: true });
      else {
        if (!Object.prototype.hasOwnProperty.call(obj, seg.key)) Object.defineProperty(obj, seg.key, { value: {}, enumerable: true, writable: true, configurable: true });
        node = obj[seg.key]!;
      }
    }
  });
}
