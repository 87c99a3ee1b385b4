// The XML renderer's last check: the spliced output is parsed again and walked in parallel with the
// input, so that a splice that went wrong (a value that changed the structure, an edit in the wrong
// place) stops the render instead of shipping a broken config file.
import { ATTRIBUTE, CDATA, COMMENT, ELEMENT, PI, TEXT, describeNode, internal, type XNode } from './xml-source';

/** What the output must contain, checked after splicing. */
export interface Expectations {
  /** Original node (attribute, text, CDATA, element) → the value it must read back as. */
  values: Map<XNode, string>;
  /** Element → attribute added to it. */
  addedAttrs: Map<XNode, { name: string; value: string }>;
  /**
   * Section element → `<add>` elements inserted into it, together, right after its child `after`
   * (null: as its first children). Only blank text around them may change.
   */
  addedElements: Map<XNode, AddedElements>;
}

export interface AddedElements {
  after: XNode | null;
  elements: { keyAttr: string; key: string; valueAttr: string; value: string }[];
}

/** Adjacent text and CDATA children as one run of text, or any other child node. */
type TextRun = { text: string; sig: string; targeted: boolean; first: XNode };
type Item = { node: XNode } | TextRun;

/** Walks the input and output documents in parallel. Throws a RenderProblem on any unintended difference. */
export function verify(input: XNode, output: XNode, expect: Expectations): void {
  new Comparison(expect).walk(input, output);
}

const isTextLike = (t: number) => t === TEXT || t === CDATA;

const valueOf = (n: XNode): string => (n.nodeType === ATTRIBUTE ? n.value! : n.nodeType === ELEMENT ? (n.textContent ?? '') : (n.data ?? ''));

class Comparison {
  constructor(private readonly expect: Expectations) {}

  private fail(n: XNode, what: string): never {
    throw internal(`after splicing, ${describeNode(n)} ${what}`);
  }

  walk(x: XNode, y: XNode): void {
    const want = this.expect.values.get(x);
    if (want !== undefined) return this.compareTargeted(x, y, want);
    if (x.nodeType !== y.nodeType || x.nodeName !== y.nodeName) this.fail(x, `became ${describeNode(y)}`);
    if (x.nodeType === TEXT || x.nodeType === CDATA || x.nodeType === COMMENT || x.nodeType === PI) {
      if (x.nodeValue !== y.nodeValue) this.fail(x, 'changed');
      return;
    }
    if (x.nodeType === ELEMENT) this.compareAttributes(x, y);
    this.compareChildren(x, y);
  }

  /** A node that was set: a text node may have become CDATA or the other way round. */
  private compareTargeted(x: XNode, y: XNode, want: string): void {
    if (!(x.nodeType === y.nodeType || (isTextLike(x.nodeType) && isTextLike(y.nodeType)))) this.fail(x, 'changed its type');
    if (valueOf(y) !== want) this.fail(x, 'does not read back as the value set');
    if (x.nodeType === ELEMENT) this.compareAttributes(x, y);
  }

  // Children are compared as runs: adjacent text and CDATA nodes form one run of text (setting
  // a value may empty a text node, or turn a CDATA section into text that merges with its
  // neighbours); a run with a targeted node is compared by its text, any other run node by node.
  private compareChildren(x: XNode, y: XNode): void {
    const added = this.expect.addedElements.get(x);
    let xs: Item[];
    let ys: Item[];
    if (added) [xs, ys] = this.withoutAdded(x, y, added);
    else [xs, ys] = [this.runs(Array.from(x.childNodes), true), this.runs(Array.from(y.childNodes), false)];
    if (xs.length !== ys.length) this.fail(x, `has ${ys.length} children instead of ${xs.length}`);
    xs.forEach((xi, i) => {
      const yi = ys[i]!;
      if ('node' in xi) {
        if (!('node' in yi)) return this.fail(xi.node, 'became text');
        return this.walk(xi.node, yi.node);
      }
      if (!('text' in yi)) return this.fail(x, 'lost text');
      if (xi.targeted ? xi.text !== yi.text : xi.sig !== yi.sig) this.fail(xi.first, xi.targeted ? 'does not read back as the value set' : 'changed');
    });
  }

  /**
   * For a section that got new `<add>` elements: the runs of both, without blank text nodes (the
   * layout the insertion changed), and without the new elements, which are checked here: they
   * must come together right after the run that holds `after` (the splice never splits other text).
   */
  private withoutAdded(x: XNode, y: XNode, added: AddedElements): [Item[], Item[]] {
    const blank = (s: string | null | undefined) => /^\s*$/.test(s ?? '');
    const xKids = Array.from(x.childNodes);
    const xKept = xKids.filter((n) => n.nodeType !== TEXT || !blank(this.expect.values.get(n) ?? n.data));
    const yKept = Array.from(y.childNodes).filter((n) => n.nodeType !== TEXT || !blank(n.data));
    const xs = this.runs(xKept, true);
    const ys = this.runs(yKept, false);
    // where the new elements are: after the items that start at or before `after`
    const afterIndex = added.after ? xKids.indexOf(added.after) : -1;
    const at = xs.filter((i) => xKids.indexOf('node' in i ? i.node : i.first) <= afterIndex).length;
    const extra = ys.splice(at, added.elements.length);
    added.elements.forEach((want, i) => {
      const e = extra[i];
      if (!e || !('node' in e) || e.node.nodeName !== 'add' || e.node.getAttribute!(want.keyAttr) !== want.key || e.node.getAttribute!(want.valueAttr) !== want.value) {
        this.fail(x, `did not get <add ${want.keyAttr}=${JSON.stringify(want.key)}> with the value set`);
      }
    });
    return [xs, ys];
  }

  /** `orig`: children of the input, whose targeted text nodes count with the value set. */
  private runs(children: XNode[], orig: boolean): Item[] {
    const out: Item[] = [];
    let cur: TextRun | undefined;
    for (const n of children) {
      if (isTextLike(n.nodeType)) {
        const want = orig ? this.expect.values.get(n) : undefined;
        cur ??= { text: '', sig: '', targeted: false, first: n };
        cur.text += want ?? n.data ?? '';
        cur.sig += `${n.nodeType}:${JSON.stringify(n.data)};`;
        cur.targeted ||= want !== undefined;
      } else {
        if (cur && cur.text !== '') out.push(cur);
        cur = undefined;
        out.push({ node: n });
      }
    }
    if (cur && cur.text !== '') out.push(cur);
    return out;
  }

  private compareAttributes(x: XNode, y: XNode): void {
    const xa = Array.from(x.attributes ?? []);
    const addedAttr = this.expect.addedAttrs.get(x);
    if ((y.attributes?.length ?? 0) !== xa.length + (addedAttr ? 1 : 0)) this.fail(x, 'changed its attributes');
    for (const attr of xa) {
      const other = y.getAttributeNode!(attr.nodeName);
      if (!other) return this.fail(attr, 'disappeared');
      const want = this.expect.values.get(attr);
      if (other.value !== (want ?? attr.value)) this.fail(attr, want !== undefined ? 'does not read back as the value set' : 'changed');
    }
    if (addedAttr && y.getAttribute!(addedAttr.name) !== addedAttr.value) this.fail(x, `did not get ${addedAttr.name} with the value set`);
  }
}
