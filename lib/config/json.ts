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
 * Key path syntax: see ./jsonpath.ts; the parser (positions, comments): ./json-parse.ts.
 */
import { isDeepStrictEqual } from 'node:util';
import { toJson } from './escape';
import { ConfigError, problemList, RenderProblem, splitBom, type ProblemList } from './errors';
import { parseJson, toPlain, type JMember, type JNode, type Plain } from './json-parse';
import { formatJsonPath, JsonPathSyntaxError, parseJsonPath, type PathSegment } from './jsonpath';
import type { JsonFileOverrides, JsonOverrideValue } from './schema';
import { Secret } from './secrets';
import { eolOf, splice, type Edit, type Eol } from './splice';

export interface JsonRenderContext {
  configFile: string;
  envFile: string;
  /** The value of a secret. */
  resolveSecret: (s: Secret) => string;
}

type Container = JNode & { kind: 'object' | 'array' };

/** New members for an existing object, or new items for an existing array, in the order given. */
interface Additions {
  container: Container;
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
  const list = problemList(ctx);
  const { bom, body } = splitBom(text);
  const render = new JsonRender(body, readJson(body, list), ctx, list);
  for (const [p, v] of Object.entries(overrides.json ?? {})) render.set(p, v, false);
  for (const [p, v] of Object.entries(overrides.add ?? {})) render.set(p, v, true);
  render.insertAdditions();
  list.throwIfAny();
  const out = render.splice();
  list.throwIfAny();
  render.verify(out);
  return bom + out;
}

function readJson(body: string, list: ProblemList): JNode {
  try {
    return parseJson(body);
  } catch (e) {
    if (!(e instanceof RenderProblem)) throw e;
    list.report(undefined, e.message);
    throw new ConfigError(list.problems);
  }
}

/**
 * One render of one JSON file: the parsed source, the edits and additions asked for so far, and
 * every change as (path, value) to check the output against. Problems go to `list`, so that
 * every override is tried and all problems are reported together.
 */
class JsonRender {
  private readonly edits: Edit[] = [];
  private readonly additions = new Map<JNode, Additions>();
  private readonly changes: { segs: PathSegment[]; value: Plain }[] = [];
  /** Canonical path → the override that sets it. */
  private readonly seen = new Map<string, string>();
  private readonly eol: Eol;
  /** The file's indentation step (its first indented line), for new nested values. */
  private readonly unit: string;

  constructor(
    private readonly s: string,
    private readonly root: JNode,
    private readonly ctx: JsonRenderContext,
    private readonly list: ProblemList,
  ) {
    this.eol = eolOf(s);
    this.unit = /(?:^|\n)([ \t]+)\S/.exec(s)?.[1] ?? '  ';
  }

  // ---- keys and paths (`json`, and `add` where the path exists)

  set(p: string, v: JsonOverrideValue, add: boolean): void {
    const where = `${add ? 'add' : 'json'} ${JSON.stringify(p)}`;
    this.list.attempt(where, () => {
      const segs = pathOf(p);
      const canonical = formatJsonPath(segs);
      const other = this.seen.get(canonical);
      if (other) throw new RenderProblem(`sets the same path as ${other}; keep one`);
      this.seen.set(canonical, where);
      const value = resolveValue(v, this.ctx);
      this.changes.push({ segs, value });
      this.locate(segs, value, add, where);
    });
  }

  /** Follows the path to the value it replaces (an edit), or to the container that gets it (an addition). */
  private locate(segs: PathSegment[], value: Plain, add: boolean, owner: string): void {
    let node: JNode | undefined = this.root;
    let parent: JNode | undefined;
    for (let k = 0; k < segs.length; k++) {
      parent = node;
      node = 'index' in segs[k]! ? this.item(node, segs, k, value, add, owner) : this.member(node, segs, k, value, add, owner);
      if (!node) return;
    }
    // inside a one-line object or array, a new object/array value stays on one line too
    const compact = parent !== undefined && !/[\r\n]/.test(this.s.slice(parent.start, parent.end));
    this.edits.push({ start: node.start, end: node.end, text: this.serialize(value, node.start, compact), owner });
  }

  /** Step `[n]` of the path from `node`; undefined when the value is appended instead. */
  private item(node: JNode, segs: PathSegment[], k: number, value: Plain, add: boolean, owner: string): JNode | undefined {
    const { index } = segs[k] as { index: number };
    const at = atStep(segs, k);
    if (node.kind !== 'array') throw new RenderProblem(`${at} is ${kindName(node)}, not an array, so [${index}] does not apply`);
    const item: JNode | undefined = node.items[index];
    if (item) return item;
    const last = k === segs.length - 1;
    if (add && last && index === node.items.length + (this.additions.get(node)?.items.length ?? 0)) {
      this.addition(node, owner).items.push(value);
      return undefined;
    }
    const n = node.items.length;
    throw new RenderProblem(
      `${formatJsonPath(segs.slice(0, k + 1))} does not exist: ${at} has ${n} element${n === 1 ? '' : 's'}` +
        (add ? (last ? ` (to append, use index ${n})` : '') : '; use `add` to append'),
    );
  }

  /** Step `.key` of the path from `node`; undefined when the key is created instead. */
  private member(node: JNode, segs: PathSegment[], k: number, value: Plain, add: boolean, owner: string): JNode | undefined {
    const { key } = segs[k] as { key: string };
    const at = atStep(segs, k);
    if (node.kind !== 'object') throw new RenderProblem(`${at} is ${kindName(node)}, not an object, so it has no key ${JSON.stringify(key)}`);
    const matches: JMember[] = node.members.filter((m) => m.key === key);
    if (matches.length > 1) throw new RenderProblem(`${at} has the key ${JSON.stringify(key)} ${matches.length} times; which one is meant is ambiguous`);
    const m = matches[0];
    if (m) return m.value;
    if (!add) {
      throw new RenderProblem(`${formatJsonPath(segs.slice(0, k + 1))} does not exist in the file; to create it, put it under \`add\` instead of \`json\``);
    }
    this.create(node, segs, k, value, owner);
    return undefined;
  }

  // ---- adds: keys and items the file does not have

  /** Creates `segs[k]` in `node` (and the objects of the rest of the path inside it) holding `value`. */
  private create(node: Container, segs: PathSegment[], k: number, value: Plain, owner: string): void {
    const { key } = segs[k] as { key: string };
    const created = formatJsonPath(segs.slice(0, k + 1));
    const rest = segs.slice(k + 1);
    if (rest.some((r) => 'index' in r)) throw new RenderProblem(`cannot create ${created} and an array inside it by path; add the whole value at ${created}`);
    let nested: Plain = value;
    for (const r of [...rest].reverse()) nested = { [(r as { key: string }).key]: nested };
    const a = this.addition(node, owner);
    const existing = a.members.get(key);
    if (existing === undefined) {
      a.members.set(key, nested);
      return;
    }
    // two `add`s under one new key: their objects merge
    if (!isObject(existing) || !isObject(nested)) throw new RenderProblem(`conflicts with another \`add\` creating ${created}`);
    mergeInto(existing, nested, created);
  }

  private addition(container: Container, owner: string): Additions {
    let a = this.additions.get(container);
    if (!a) this.additions.set(container, (a = { container, members: new Map(), items: [], owners: [] }));
    if (!a.owners.includes(owner)) a.owners.push(owner);
    return a;
  }

  insertAdditions(): void {
    for (const a of this.additions.values()) this.list.attempt(a.owners.join(', '), () => this.edits.push(this.insert(a)));
  }

  /** One edit per container: its new members after the last one, laid out like it. */
  private insert(a: Additions): Edit {
    const c = a.container;
    const owner = a.owners.join(', ');
    const entries: { key?: string; value: Plain }[] =
      c.kind === 'object' ? [...a.members].map(([key, value]) => ({ key, value })) : a.items.map((value) => ({ value }));
    const existing: { start: number; end: number }[] =
      c.kind === 'object' ? c.members.map((m) => ({ start: m.keyStart, end: m.value.end })) : c.items.map((x) => ({ start: x.start, end: x.end }));
    const sep = this.separator(c);
    const last = existing.at(-1);
    const first = existing[0];
    if (!last || !first) return this.fill(c, entries, sep, owner);
    if (/[\r\n]/.test(this.s.slice(c.start, first.start))) {
      const indent = this.lineIndent(last.start);
      const text = entries.map((e) => `,${this.eol}${indent}${this.entry(e, sep, indent)}`).join('');
      return { start: last.end, end: last.end, text, owner };
    }
    const text = entries.map((e) => `, ${e.key !== undefined ? toJson(e.key) + sep : ''}${this.serialize(e.value, 0, true)}`).join('');
    return { start: last.end, end: last.end, text, owner };
  }

  /** The members of an empty container, one a line, indented one step more than the container's line. */
  private fill(c: Container, entries: { key?: string; value: Plain }[], sep: string, owner: string): Edit {
    const base = this.lineIndent(c.start);
    const indent = base + this.unit;
    const list = entries.map((e, i) => `${i ? ',' : ''}${this.eol}${indent}${this.entry(e, sep, indent)}`).join('');
    const inner = this.s.slice(c.start + 1, c.end - 1);
    if (/^\s*$/.test(inner)) {
      const [open, close] = c.kind === 'object' ? ['{', '}'] : ['[', ']'];
      return { start: c.start, end: c.end, text: `${open}${list}${this.eol}${base}${close}`, owner };
    }
    return { start: c.start + 1, end: c.start + 1, text: list, owner }; // only comments inside: keep them after
  }

  /** A member (`"key": value`) or item, on lines indented `indent`. */
  private entry(e: { key?: string; value: Plain }, sep: string, indent: string): string {
    return `${e.key !== undefined ? toJson(e.key) + sep : ''}${toJson(e.value, this.unit).split('\n').join(this.eol + indent)}`;
  }

  /** What goes between a key and its value: as in the object's last member if that is plain, else `: `. */
  private separator(c: Container): string {
    const m = c.kind === 'object' ? c.members.at(-1) : undefined;
    const sep = m ? this.s.slice(m.keyEnd, m.value.start) : ': ';
    return /^[ \t]*:[ \t]*$/.test(sep) ? sep : ': ';
  }

  // ---- layout

  /** Leading blanks of the line that contains offset `at`. */
  private lineIndent(at: number): string {
    let ls = at;
    while (ls > 0 && this.s[ls - 1] !== '\n' && this.s[ls - 1] !== '\r') ls--;
    return /^[ \t]*/.exec(this.s.slice(ls))![0];
  }

  /** A value as JSON, laid out like the file, for a place whose line is indented `lineIndent(at)`. */
  private serialize(v: Plain, at: number, compact = false): string {
    if (compact) return toJson(v);
    return toJson(v, this.unit).split('\n').join(this.eol + this.lineIndent(at));
  }

  // ---- output

  splice(): string {
    return splice(this.s, this.edits, (prev, e) =>
      this.list.report(`${prev.owner} and ${e.owner}`, 'change overlapping parts of the file (one sets a value inside the other); keep one'),
    );
  }

  /** The output parses, and equals the input with exactly these changes. */
  verify(out: string): void {
    let actual: Plain;
    try {
      actual = toPlain(out, parseJson(out));
    } catch (e) {
      this.list.report(undefined, `internal error: the rendered file does not parse (${(e as Error).message}); please report this with the file`);
      throw new ConfigError(this.list.problems);
    }
    const expected = toPlain(this.s, this.root);
    for (const c of this.changes) setPlain(expected, c.segs, c.value);
    if (!isDeepStrictEqual(expected, actual)) {
      this.list.report(undefined, 'internal error: the rendered file differs from the base file by more than the overrides; please report this with the file');
      throw new ConfigError(this.list.problems);
    }
  }
}

/** A key path, a syntax error in it being a problem of the override. */
function pathOf(p: string): PathSegment[] {
  try {
    return parseJsonPath(p);
  } catch (e) {
    if (e instanceof JsonPathSyntaxError) throw new RenderProblem(e.message);
    throw e;
  }
}

/** Where step k of a path starts from, as messages name it. */
function atStep(segs: PathSegment[], k: number): string {
  return k === 0 ? 'the top level' : formatJsonPath(segs.slice(0, k));
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
    else throw new RenderProblem(`conflicts with another \`add\` creating ${at}.${k}`);
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
