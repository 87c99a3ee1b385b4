// The JSON renderer's parser: it keeps the position of every value (the renderer splices into the
// original text) and accepts the // and /* */ comments that .NET and node-config accept.
import { RenderProblem } from './errors';

export type JNode =
  | { kind: 'object'; start: number; end: number; members: JMember[] }
  | { kind: 'array'; start: number; end: number; items: JNode[] }
  | { kind: 'scalar'; start: number; end: number };
export interface JMember {
  key: string;
  keyStart: number;
  keyEnd: number;
  value: JNode;
}
/** A JSON value as JavaScript data. */
export type Plain = string | number | boolean | null | Plain[] | { [k: string]: Plain };

/** Parses a JSON document with positions. Throws a RenderProblem naming line and column. */
export function parseJson(s: string): JNode {
  return new JsonParser(s).document();
}

/** The data of a parsed value (`s` is the text it was parsed from). */
export function toPlain(s: string, n: JNode): Plain {
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

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** A recursive-descent parser over `s`; `i` is the read position (errors point at it). */
class JsonParser {
  private i = 0;

  constructor(private readonly s: string) {}

  document(): JNode {
    const root = this.value();
    this.skip();
    if (this.i < this.s.length) this.fail('unexpected content after the end of the document');
    return root;
  }

  private fail(what: string): never {
    throw new RenderProblem(`malformed JSON at ${lineCol(this.s, this.i)}: ${what}`);
  }

  // ---- tokens

  /** Skips blanks and comments. */
  private skip(): void {
    const s = this.s;
    for (;;) {
      const c = s[this.i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.i++;
      else if (c === '/' && s[this.i + 1] === '/') {
        while (this.i < s.length && s[this.i] !== '\n' && s[this.i] !== '\r') this.i++;
      } else if (c === '/' && s[this.i + 1] === '*') {
        const e = s.indexOf('*/', this.i + 2);
        if (e < 0) this.fail('unterminated comment');
        this.i = e + 2;
      } else return;
    }
  }

  /** A string literal at `i` (which is at its opening quote), decoded. */
  private string(): string {
    const s = this.s;
    const start = this.i;
    this.i++;
    while (this.i < s.length && s[this.i] !== '"') this.i += s[this.i] === '\\' ? 2 : 1;
    if (this.i >= s.length) {
      this.i = start;
      this.fail('unterminated string');
    }
    this.i++;
    try {
      return JSON.parse(s.slice(start, this.i)) as string;
    } catch {
      this.i = start;
      return this.fail('invalid string (bad escape or raw control character)');
    }
  }

  /** A string, literal or number at `i`, or a failure naming what is there instead. */
  private scalar(): JNode {
    const start = this.i;
    const c = this.s[start];
    if (c === '"') {
      this.string();
      return { kind: 'scalar', start, end: this.i };
    }
    for (const lit of ['true', 'false', 'null']) {
      if (this.s.startsWith(lit, start)) {
        this.i += lit.length;
        return { kind: 'scalar', start, end: this.i };
      }
    }
    NUMBER.lastIndex = start;
    const m = NUMBER.exec(this.s);
    if (m) {
      this.i += m[0].length;
      return { kind: 'scalar', start, end: this.i };
    }
    return this.fail(start >= this.s.length ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`);
  }

  // ---- values

  private value(): JNode {
    this.skip();
    const c = this.s[this.i];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    return this.scalar();
  }

  private object(): JNode {
    const start = this.i++;
    const members: JMember[] = [];
    this.skip();
    if (this.s[this.i] === '}') {
      this.i++;
      return { kind: 'object', start, end: this.i, members };
    }
    for (;;) {
      this.skip();
      if (this.s[this.i] !== '"') this.fail(members.length ? 'expected a key (trailing commas are not allowed)' : 'expected a key or "}"');
      const keyStart = this.i;
      const key = this.string();
      const keyEnd = this.i;
      this.skip();
      if (this.s[this.i] !== ':') this.fail('expected ":"');
      this.i++;
      members.push({ key, keyStart, keyEnd, value: this.value() });
      this.skip();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] === '}') {
        this.i++;
        return { kind: 'object', start, end: this.i, members };
      } else this.fail('expected "," or "}"');
    }
  }

  private array(): JNode {
    const start = this.i++;
    const items: JNode[] = [];
    this.skip();
    if (this.s[this.i] === ']') {
      this.i++;
      return { kind: 'array', start, end: this.i, items };
    }
    for (;;) {
      this.skip();
      if (this.s[this.i] === ']') this.fail('trailing commas are not allowed');
      items.push(this.value());
      this.skip();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] === ']') {
        this.i++;
        return { kind: 'array', start, end: this.i, items };
      } else this.fail('expected "," or "]"');
    }
  }
}
