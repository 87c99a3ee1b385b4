// The result lines the remote scripts print (docs/REMOTE-PROTOCOL.md):
//   ::sy <event> key=value key=value … [msg=free text]
// Values never contain spaces; `msg=` is always last and runs to the end of the line. Every other
// line a script prints is human text.

export interface ResultLine {
  event: string;
  fields: Record<string, string>;
  /** The free text after `msg=`, if the line has one. */
  msg?: string;
}

export const RESULT_PREFIX = '::sy ';

/** Parses one line; undefined when it is not a result line. */
export function parseResultLine(line: string): ResultLine | undefined {
  const text = line.replace(/\r$/, '');
  if (!text.startsWith(RESULT_PREFIX)) return undefined;
  let rest = text.slice(RESULT_PREFIX.length).trimStart();
  const event = /^\S+/.exec(rest)?.[0];
  if (!event || event.includes('=')) return undefined;
  rest = rest.slice(event.length);
  const result: ResultLine = { event, fields: {} };
  for (;;) {
    rest = rest.trimStart();
    if (rest === '') break;
    if (rest.startsWith('msg=')) {
      result.msg = rest.slice('msg='.length).trimEnd();
      break;
    }
    const word = /^\S+/.exec(rest)![0];
    rest = rest.slice(word.length);
    const eq = word.indexOf('=');
    if (eq <= 0) continue; // not key=value: ignore rather than guess
    result.fields[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return result;
}

/** Every `::sy` line of a script's stdout, in order; other lines are skipped. */
export function parseResultLines(text: string): ResultLine[] {
  const out: ResultLine[] = [];
  for (const line of text.split('\n')) {
    const r = parseResultLine(line);
    if (r) out.push(r);
  }
  return out;
}
