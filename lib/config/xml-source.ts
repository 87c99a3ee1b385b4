// The XML renderer's view of the source: the DOM (with positions) and where each node sits in the
// text, double-checked, so that edits can be spliced in without re-serialising anything.
import { lazy } from '../lazy';

const xmldom = lazy(() => require('@xmldom/xmldom') as typeof import('@xmldom/xmldom'));
const fastXml = lazy(() => require('fast-xml-parser') as typeof import('fast-xml-parser'));
import { RenderProblem } from './errors';

// Node types (DOM constants)
export const ELEMENT = 1;
export const ATTRIBUTE = 2;
export const TEXT = 3;
export const CDATA = 4;
export const PI = 7;
export const COMMENT = 8;

/** The part of the xmldom node interface used here (xpath's typings speak DOM `Node`). */
export interface XNode {
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

/** Parsed source: the text without BOM, where each line starts, and the DOM. */
export interface Source {
  body: string;
  lineStarts: number[];
  doc: XNode;
}

/**
 * Parses `body` (no BOM). Throws a RenderProblem naming line and column on anything that is not
 * well-formed XML.
 */
export function parse(body: string): Source {
  const v = fastXml().XMLValidator.validate(body);
  if (v !== true) {
    throw new RenderProblem(`malformed XML at line ${v.err.line}, column ${v.err.col}: ${v.err.msg}`);
  }
  let failure: string | undefined;
  let doc: XNode;
  try {
    doc = new (xmldom().DOMParser)({
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
    throw new RenderProblem(failure ?? `malformed XML: ${(e as Error).message}`);
  }
  if (failure) throw new RenderProblem(failure);
  const lineStarts = [0];
  for (const m of body.matchAll(/\r\n|\r|\n/g)) lineStarts.push(m.index + m[0].length);
  return { body, lineStarts, doc };
}

/** Double-checked positions of nodes in the source text. */
export class Positions {
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

export function internal(what: string): RenderProblem {
  return new RenderProblem(`internal error: ${what}; the file was not rendered (please report this with the file)`);
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

export function describeNode(n: XNode): string {
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
