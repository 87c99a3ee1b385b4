// Renderers never re-serialise a file: they replace exact spans of the original text, so
// everything they do not touch (BOM, CRLF, comments, layout) stays byte for byte.

/** Replace [start, end) of the original text with `text`; `owner` names the override that asked. */
export interface Edit {
  start: number;
  end: number;
  text: string;
  owner: string;
}

/** Applies the edits in text order; two edits touching the same span are passed to onOverlap and the second is dropped. */
export function splice(text: string, edits: Edit[], onOverlap: (first: Edit, second: Edit) => void): string {
  const sorted = [...edits].sort((a, b) => a.start - b.start || a.end - b.end);
  let out = '';
  let cur = 0;
  let prev: Edit | undefined;
  for (const e of sorted) {
    if (prev && (e.start < cur || (e.start === prev.start && e.end === prev.end))) {
      onOverlap(prev, e);
      continue;
    }
    out += text.slice(cur, e.start) + e.text;
    cur = e.end;
    prev = e;
  }
  return out + text.slice(cur);
}

export type Eol = '\n' | '\r\n';

/** The line end that inserted text uses: CRLF if the file has any, else LF. */
export function eolOf(text: string): Eol {
  return /\r\n/.test(text) ? '\r\n' : '\n';
}
