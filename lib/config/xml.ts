/**
 * Applies overrides to an XML config file (Web.config, app.config, log4net.config, …).
 *
 * The document is parsed (fast-xml-parser's validator for well-formedness, then @xmldom/xmldom
 * with positions) and the overrides are evaluated with `xpath` against that DOM — but the output
 * is NOT produced by a serializer: each change is spliced into the original text at the position
 * of the node it targets. Everything else (declaration, comments, CDATA, entity spelling, quote
 * style, attribute order and layout, indentation, a UTF-8 BOM, CRLF or LF line ends) stays
 * byte-for-byte as it was. After splicing, the output is parsed again and compared node by node
 * with the input: only the targeted nodes may differ, and each must read back as the value set.
 *
 * Parsing and node positions: ./xml-source.ts; the check after splicing: ./xml-verify.ts.
 */
import type * as xpath from 'xpath';
import { lazy } from '../lazy';

const xpathModule = lazy(() => require('xpath') as typeof import('xpath'));
import { cdataContent, escapeXmlAttr, escapeXmlText, fitsInCdata, invalidXmlCharIndex } from './escape';
import { ConfigError, problemList, RenderProblem, splitBom, type ProblemList } from './errors';
import type { KeyOverride, Value, XmlFileOverrides, XpathOverride } from './schema';
import { eolOf, splice, type Edit, type Eol } from './splice';
import { ATTRIBUTE, CDATA, COMMENT, ELEMENT, TEXT, Positions, describeNode, parse, type Source, type XNode } from './xml-source';
import { verify, type Expectations } from './xml-verify';

export interface XmlRenderContext {
  /** The config file, relative to the build (named in every message). */
  configFile: string;
  /** The environment file the overrides come from (named in every message). */
  envFile: string;
  /** Turns an override value into the string to write (secrets resolved). */
  resolve: (v: Value) => string;
}

/** An XPath 1.0 string literal for any string (XPath has no escapes: concat() when both quotes occur). */
export function xpathLiteral(s: string): string {
  if (!s.includes("'")) return `'${s}'`;
  if (!s.includes('"')) return `"${s}"`;
  return `concat(${s
    .split("'")
    .map((part) => `'${part}'`)
    .join(`, "'", `)})`;
}

const SECTIONS = {
  appSettings: { keyAttr: 'key', valueAttr: 'value' },
  connectionStrings: { keyAttr: 'name', valueAttr: 'connectionString' },
} as const;
type Section = keyof typeof SECTIONS;

/** The XPath an `appSettings`/`connectionStrings` key sets (as shown in messages). */
export function keyXpath(section: Section, key: string): string {
  const { keyAttr, valueAttr } = SECTIONS[section];
  return `/configuration/${section}/add[@${keyAttr}=${xpathLiteral(key)}]/@${valueAttr}`;
}

/** A key of `appSettings`/`connectionStrings` to create, collected so that each section gets one edit. */
interface PendingAdd {
  section: Section;
  key: string;
  value: string;
  owner: string;
}

function unwrap<T extends KeyOverride | XpathOverride>(v: Value | T): { value: Value } & Partial<T> {
  return typeof v === 'object' && v !== null && 'value' in v ? v : ({ value: v } as { value: Value } & Partial<T>);
}

/**
 * Applies the overrides to the text of an XML file (which may start with a BOM) and returns the
 * new text. Throws a {@link ConfigError} listing every problem (each naming the environment file,
 * the config file and the override).
 */
export function applyXmlOverrides(text: string, overrides: XmlFileOverrides, ctx: XmlRenderContext): string {
  const list = problemList(ctx);
  const { bom, body } = splitBom(text);
  const render = new XmlRender(readSource(body, list), overrides, ctx, list);
  for (const section of Object.keys(SECTIONS) as Section[]) render.setKeys(section);
  render.setXpaths();
  render.insertAdds();
  list.throwIfAny();
  const out = render.splice();
  list.throwIfAny();
  render.verify(out);
  return bom + out;
}

/** The parsed file, or a ConfigError if it is not UTF-8 or not well-formed. */
function readSource(body: string, list: ProblemList): Source {
  const enc = /^<\?xml\s[^>]*?encoding\s*=\s*["']([^"']*)["']/.exec(body);
  if (enc && !/^utf-?8$/i.test(enc[1]!)) {
    list.report(undefined, `declares encoding "${enc[1]}"; only UTF-8 config files are supported (convert the base file to UTF-8)`);
    throw new ConfigError(list.problems);
  }
  try {
    return parse(body);
  } catch (e) {
    if (!(e instanceof RenderProblem)) throw e;
    list.report(undefined, e.message);
    throw new ConfigError(list.problems);
  }
}

/**
 * One render of one XML file: the parsed source, the edits asked for so far and what the output
 * must read back as. Each kind of override has its method; problems go to `list`, so that every
 * override is tried and all problems are reported together.
 */
class XmlRender {
  private readonly edits: Edit[] = [];
  private readonly expect: Expectations = { values: new Map(), addedAttrs: new Map(), addedElements: new Map() };
  private readonly pendingAdds = new Map<XNode, PendingAdd[]>();
  private readonly pos: Positions;
  private readonly eol: Eol;
  private readonly select: xpath.XPathSelect;
  /** An old Web.config may put everything in a default namespace (<configuration xmlns="http://schemas.microsoft.com/.NetConfiguration/v2.0">). */
  private readonly rootNs: string | null;

  constructor(
    private readonly src: Source,
    private readonly overrides: XmlFileOverrides,
    private readonly ctx: XmlRenderContext,
    private readonly list: ProblemList,
  ) {
    this.pos = new Positions(src);
    this.eol = eolOf(src.body);
    this.select = xpathModule().useNamespaces(overrides.namespaces ?? {});
    this.rootNs = src.doc.documentElement?.namespaceURI ?? null;
  }

  // ---- appSettings / connectionStrings

  setKeys(section: Section): void {
    for (const [key, raw] of Object.entries(this.overrides[section] ?? {})) this.setKey(section, key, raw);
  }

  private setKey(section: Section, key: string, raw: Value | KeyOverride): void {
    const where = `${section} ${JSON.stringify(key)}`;
    const o = unwrap<KeyOverride>(raw);
    const value = this.valueFor(where, o.value);
    if (value === undefined) return;
    const { keyAttr } = SECTIONS[section];
    this.list.attempt(where, () => {
      const found = this.run(where, `${this.sectionExpr(section)}/${this.step('add')}[@${keyAttr}=${xpathLiteral(key)}]`);
      if (!found) return;
      if (found.length > 1) {
        const lines = found.map((n) => n.lineNumber).join(', ');
        this.list.report(where, `${found.length} <add ${keyAttr}=…> elements match ${keyXpath(section, key)} (lines ${lines}); a key must be unique`);
        return;
      }
      const el = found[0];
      if (el) this.setKeyValue(el, section, value, where);
      else this.missingKey(section, key, value, o.add, where);
    });
  }

  /** Sets the value attribute of the key's `<add>`, adding the attribute if the element has none. */
  private setKeyValue(el: XNode, section: Section, value: string, where: string): void {
    const { valueAttr } = SECTIONS[section];
    const attr = el.getAttributeNode!(valueAttr);
    if (attr) return this.setNode(attr, value, where);
    const t = this.pos.startTag(el);
    const q = t.quote ?? '"';
    this.edits.push({ start: t.lastAttrEnd, end: t.lastAttrEnd, text: ` ${valueAttr}=${q}${escapeXmlAttr(value, q)}${q}`, owner: where });
    this.expect.addedAttrs.set(el, { name: valueAttr, value });
  }

  /** A key the file does not have: an error, or (with `add: true`) an `<add>` to create in its section. */
  private missingKey(section: Section, key: string, value: string, add: boolean | undefined, where: string): void {
    const { keyAttr, valueAttr } = SECTIONS[section];
    const all = this.run(where, `${this.sectionExpr(section)}/${this.step('add')}/@${keyAttr}`) ?? [];
    const nearly = all.map((a) => a.value!).find((k) => k.toLowerCase() === key.toLowerCase());
    const caseHint = nearly !== undefined ? `; the file has ${JSON.stringify(nearly)}, which differs only in case (.NET reads keys case-insensitively) — use that spelling` : '';
    if (!add || nearly !== undefined) {
      this.list.report(
        where,
        `matches nothing: ${keyXpath(section, key)} selects no node${caseHint}` +
          (add ? '' : `. To create <add ${keyAttr}=${JSON.stringify(key)} ${valueAttr}="…" />, write { value: …, add: true }`),
      );
      return;
    }
    const sections = this.run(where, this.sectionExpr(section)) ?? [];
    if (sections.length !== 1) {
      this.list.report(where, sections.length === 0
        ? `cannot add the key: the file has no /configuration/${section} element (add one to the base file)`
        : `cannot add the key: the file has ${sections.length} /configuration/${section} elements`);
      return;
    }
    const list = this.pendingAdds.get(sections[0]!) ?? [];
    list.push({ section, key, value, owner: where });
    this.pendingAdds.set(sections[0]!, list);
  }

  /** A step of a section path; in a default namespace, by local name. */
  private step(name: string): string {
    return this.rootNs ? `*[local-name()='${name}' and namespace-uri()=${xpathLiteral(this.rootNs)}]` : name;
  }

  private sectionExpr(section: Section): string {
    return `/${this.step('configuration')}/${this.step(section)}`;
  }

  // ---- xpath

  setXpaths(): void {
    for (const [expr, raw] of Object.entries(this.overrides.xpath ?? {})) this.setXpath(expr, raw);
  }

  private setXpath(expr: string, raw: Value | XpathOverride): void {
    const where = `xpath ${JSON.stringify(expr)}`;
    const o = unwrap<XpathOverride>(raw);
    const value = this.valueFor(where, o.value);
    if (value === undefined) return;
    this.list.attempt(where, () => {
      const found = this.run(where, expr);
      if (!found) return;
      if (found.length === 0) {
        this.list.report(where, `matches nothing${defaultNamespaceHint(this.src.doc, expr, this.overrides.namespaces)}`);
        return;
      }
      if (found.length > 1 && !o.all) {
        const shown = `${found.slice(0, 5).map(describeNode).join(', ')}${found.length > 5 ? ', …' : ''}`;
        this.list.report(where, `matches ${found.length} nodes (${shown}); make it select one, or write { value: …, all: true } to set all of them`);
        return;
      }
      for (const n of found) this.setNode(n, value, where);
    });
  }

  /** Evaluates an expression; returns the selected nodes or reports why not. */
  private run(where: string, expr: string): XNode[] | undefined {
    let r: xpath.SelectReturnType;
    try {
      r = this.select(expr, this.src.doc as unknown as Node);
    } catch (e) {
      const msg = (e as Error).message;
      const hint = /resolve|namespace|prefix/i.test(msg) ? ' (declare the prefix in `namespaces` of this file)' : '';
      this.list.report(where, `invalid XPath expression: ${msg}${hint}`);
      return undefined;
    }
    if (!Array.isArray(r)) {
      this.list.report(where, `the expression evaluates to a ${typeof r}, not to nodes; select an attribute, a text() node or an element`);
      return undefined;
    }
    return r as unknown as XNode[];
  }

  /** The string to write, or undefined (reported) if XML cannot hold it. */
  private valueFor(where: string, v: Value): string | undefined {
    const s = this.ctx.resolve(v);
    const bad = invalidXmlCharIndex(s);
    if (bad >= 0) {
      const cp = s.codePointAt(bad)!;
      this.list.report(where, `the value contains a character XML cannot represent (U+${cp.toString(16).toUpperCase().padStart(4, '0')} at index ${bad})`);
      return undefined;
    }
    return s;
  }

  // ---- setting one node

  private setNode(n: XNode, value: string, owner: string): void {
    switch (n.nodeType) {
      case ATTRIBUTE: {
        const off = this.pos.offset(n);
        const q = this.src.body[off] as '"' | "'";
        const end = this.src.body.indexOf(q, off + 1);
        this.edits.push({ start: off + 1, end, text: escapeXmlAttr(value, q), owner });
        break;
      }
      case TEXT:
        this.replaceWithText(n, value, owner);
        break;
      case CDATA:
        this.setCdata(n, value, owner);
        break;
      case ELEMENT: {
        const only = this.onlyChild(n);
        if (only) return this.setNode(only, value, owner); // expectation recorded on the child
        this.setElementText(n, value, owner);
        break;
      }
      default:
        throw new RenderProblem(`selects a ${describeNode(n)}; only attributes, text nodes, CDATA sections and elements holding text can be set`);
    }
    this.expect.values.set(n, value);
  }

  /** Replaces a text node or CDATA section with escaped text. */
  private replaceWithText(n: XNode, value: string, owner: string): void {
    const off = this.pos.offset(n);
    this.edits.push({ start: off, end: this.pos.end(n, off), text: escapeXmlText(value, this.eol), owner });
  }

  private setCdata(n: XNode, value: string, owner: string): void {
    // "]]>" or a CR cannot be inside CDATA: the section becomes an escaped text node
    if (!fitsInCdata(value)) return this.replaceWithText(n, value, owner);
    const start = this.pos.offset(n) + '<![CDATA['.length;
    this.edits.push({ start, end: this.src.body.indexOf(']]>', start), text: cdataContent(value, this.eol), owner });
  }

  /** The single text or CDATA child of an element that holds only text (if it has exactly one). */
  private onlyChild(el: XNode): XNode | undefined {
    const kids = Array.from(el.childNodes);
    const structural = kids.find((k) => k.nodeType !== TEXT && k.nodeType !== CDATA);
    if (structural) {
      const what = structural.nodeType === ELEMENT ? `an element <${structural.nodeName}>` : `a ${describeNode(structural).replace(/ at line.*/, '')}`;
      throw new RenderProblem(`selects ${describeNode(el)}, which contains ${what}; select an attribute or a text() node instead`);
    }
    return kids.length === 1 ? kids[0] : undefined;
  }

  /** An element that is empty, or holds several text/CDATA nodes: its whole content becomes the text. */
  private setElementText(el: XNode, value: string, owner: string): void {
    const t = this.pos.startTag(el);
    if (!t.selfClosing) {
      this.edits.push({ start: t.end, end: this.pos.contentEnd(el), text: escapeXmlText(value, this.eol), owner });
    } else if (value !== '') {
      this.edits.push({ start: t.wsBeforeClose, end: t.end, text: `>${escapeXmlText(value, this.eol)}</${el.nodeName}>`, owner });
    }
  }

  // ---- `<add>` elements to create, one edit per section

  insertAdds(): void {
    for (const [sectionEl, adds] of this.pendingAdds) {
      const owner = adds.map((a) => a.owner).join(', ');
      this.list.attempt(owner, () => {
        const { edit, after } = this.addElements(sectionEl, adds, owner);
        this.edits.push(edit);
        this.expect.addedElements.set(sectionEl, {
          after,
          elements: adds.map((a) => ({ keyAttr: SECTIONS[a.section].keyAttr, key: a.key, valueAttr: SECTIONS[a.section].valueAttr, value: a.value })),
        });
      });
    }
  }

  /**
   * The edit that creates the section's new `<add>` elements, and `after`: the child of the section
   * they follow (null: they are its first children). They go after the last element of the section
   * (else after its last child that is not blank text), each on a line of its own indented like that
   * child; comments on that child's line stay on it. Comments, CDATA or text further down stay
   * after the new elements. The insertion point never splits text that is not blank, so that only
   * blank text changes around the new elements (which is what the check after splicing allows).
   */
  private addElements(sectionEl: XNode, adds: PendingAdd[], owner: string): { edit: Edit; after: XNode | null } {
    const kids = Array.from(sectionEl.childNodes);
    const elements = kids.filter((k) => k.nodeType === ELEMENT);
    const anchor = elements.at(-1) ?? kids.filter((k) => !(k.nodeType === TEXT && /^\s*$/.test(k.data ?? ''))).at(-1);
    const make = this.addMarkup(elements);
    if (anchor) {
      const indent = this.pos.indentOf(anchor);
      const { at, after } = indent !== undefined ? this.endOfLine(anchor, kids) : { at: this.pos.end(anchor), after: anchor };
      const text = adds.map((a) => (indent !== undefined ? this.eol + indent : '') + make(a)).join('');
      return { edit: { start: at, end: at, text, owner }, after };
    }
    // empty section: <appSettings/>, <appSettings></appSettings> or only blanks inside
    const indent = this.pos.indentOf(sectionEl) ?? '';
    const inner = adds.map((a) => this.eol + indent + this.indentUnit() + make(a)).join('') + this.eol + indent;
    const t = this.pos.startTag(sectionEl);
    if (t.selfClosing) return { edit: { start: t.wsBeforeClose, end: t.end, text: `>${inner}</${sectionEl.nodeName}>`, owner }, after: null };
    return { edit: { start: t.end, end: this.pos.contentEnd(sectionEl), text: inner, owner }, after: null };
  }

  /**
   * Where new lines go after `anchor` (a child of the section, alone at the start of its line): past
   * the comments that follow it on its line and the blanks before the line end. If something else
   * follows on that line, or the blanks belong to text that is not blank, just past the anchor.
   */
  private endOfLine(anchor: XNode, kids: XNode[]): { at: number; after: XNode } {
    const b = this.src.body;
    const lineEnd = (at: number) => {
      const lt = b.indexOf('<', at);
      const textNode = b.slice(at, lt < 0 ? b.length : lt); // the text (if any) that starts here runs to the next '<'
      const blanks = /^[ \t]*(?=\r|\n)/.exec(textNode);
      return blanks && /^\s*$/.test(textNode) ? at + blanks[0].length : undefined;
    };
    let at = this.pos.end(anchor);
    let after = anchor;
    for (let i = kids.indexOf(anchor) + 1; i < kids.length; i++) {
      const k = kids[i]!;
      if (k.nodeType === TEXT && /^[ \t]*$/.test(k.data ?? '')) continue; // blanks on the same line
      if (k.nodeType !== COMMENT) break;
      const end = this.pos.end(k);
      // a comment on the anchor's line: only blanks between them (a text node with a line end stops the loop)
      if (!/^[ \t]*$/.test(b.slice(at, this.pos.offset(k)))) break;
      at = end;
      after = k;
    }
    const atLineEnd = lineEnd(at);
    return atLineEnd !== undefined ? { at: atLineEnd, after } : { at: this.pos.end(anchor), after: anchor };
  }

  /** Writes a new `<add>`: it copies the quote and `/>` style of a sibling, else of any <add> in the file. */
  private addMarkup(siblings: XNode[]): (a: PendingAdd) => string {
    const sibling = siblings.find((k) => k.nodeName === 'add') ?? siblings[0] ?? firstAdd(this.src.doc);
    const st = sibling ? this.pos.startTag(sibling) : undefined;
    const q = st?.quote ?? '"';
    const close = st && !st.selfClosing ? undefined : st && st.wsBeforeClose === st.closeStart ? '/>' : ' />';
    return (a) => {
      const { keyAttr, valueAttr } = SECTIONS[a.section];
      const attrs = `${keyAttr}=${q}${escapeXmlAttr(a.key, q)}${q} ${valueAttr}=${q}${escapeXmlAttr(a.value, q)}${q}`;
      return close ? `<add ${attrs}${close}` : `<add ${attrs}></add>`;
    };
  }

  /** The document's indentation step: how far the root's first child element is indented. */
  private indentUnit(): string {
    const root = this.src.doc.documentElement;
    const rootIndent = root ? (this.pos.indentOf(root) ?? '') : '';
    for (const k of Array.from(root?.childNodes ?? [])) {
      if (k.nodeType !== ELEMENT) continue;
      const i = this.pos.indentOf(k);
      if (i !== undefined && i.length > rootIndent.length && i.startsWith(rootIndent)) return i.slice(rootIndent.length);
    }
    return '  ';
  }

  // ---- output

  splice(): string {
    return splice(this.src.body, this.edits, (prev, e) =>
      this.list.report(e.owner === prev.owner ? e.owner : `${prev.owner} and ${e.owner}`, 'set the same node twice (or overlapping nodes); keep one'),
    );
  }

  /** The output parses, and differs from the input only where intended. */
  verify(out: string): void {
    try {
      verify(this.src.doc, parse(out).doc, this.expect);
    } catch (e) {
      if (!(e instanceof RenderProblem)) throw e;
      this.list.report(undefined, e.message.startsWith('internal error') ? e.message : `internal error: ${e.message}`);
      throw new ConfigError(this.list.problems);
    }
  }
}

function firstAdd(n: XNode): XNode | undefined {
  if (n.nodeType === ELEMENT && n.nodeName === 'add') return n;
  for (const k of Array.from(n.childNodes ?? [])) {
    const f = firstAdd(k);
    if (f) return f;
  }
  return undefined;
}

/**
 * When an expression that matched nothing names, without a prefix, an element that is in a
 * default namespace (e.g. assemblyBinding in urn:schemas-microsoft-com:asm.v1), say how to fix it.
 */
function defaultNamespaceHint(doc: XNode, expr: string, namespaces: Record<string, string> | undefined): string {
  const byName = new Map<string, string>();
  const visit = (n: XNode) => {
    if (n.nodeType === ELEMENT && n.namespaceURI && !n.prefix && n.localName) byName.set(n.localName, n.namespaceURI);
    for (const k of Array.from(n.childNodes ?? [])) visit(k);
  };
  visit(doc);
  for (const [name, uri] of byName) {
    const unprefixed = new RegExp(`(^|[^:@\\w.-])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w.-]|\\s*\\()`);
    if (!unprefixed.test(expr)) continue;
    const declared = Object.entries(namespaces ?? {}).find(([, u]) => u === uri)?.[0];
    return declared
      ? `. Note: <${name}> is in the namespace ${uri}: write it as ${declared}:${name}`
      : `. Note: <${name}> is in a default namespace (xmlns="${uri}") and can only be selected with a prefix: declare namespaces: { p: '${uri}' } and write p:${name}`;
  }
  return '';
}
