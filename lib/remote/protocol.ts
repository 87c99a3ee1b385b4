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

// ---- the upload (prepare.sh --delta) ---------------------------------------------------------------

/** A file the host offers (`SHA256 MODE PATH`): its checksum and its mode as find prints it. */
export interface HaveEntry {
  sha256: string;
  mode: string;
}

/** What one host is sent: the paths it links from its live release, then a .tar.gz of the rest. */
export interface Upload {
  links: string[];
  file: string;
  bytes: number;
  /** Files in the .tar.gz. */
  files: number;
}

/** prepare.sh unpacks under umask 027 with --no-same-permissions: the mode find then shows. */
export function hostMode(mode: number): string {
  return (mode & 0o7777 & ~0o027).toString(8);
}

/** Names the host keeps in its manifest (prepare.sh DELTA_FIND): the only ones it can offer. */
export function linkable(rel: string): boolean {
  return (!rel.startsWith('.switchyard/') || rel.startsWith('.switchyard/bin/')) && !/[\x00-\x1f\x7f\\]/.test(rel);
}

/** The header line and the list of links, as prepare.sh --delta reads them before the package. */
export function uploadHead(u: Pick<Upload, 'links' | 'bytes'>): Buffer {
  const list = Buffer.from(u.links.map((l) => `${l}\n`).join(''));
  return Buffer.concat([Buffer.from(`${list.length} ${u.bytes}\n`), list]);
}

/** A line of the host's `::sy have` listing, or undefined when it is not one. */
export function parseHaveLine(line: string): { path: string; entry: HaveEntry } | undefined {
  const m = /^([0-9a-f]{64}) ([0-7]+) (.+)$/.exec(line);
  return m ? { path: m[3]!, entry: { sha256: m[1]!, mode: m[2]! } } : undefined;
}
