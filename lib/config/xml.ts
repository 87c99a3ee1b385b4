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
 */
import { splice, type Edit } from './splice';
import { DOMParser } from '@xmldom/xmldom';
import { XMLValidator } from 'fast-xml-parser';
import * as xpath from 'xpath';
import { cdataContent, escapeXmlAttr, escapeXmlText, fitsInCdata, invalidXmlCharIndex } from './escape';
import { ConfigError, problemList, splitBom } from './errors';
import type { KeyOverride, Value, XmlFileOverrides, XpathOverride } from './schema';

export interface XmlRenderContext {
  /** The config file, relative to the build (named in every message). */
  configFile: string;
  /** The environment file the overrides come from (named in every message). */
  envFile: string;
  /** Turns an override value into the string to write (secrets resolved). */
  resolve: (v: Value) => string;
}

// Node types (DOM constants)
const ELEMENT = 1;
const ATTRIBUTE = 2;
const TEXT = 3;
const CDATA = 4;
const PI = 7;
const COMMENT = 8;

/** The part of the xmldom node interface used here (xpath's typings speak DOM `Node`). */
interface XNode {
  nodeType: number;
  nodeName: string;
  lineNumber?: number;
  columnNumber?: number;
  parentNode: XNode | null;
  ownerElement?: XNode | null;
  childNodes: ArrayLike<XNode>;
  attributes?: ArrayLike<XNode> & { length: number };
  firstChild: XNode | null;
  lastChild: XNode | null;
  nodeValue: string | null;
  textContent: string | null;
  getAttributeNode?(name: string): XNode | null;
  getAttribute?(name: string): string | null;
  localName?: string | null;
  namespaceURI?: string | null;
  prefix?: string | null;
  data?: string;
  value?: string;
  documentElement?: XNode | null;
}

type Eol = '\n' | '\r\n';

class Problem extends Error {}

/** Parsed source: the text without BOM, where each line starts, and the DOM. */
interface Source {
  body: string;
  lineStarts: number[];
  doc: XNode;
}

/**
 * Parses `body` (no BOM). Throws a Problem naming line and column on anything that is not
 * well-formed XML.
 */
function parse(body: string): Source {
  const v = XMLValidator.validate(body);
  if (v !== true) {
    throw new Problem(`malformed XML at line ${v.err.line}, column ${v.err.col}: ${v.err.msg}`);
  }
  let failure: string | undefined;
  let doc: XNode;
  try {
    doc = new DOMParser({
      // XML 1.0 line ends only: U+0085/U+2028/U+2029 stay what they are
      normalizeLineEndings: (s: string) => s.replace(/\r\n?/g, '\n'),
      onError: (level, message, ctx) => {
        if (level === 'warning' && /replacement character/.test(message)) return;
        const l = (ctx as unknown as { locator?: { lineNumber?: number; columnNumber?: number } }).locator;
        failure = `malformed XML at line ${l?.lineNumber ?? '?'}, column ${l?.columnNumber ?? '?'}: ${message}`;
        throw new Error(message);
      },
    }).parseFromString(body, 'text/xml') as unknown as XNode;
  } catch (e) {
    throw new Problem(failure ?? `malformed XML: ${(e as Error).message}`);
  }
  if (failure) throw new Problem(failure);
  const lineStarts = [0];
  for (const m of body.matchAll(/\r\n|\r|\n/g)) lineStarts.push(m.index + m[0].length);
  return { body, lineStarts, doc };
}

/** Double-checked positions of nodes in the source text. */
class Positions {
  constructor(private readonly src: Source) {}

  private get body(): string {
    return this.src.body;
  }

  /** Offset of the node's start (`<` of an element/comment/CDATA, the opening quote of an attribute value, first char of a text node). */
  offset(n: XNode): number {
    const start = n.lineNumber !== undefined ? this.src.lineStarts[n.lineNumber - 1] : undefined;
    if (start === undefined || n.columnNumber === undefined) throw internal(`no source position for ${describeNode(n)}`);
    const off = start + n.columnNumber - 1;
    const b = this.body;
    const ok =
      n.nodeType === ELEMENT
        ? b.startsWith(`<${n.nodeName}`, off) && /[\s/>]/.test(b[off + 1 + n.nodeName.length] ?? '')
        : n.nodeType === ATTRIBUTE
          ? (b[off] === '"' || b[off] === "'") && decodeAttr(b.slice(off + 1, b.indexOf(b[off]!, off + 1))) === n.value
          : n.nodeType === TEXT
            ? decodeText(b.slice(off, this.end(n, off))) === n.data
            : n.nodeType === CDATA
              ? b.startsWith('<![CDATA[', off)
              : n.nodeType === COMMENT
                ? b.startsWith('<!--', off)
                : n.nodeType === PI
                  ? b.startsWith('<?', off)
                  : false;
    if (!ok) throw internal(`could not locate ${describeNode(n)} in the source`);
    return off;
  }

  /** Offset just past the node (past the end tag of an element). */
  end(n: XNode, off = this.offset(n)): number {
    const b = this.body;
    switch (n.nodeType) {
      case TEXT: {
        const lt = b.indexOf('<', off);
        return lt < 0 ? b.length : lt;
      }
      case CDATA:
        return b.indexOf(']]>', off) + 3;
      case COMMENT:
        return b.indexOf('-->', off + 4) + 3;
      case PI:
        return b.indexOf('?>', off) + 2;
      case ELEMENT: {
        const t = this.startTag(n, off);
        if (t.selfClosing) return t.end;
        const p = n.lastChild ? this.end(n.lastChild) : t.end;
        if (!b.startsWith(`</${n.nodeName}`, p)) throw internal(`could not locate the end tag of ${describeNode(n)}`);
        return b.indexOf('>', p) + 1;
      }
      default:
        throw internal(`no end for ${describeNode(n)}`);
    }
  }

  /** Offset of an element's end tag (`</`), or of its start tag's end for a self-closing one. */
  contentEnd(el: XNode): number {
    const t = this.startTag(el);
    if (t.selfClosing) return t.end;
    return el.lastChild ? this.end(el.lastChild) : t.end;
  }

  /**
   * Scans an element's start tag: `closeStart` is where `>` or `/>` begins, `wsBeforeClose`
   * where the blanks before it begin, `lastAttrEnd` just past the last attribute's closing quote.
   */
  startTag(el: XNode, off = this.offset(el)) {
    const b = this.body;
    let i = off + 1 + el.nodeName.length;
    let lastAttrEnd = i;
    const firstQuote: { q?: '"' | "'" } = {};
    for (;;) {
      const ws = i;
      while (/\s/.test(b[i] ?? '')) i++;
      if (b[i] === '/' && b[i + 1] === '>') return { selfClosing: true, wsBeforeClose: ws, closeStart: i, end: i + 2, lastAttrEnd, quote: firstQuote.q };
      if (b[i] === '>') return { selfClosing: false, wsBeforeClose: ws, closeStart: i, end: i + 1, lastAttrEnd, quote: firstQuote.q };
      const eq = b.indexOf('=', i);
      if (eq < 0) throw internal(`could not scan the start tag of ${describeNode(el)}`);
      i = eq + 1;
      while (/\s/.test(b[i] ?? '')) i++;
      const q = b[i];
      if (q !== '"' && q !== "'") throw internal(`could not scan the start tag of ${describeNode(el)}`);
      firstQuote.q ??= q;
      i = b.indexOf(q, i + 1) + 1;
      if (i === 0) throw internal(`could not scan the start tag of ${describeNode(el)}`);
      lastAttrEnd = i;
    }
  }

  /** The blanks between the start of the node's line and the node, or undefined if other content precedes it on that line. */
  indentOf(n: XNode): string | undefined {
    const off = this.offset(n);
    const b = this.body;
    let ls = off;
    while (ls > 0 && b[ls - 1] !== '\n' && b[ls - 1] !== '\r') ls--;
    const prefix = b.slice(ls, off);
    return /^[ \t]*$/.test(prefix) ? prefix : undefined;
  }
}

function internal(what: string): Problem {
  return new Problem(`internal error: ${what}; the file was not rendered (please report this with the file)`);
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z]+);/g, (all, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? all;
  });
}
function decodeText(raw: string): string {
  return decodeEntities(raw.replace(/\r\n?/g, '\n'));
}
function decodeAttr(raw: string): string {
  return decodeEntities(raw.replace(/\r\n?/g, '\n').replace(/[\t\n]/g, ' '));
}

function describeNode(n: XNode): string {
  switch (n.nodeType) {
    case ELEMENT:
      return `element <${n.nodeName}>${n.lineNumber ? ` at line ${n.lineNumber}` : ''}`;
    case ATTRIBUTE:
      return `attribute ${n.nodeName}${n.lineNumber ? ` at line ${n.lineNumber}` : ''}`;
    case TEXT:
      return `text node${n.lineNumber ? ` at line ${n.lineNumber}` : ''}`;
    case CDATA:
      return `CDATA section${n.lineNumber ? ` at line ${n.lineNumber}` : ''}`;
    case COMMENT:
      return `comment${n.lineNumber ? ` at line ${n.lineNumber}` : ''}`;
    case PI:
      return `processing instruction${n.lineNumber ? ` at line ${n.lineNumber}` : ''}`;
    default:
      return `node of type ${n.nodeType}`;
  }
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


/** What the output must contain, checked after splicing. */
interface Expectations {
  /** Original node (attribute, text, CDATA, element) → the value it must read back as. */
  values: Map<XNode, string>;
  /** Element → attribute added to it. */
  addedAttrs: Map<XNode, { name: string; value: string }>;
  /** Section element → `<add>` elements appended to it. */
  addedElements: Map<XNode, { keyAttr: string; key: string; valueAttr: string; value: string }[]>;
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
  const { problems, report } = problemList(ctx);
  const { bom, body } = splitBom(text);

  const enc = /^<\?xml\s[^>]*?encoding\s*=\s*["']([^"']*)["']/.exec(body);
  if (enc && !/^utf-?8$/i.test(enc[1]!)) {
    report(undefined, `declares encoding "${enc[1]}"; only UTF-8 config files are supported (convert the base file to UTF-8)`);
    throw new ConfigError(problems);
  }

  let src: Source;
  try {
    src = parse(body);
  } catch (e) {
    if (!(e instanceof Problem)) throw e;
    report(undefined, e.message);
    throw new ConfigError(problems);
  }
  const pos = new Positions(src);
  const eol: Eol = /\r\n/.test(body) ? '\r\n' : '\n';
  const select = xpath.useNamespaces(overrides.namespaces ?? {});
  const edits: Edit[] = [];
  const expect: Expectations = { values: new Map(), addedAttrs: new Map(), addedElements: new Map() };

  /** Evaluates an expression; returns the selected nodes or reports why not. */
  const run = (where: string, expr: string): XNode[] | undefined => {
    let r: xpath.SelectReturnType;
    try {
      r = select(expr, src.doc as unknown as Node);
    } catch (e) {
      const msg = (e as Error).message;
      const hint = /resolve|namespace|prefix/i.test(msg) ? ' (declare the prefix in `namespaces` of this file)' : '';
      report(where, `invalid XPath expression: ${msg}${hint}`);
      return undefined;
    }
    if (!Array.isArray(r)) {
      report(where, `the expression evaluates to a ${typeof r}, not to nodes; select an attribute, a text() node or an element`);
      return undefined;
    }
    return r as unknown as XNode[];
  };

  const valueFor = (where: string, v: Value): string | undefined => {
    const s = ctx.resolve(v);
    const bad = invalidXmlCharIndex(s);
    if (bad >= 0) {
      const cp = s.codePointAt(bad)!;
      report(where, `the value contains a character XML cannot represent (U+${cp.toString(16).toUpperCase().padStart(4, '0')} at index ${bad})`);
      return undefined;
    }
    return s;
  };

  // ---- appSettings / connectionStrings
  // An old Web.config may put everything in a default namespace
  // (<configuration xmlns="http://schemas.microsoft.com/.NetConfiguration/v2.0">): match by local name then.
  const rootNs = src.doc.documentElement?.namespaceURI ?? null;
  const step = (name: string) => (rootNs ? `*[local-name()='${name}' and namespace-uri()=${xpathLiteral(rootNs)}]` : name);
  const sectionExpr = (section: Section) => `/${step('configuration')}/${step(section)}`;
  const pendingAdds = new Map<XNode, { section: Section; key: string; value: string; owner: string }[]>();
  for (const section of Object.keys(SECTIONS) as Section[]) {
    const { keyAttr, valueAttr } = SECTIONS[section];
    for (const [key, raw] of Object.entries(overrides[section] ?? {})) {
      const where = `${section} ${JSON.stringify(key)}`;
      const o = unwrap<KeyOverride>(raw);
      const value = valueFor(where, o.value);
      if (value === undefined) continue;
      const elExpr = `${sectionExpr(section)}/${step('add')}[@${keyAttr}=${xpathLiteral(key)}]`;
      const shown = keyXpath(section, key);
      try {
        const found = run(where, elExpr);
        if (!found) continue;
        if (found.length > 1) {
          report(where, `${found.length} <add ${keyAttr}=…> elements match ${shown} (lines ${found.map((n) => n.lineNumber).join(', ')}); a key must be unique`);
          continue;
        }
        const el = found[0];
        if (el) {
          const attr = el.getAttributeNode!(valueAttr);
          if (attr) {
            setNode(attr, value, where);
          } else {
            const t = pos.startTag(el);
            const q = t.quote ?? '"';
            edits.push({ start: t.lastAttrEnd, end: t.lastAttrEnd, text: ` ${valueAttr}=${q}${escapeXmlAttr(value, q)}${q}`, owner: where });
            expect.addedAttrs.set(el, { name: valueAttr, value });
          }
          continue;
        }
        // not found
        const all = run(where, `${sectionExpr(section)}/${step('add')}/@${keyAttr}`) ?? [];
        const nearly = all.map((a) => a.value!).find((k) => k.toLowerCase() === key.toLowerCase());
        const caseHint = nearly !== undefined ? `; the file has ${JSON.stringify(nearly)}, which differs only in case (.NET reads keys case-insensitively) — use that spelling` : '';
        if (!o.add || nearly !== undefined) {
          report(
            where,
            `matches nothing: ${shown} selects no node${caseHint}` +
              (o.add ? '' : `. To create <add ${keyAttr}=${JSON.stringify(key)} ${valueAttr}="…" />, write { value: …, add: true }`),
          );
          continue;
        }
        const sections = run(where, sectionExpr(section)) ?? [];
        if (sections.length !== 1) {
          report(where, sections.length === 0
            ? `cannot add the key: the file has no /configuration/${section} element (add one to the base file)`
            : `cannot add the key: the file has ${sections.length} /configuration/${section} elements`);
          continue;
        }
        const list = pendingAdds.get(sections[0]!) ?? [];
        list.push({ section, key, value, owner: where });
        pendingAdds.set(sections[0]!, list);
      } catch (e) {
        if (!(e instanceof Problem)) throw e;
        report(where, e.message);
      }
    }
  }

  // ---- xpath
  for (const [expr, raw] of Object.entries(overrides.xpath ?? {})) {
    const where = `xpath ${JSON.stringify(expr)}`;
    const o = unwrap<XpathOverride>(raw);
    const value = valueFor(where, o.value);
    if (value === undefined) continue;
    try {
      const found = run(where, expr);
      if (!found) continue;
      if (found.length === 0) {
        report(where, `matches nothing${defaultNamespaceHint(src.doc, expr, overrides.namespaces)}`);
        continue;
      }
      if (found.length > 1 && !o.all) {
        report(where, `matches ${found.length} nodes (${found.slice(0, 5).map(describeNode).join(', ')}${found.length > 5 ? ', …' : ''}); make it select one, or write { value: …, all: true } to set all of them`);
        continue;
      }
      for (const n of found) setNode(n, value, where);
    } catch (e) {
      if (!(e instanceof Problem)) throw e;
      report(where, e.message);
    }
  }

  // ---- `<add>` elements to create, one edit per section
  for (const [sectionEl, adds] of pendingAdds) {
    const owner = adds.map((a) => a.owner).join(', ');
    try {
      edits.push(addElements(sectionEl, adds, owner));
      expect.addedElements.set(
        sectionEl,
        adds.map((a) => ({ keyAttr: SECTIONS[a.section].keyAttr, key: a.key, valueAttr: SECTIONS[a.section].valueAttr, value: a.value })),
      );
    } catch (e) {
      if (!(e instanceof Problem)) throw e;
      report(owner, e.message);
    }
  }

  if (problems.length) throw new ConfigError(problems);

  // ---- splice
  const out = splice(body, edits, (prev, e) =>
    report(e.owner === prev.owner ? e.owner : `${prev.owner} and ${e.owner}`, 'set the same node twice (or overlapping nodes); keep one'),
  );
  if (problems.length) throw new ConfigError(problems);

  // ---- verify: the output parses, and differs from the input only where intended
  try {
    verify(src.doc, parse(out).doc, expect);
  } catch (e) {
    if (!(e instanceof Problem)) throw e;
    report(undefined, e.message.startsWith('internal error') ? e.message : `internal error: ${e.message}`);
    throw new ConfigError(problems);
  }
  return bom + out;

  // ---------------------------------------------------------------------------------------------

  function setNode(n: XNode, value: string, owner: string): void {
    switch (n.nodeType) {
      case ATTRIBUTE: {
        const off = pos.offset(n);
        const q = src.body[off] as '"' | "'";
        const end = src.body.indexOf(q, off + 1);
        edits.push({ start: off + 1, end, text: escapeXmlAttr(value, q), owner });
        break;
      }
      case TEXT: {
        const off = pos.offset(n);
        edits.push({ start: off, end: pos.end(n, off), text: escapeXmlText(value, eol), owner });
        break;
      }
      case CDATA: {
        const off = pos.offset(n);
        if (fitsInCdata(value)) {
          const start = off + '<![CDATA['.length;
          edits.push({ start, end: src.body.indexOf(']]>', start), text: cdataContent(value, eol), owner });
        } else {
          // "]]>" or a CR cannot be inside CDATA: the section becomes an escaped text node
          edits.push({ start: off, end: pos.end(n, off), text: escapeXmlText(value, eol), owner });
        }
        break;
      }
      case ELEMENT: {
        const kids = Array.from(n.childNodes);
        const structural = kids.find((k) => k.nodeType !== TEXT && k.nodeType !== CDATA);
        if (structural) {
          throw new Problem(
            `selects ${describeNode(n)}, which contains ${structural.nodeType === ELEMENT ? `an element <${structural.nodeName}>` : `a ${describeNode(structural).replace(/ at line.*/, '')}`}; select an attribute or a text() node instead`,
          );
        }
        if (kids.length === 1) {
          setNode(kids[0]!, value, owner);
          return; // expectation recorded on the child
        }
        const t = pos.startTag(n);
        if (t.selfClosing) {
          if (value !== '') {
            edits.push({ start: t.wsBeforeClose, end: t.end, text: `>${escapeXmlText(value, eol)}</${n.nodeName}>`, owner });
          }
        } else {
          edits.push({ start: t.end, end: pos.contentEnd(n), text: escapeXmlText(value, eol), owner });
        }
        break;
      }
      default:
        throw new Problem(`selects a ${describeNode(n)}; only attributes, text nodes, CDATA sections and elements holding text can be set`);
    }
    expect.values.set(n, value);
  }

  function addElements(sectionEl: XNode, adds: { section: Section; key: string; value: string }[], owner: string): Edit {
    const kids = Array.from(sectionEl.childNodes);
    const elements = kids.filter((k) => k.nodeType === ELEMENT);
    const anchor = elements.at(-1) ?? kids.filter((k) => !(k.nodeType === TEXT && /^\s*$/.test(k.data ?? ''))).at(-1);
    // the new element copies the quote and `/>` style of a sibling, else of any <add> in the file
    const sibling = elements.find((k) => k.nodeName === 'add') ?? elements[0] ?? firstAdd(src.doc);
    const st = sibling ? pos.startTag(sibling) : undefined;
    const q = st?.quote ?? '"';
    const close = st && !st.selfClosing ? undefined : st && st.wsBeforeClose === st.closeStart ? '/>' : ' />';
    const make = (a: { section: Section; key: string; value: string }) => {
      const { keyAttr, valueAttr } = SECTIONS[a.section];
      const attrs = `${keyAttr}=${q}${escapeXmlAttr(a.key, q)}${q} ${valueAttr}=${q}${escapeXmlAttr(a.value, q)}${q}`;
      return close ? `<add ${attrs}${close}` : `<add ${attrs}></add>`;
    };
    if (anchor) {
      const indent = pos.indentOf(anchor);
      // after the anchor's line if only blanks follow it there (they stay on that line)
      let at = pos.end(anchor);
      const rest = /^[ \t]*(?=\r|\n)/.exec(src.body.slice(at));
      if (indent !== undefined && rest) at += rest[0].length;
      const text = adds.map((a) => (indent !== undefined ? eol + indent : '') + make(a)).join('');
      return { start: at, end: at, text, owner };
    }
    // empty section: <appSettings/>, <appSettings></appSettings> or only blanks inside
    const indent = pos.indentOf(sectionEl) ?? '';
    const inner = adds.map((a) => eol + indent + indentUnit() + make(a)).join('') + eol + indent;
    const t = pos.startTag(sectionEl);
    if (t.selfClosing) return { start: t.wsBeforeClose, end: t.end, text: `>${inner}</${sectionEl.nodeName}>`, owner };
    return { start: t.end, end: pos.contentEnd(sectionEl), text: inner, owner };
  }

  /** The document's indentation step: how far the root's first child element is indented. */
  function indentUnit(): string {
    const root = src.doc.documentElement;
    const rootIndent = root ? (pos.indentOf(root) ?? '') : '';
    for (const k of Array.from(root?.childNodes ?? [])) {
      if (k.nodeType !== ELEMENT) continue;
      const i = pos.indentOf(k);
      if (i !== undefined && i.length > rootIndent.length && i.startsWith(rootIndent)) return i.slice(rootIndent.length);
    }
    return '  ';
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

/** Walks the input and output documents in parallel. Throws a Problem on any unintended difference. */
function verify(a: XNode, b: XNode, expect: Expectations): void {
  const fail = (n: XNode, what: string): never => {
    throw internal(`after splicing, ${describeNode(n)} ${what}`);
  };
  const valueOf = (n: XNode): string =>
    n.nodeType === ATTRIBUTE ? n.value! : n.nodeType === ELEMENT ? (n.textContent ?? '') : (n.data ?? '');

  const walk = (x: XNode, y: XNode): void => {
    const want = expect.values.get(x);
    if (want !== undefined) {
      const textLike = (t: number) => t === TEXT || t === CDATA;
      if (!(x.nodeType === y.nodeType || (textLike(x.nodeType) && textLike(y.nodeType)))) fail(x, 'changed its type');
      if (valueOf(y) !== want) fail(x, 'does not read back as the value set');
      if (x.nodeType === ELEMENT) compareAttributes(x, y);
      return;
    }
    if (x.nodeType !== y.nodeType || x.nodeName !== y.nodeName) fail(x, `became ${describeNode(y)}`);
    if (x.nodeType === TEXT || x.nodeType === CDATA || x.nodeType === COMMENT || x.nodeType === PI) {
      if (x.nodeValue !== y.nodeValue) fail(x, 'changed');
      return;
    }
    if (x.nodeType === ELEMENT) compareAttributes(x, y);
    // Children are compared as runs: adjacent text and CDATA nodes form one run of text (setting
    // a value may empty a text node, or turn a CDATA section into text that merges with its
    // neighbours); a run with a targeted node is compared by its text, any other run node by node.
    let xs = runs(Array.from(x.childNodes), true);
    let ys = runs(Array.from(y.childNodes), false);
    const added = expect.addedElements.get(x);
    let extra: Item[] = [];
    if (added) {
      const blank = (i: Item) => 'text' in i && !i.targeted && /^\s*$/.test(i.text);
      xs = xs.filter((i) => !blank(i));
      ys = ys.filter((i) => !blank(i));
      extra = ys.splice(xs.length);
      if (extra.length !== added.length) fail(x, `got ${extra.length} new children instead of ${added.length}`);
      added.forEach((want, i) => {
        const e = extra[i]!;
        if (!('node' in e) || e.node.nodeName !== 'add' || e.node.getAttribute!(want.keyAttr) !== want.key || e.node.getAttribute!(want.valueAttr) !== want.value) {
          fail(x, `did not get <add ${want.keyAttr}=${JSON.stringify(want.key)}> with the value set`);
        }
      });
    }
    if (xs.length !== ys.length) fail(x, `has ${ys.length} children instead of ${xs.length}`);
    xs.forEach((xi, i) => {
      const yi = ys[i]!;
      if ('node' in xi) {
        if (!('node' in yi)) return fail(xi.node, 'became text');
        return walk(xi.node, yi.node);
      }
      if (!('text' in yi)) return fail(x, 'lost text');
      if (xi.targeted ? xi.text !== yi.text : xi.sig !== yi.sig) fail(xi.first, xi.targeted ? 'does not read back as the value set' : 'changed');
    });
  };

  type Item = { node: XNode } | { text: string; sig: string; targeted: boolean; first: XNode };
  const runs = (children: XNode[], orig: boolean): Item[] => {
    const out: Item[] = [];
    let cur: { text: string; sig: string; targeted: boolean; first: XNode } | undefined;
    const flush = () => {
      if (cur && cur.text !== '') out.push(cur);
      cur = undefined;
    };
    for (const n of children) {
      if (n.nodeType === TEXT || n.nodeType === CDATA) {
        const want = orig ? expect.values.get(n) : undefined;
        cur ??= { text: '', sig: '', targeted: false, first: n };
        cur.text += want ?? n.data ?? '';
        cur.sig += `${n.nodeType}:${JSON.stringify(n.data)};`;
        cur.targeted ||= want !== undefined;
      } else {
        flush();
        out.push({ node: n });
      }
    }
    flush();
    return out;
  };

  const compareAttributes = (x: XNode, y: XNode): void => {
    const xa = Array.from(x.attributes ?? []);
    const addedAttr = expect.addedAttrs.get(x);
    if ((y.attributes?.length ?? 0) !== xa.length + (addedAttr ? 1 : 0)) fail(x, 'changed its attributes');
    for (const attr of xa) {
      const other = y.getAttributeNode!(attr.nodeName);
      if (!other) return fail(attr, 'disappeared');
      const want = expect.values.get(attr);
      if (other.value !== (want ?? attr.value)) fail(attr, want !== undefined ? 'does not read back as the value set' : 'changed');
    }
    if (addedAttr && y.getAttribute!(addedAttr.name) !== addedAttr.value) fail(x, `did not get ${addedAttr.name} with the value set`);
  };

  walk(a, b);
}
