/**
 * Key paths for JSON config files.
 *
 * Syntax: segments joined by dots, with bracket forms for array indices and awkward keys —
 *
 *   db.host                         → { "db": { "host": … } }
 *   servers[0].port                 → first element of the "servers" array
 *   Logging.LogLevel["Microsoft.AspNetCore"]   → a key that contains dots
 *   ["weird key [1]"].x             → any key, written as a JSON string literal in brackets
 *
 * A bare segment is any run of characters other than `.`, `[`, `]`. `[n]` (digits only) is an
 * array index and only valid on an array; a bare or quoted segment is an object key and only
 * valid on an object — so `a.0` is the key "0" of object `a`, never an array index.
 */
export type PathSegment = { key: string } | { index: number };

export class JsonPathSyntaxError extends Error {
  override name = 'JsonPathSyntaxError';
}

export function parseJsonPath(path: string): PathSegment[] {
  const segs: PathSegment[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new JsonPathSyntaxError(`invalid key path ${JSON.stringify(path)}: ${why} at character ${i + 1}`);
  };
  if (path.length === 0) fail('empty path');
  let first = true;
  while (i < path.length) {
    const c = path[i];
    if (c === '[') {
      const close = findBracketEnd(path, i);
      if (close < 0) fail('unclosed "["');
      const inner = path.slice(i + 1, close);
      if (/^\d+$/.test(inner)) {
        const n = Number(inner);
        if (!Number.isSafeInteger(n)) fail('index too large');
        segs.push({ index: n });
      } else if (inner.startsWith('"')) {
        let key: unknown;
        try {
          key = JSON.parse(inner);
        } catch {
          fail('bracketed key is not a valid JSON string');
        }
        if (typeof key !== 'string') fail('bracketed key is not a JSON string');
        segs.push({ key: key as string });
      } else {
        fail('expected [digits] or ["key"]');
      }
      i = close + 1;
    } else {
      if (!first) {
        if (c !== '.') fail('expected "." or "["');
        i++;
      }
      const m = /^[^.[\]]+/.exec(path.slice(i));
      if (!m) fail('empty segment');
      segs.push({ key: m![0] });
      i += m![0].length;
    }
    first = false;
  }
  return segs;
}

/** The index of the `]` closing the bracket at `open`, skipping a JSON string inside. */
function findBracketEnd(path: string, open: number): number {
  let i = open + 1;
  if (path[i] === '"') {
    i++;
    while (i < path.length && path[i] !== '"') i += path[i] === '\\' ? 2 : 1;
    if (i >= path.length) return -1;
    i++;
  }
  const close = path.indexOf(']', i);
  return close;
}

/** The canonical spelling of a path (used in messages). */
export function formatJsonPath(segs: readonly PathSegment[]): string {
  let out = '';
  for (const s of segs) {
    if ('index' in s) out += `[${s.index}]`;
    else if (/^[^.[\]]+$/.test(s.key)) out += out === '' ? s.key : `.${s.key}`;
    else out += `[${JSON.stringify(s.key)}]`;
  }
  return out;
}
