// A Transport that plays the remote scripts in memory, for unit tests of the release flow: no sshd,
// no servers. It answers like release.sh (docs/REMOTE-PROTOCOL.md): `::sy` result lines, `::sy
// ready step=prepare|switch`, then the next word from stdin (`switch`, `retire`, `undo`); exit 9
// when stdin ends without one. The single-step scripts (switch.sh, retire.sh, undo.sh, status.sh)
// run as execs of their own. Each host is scriptable (a step fails with a code, a delay, the exec
// ends early), and every connect, exec, word read, ready and exit goes into ONE log with a sequence
// number shared by all hosts, so a test can say what happened before what. A release.sh whose
// words hold --files-only plays a host that runs no app (prepare.sh --files-only: no command after
// `--` allowed, nothing started, `mode=files`). `--release @standby` (a plain rollback) resolves to
// the host's `standby` (`::sy resolved`, then that release in every step), or exits 12 without one.
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecOptions, ExecResult, Transport, TransportStats } from '../../lib/remote/transport';

export interface Outcome {
  /** Exit code of the step; 0 (the default) succeeds. */
  code?: number;
  /** The `::sy error` message when it fails. */
  msg?: string;
  /** Milliseconds the step takes. */
  delayMs?: number;
}

export interface HostScript {
  /** The release this host serves before the test; 'none' when nothing is live. Default 'R0'. */
  live?: string;
  /** The release standing by, its process running (retire --standby): what @standby names; a prepare of it starts nothing. */
  standby?: string;
  prepare?: Outcome;
  switch?: Outcome;
  retire?: Outcome;
  undo?: Outcome;
  /** The health code status.sh reports: one for every call, or one per call (the last repeats). */
  health?: number | number[];
  /**
   * release.sh ends with exit 9 (no word in time) right after its prepare's ready, or when the next
   * word arrives, before doing anything with it (it gave up waiting just then).
   */
  endEarly?: 'after-ready' | 'at-word';
}

export type EntryKind = 'connect' | 'exec' | 'word' | 'ready' | 'exit' | 'note';

export interface Entry {
  seq: number;
  host: string;
  kind: EntryKind;
  /** e.g. `exec release.sh`, `word switch`, `ready prepare`, `exit status.sh 0`, or a note's text. */
  what: string;
  script?: string;
  word?: string;
  code?: number;
}

/** The hosts of one test: their transports (for `new Session(…, fleet.transports)`) and the log. */
export class FakeFleet {
  readonly log: Entry[] = [];
  readonly transports = new Map<string, FakeTransport>();
  private seq = 0;
  private listeners: ((e: Entry) => void)[] = [];

  constructor(hosts: readonly string[], scripts: Record<string, HostScript> = {}) {
    for (const h of hosts) this.transports.set(h, new FakeTransport(h, this, scripts[h] ?? {}));
  }

  host(name: string): FakeTransport {
    const t = this.transports.get(name);
    if (!t) throw new Error(`no fake host ${name}`);
    return t;
  }

  record(host: string, kind: EntryKind, what: string, extra: Partial<Entry> = {}): void {
    const e: Entry = { seq: ++this.seq, host, kind, what, ...extra };
    this.log.push(e);
    for (const l of this.listeners) l(e);
  }

  /** Something of the test's own in the same log (a hook ran, say). */
  note(what: string, host = '-'): void {
    this.record(host, 'note', what);
  }

  /** Called for every entry as it is logged: to abort at an exact moment. */
  on(listener: (e: Entry) => void): void {
    this.listeners.push(listener);
  }

  /** `host what` for every entry (of the kinds given), in order. */
  lines(...kinds: EntryKind[]): string[] {
    return this.log.filter((e) => !kinds.length || kinds.includes(e.kind)).map((e) => `${e.host} ${e.what}`);
  }

  /** One host's entries as `what`, in order. */
  of(host: string, ...kinds: EntryKind[]): string[] {
    return this.log.filter((e) => e.host === host && (!kinds.length || kinds.includes(e.kind))).map((e) => e.what);
  }

  /** Sequence numbers of the entries `host what` matches (a host of '*' matches any). */
  seqs(host: string, what: string): number[] {
    return this.log.filter((e) => (host === '*' || e.host === host) && e.what === what).map((e) => e.seq);
  }

  /** The single sequence number of `host what`; throws unless it happened exactly once. */
  seqOf(host: string, what: string): number {
    const s = this.seqs(host, what);
    if (s.length !== 1) throw new Error(`"${host} ${what}" happened ${s.length} times:\n${this.lines().join('\n')}`);
    return s[0]!;
  }
}

export class FakeTransport implements Transport {
  readonly stats: TransportStats = { connections: 0, executions: 0, bytesUploaded: 0 };
  /** What serves now, and what served before the last switch. */
  live: string;
  private previous = 'none';
  private switched = false;
  private statusCalls = 0;
  /** The last release.sh had --files-only: this host has the files only, nothing runs. */
  filesOnly = false;
  /** Every script's words (after its name), in order: what the client asked for. */
  readonly argv: { script: string; args: string[] }[] = [];

  constructor(
    readonly host: string,
    private readonly fleet: FakeFleet,
    readonly script: HostScript,
  ) {
    this.live = script.live ?? 'R0';
  }

  async connect(): Promise<void> {
    this.stats.connections++;
    this.fleet.record(this.host, 'connect', 'connect');
  }

  async close(): Promise<void> {}

  async exec(command: string, o: ExecOptions = {}): Promise<ExecResult> {
    this.stats.executions++;
    // exec bash -c '<script>' NAME ARGS…
    const [, , , , name = '?', ...args] = shellWords(command);
    this.fleet.record(this.host, 'exec', `exec ${name}`, { script: name });
    this.argv.push({ script: name, args });
    const out = new Output(o.onLine);
    const code = await this.play(name, args, out, o);
    this.fleet.record(this.host, 'exit', `exit ${name} ${code}`, { script: name, code });
    return { code, stdout: out.text(), stderr: '' };
  }

  private play(name: string, args: string[], out: Output, o: ExecOptions): Promise<number> {
    const release = valueOf(args, '--release') ?? '?';
    switch (name) {
      case 'release.sh': {
        const stdin = typeof o.stdin === 'function' ? o.stdin() : o.stdin === undefined ? undefined : Readable.from([o.stdin]);
        // the upload's bytes count as uploaded (not the words after them)
        const words = new Words(stdin, args.includes('--delta'), (n) => (this.stats.bytesUploaded += n));
        this.filesOnly = args.includes('--files-only');
        if (this.filesOnly && args.includes('--')) {
          out.line('::sy error code=2 step=prepare msg=--files-only starts nothing: no -- CMD');
          return Promise.resolve(2);
        }
        return this.releaseScript(release, out, words);
      }
      case 'switch.sh':
        return this.switchStep(release, out);
      case 'retire.sh':
        return this.retire(out);
      case 'undo.sh':
        return this.undo(release, out);
      case 'status.sh':
        return this.status(out);
      default:
        out.line(`::sy error code=2 step=${name} msg=the fake transport does not play ${name}`);
        return Promise.resolve(2);
    }
  }

  /** release.sh: prepare, ready, then one word a line until retire or undo ends it. */
  private async releaseScript(asked: string, out: Output, words: Words): Promise<number> {
    const release = asked === '@standby' ? this.script.standby : asked;
    if (release === undefined) {
      out.line('::sy error code=12 step=release msg=@standby: no standby runs here (previous release: R0, state: previous): nothing changed');
      return 12;
    }
    if (release !== asked) out.line(`::sy resolved name=@standby release=${release}`);
    if (words.delta) {
      out.line('::sy have release=none'); // nothing to link from: the whole package comes
      out.line('::sy have-end files=0');
    }
    if (!(await words.packageRead())) {
      out.line('::sy error code=1 step=unpack msg=stdin ended before the upload');
      return 1;
    }
    const failed = await this.prepare(release, out);
    if (failed) return failed;
    let step: 'prepare' | 'switch' = 'prepare';
    this.ready(step, out);
    if (this.script.endEarly === 'after-ready') return this.noWord(step, out, 5);
    for (;;) {
      const word = await words.next();
      if (word === undefined) return this.noWord(step, out);
      this.fleet.record(this.host, 'word', `word ${word}`, { word });
      if (this.script.endEarly === 'at-word') return this.noWord(step, out);
      if (step === 'prepare' && word === 'switch') {
        const code = await this.switchStep(release, out);
        if (code) return code;
        step = 'switch';
        this.ready(step, out);
      } else if (step === 'switch' && word === 'retire') {
        return this.retire(out);
      } else if (word === 'undo') {
        return this.undo(release, out);
      } else {
        out.line(`::sy error code=2 step=release msg=unexpected word after ${step}: '${word}'`);
        return 2;
      }
    }
  }

  private ready(step: 'prepare' | 'switch', out: Output): void {
    out.line(`::sy ready step=${step}`);
    this.fleet.record(this.host, 'ready', `ready ${step}`);
  }

  private async noWord(step: string, out: Output, afterMs = 0): Promise<number> {
    if (afterMs) await sleep(afterMs);
    out.line(`::sy error code=9 step=release msg=no word from the client after ${step} (stdin ended, or 600s passed): the host is left as it is (locked)`);
    return 9;
  }

  private async prepare(release: string, out: Output): Promise<number> {
    const failed = await outcome('prepare', this.script.prepare, out);
    if (failed) return failed;
    if (this.filesOnly) out.line(`::sy prepared release=${release} mode=files`);
    else if (release === this.script.standby) out.line(`::sy prepared release=${release} pid=4343 starttime=1 socket=/run/sy/SOCK-app.test-${release} status=200 standby=yes`);
    else out.line(`::sy prepared release=${release} pid=4242 starttime=1 socket=/run/sy/SOCK-app.test-${release} status=200`);
    const pid = this.filesOnly ? 'pid=none starttime=none' : 'pid=4141 starttime=1';
    out.line(this.live === 'none' ? '::sy live release=none' : `::sy live release=${this.live} ${pid}`);
    return 0;
  }

  private async switchStep(release: string, out: Output): Promise<number> {
    const failed = await outcome('switch', this.script.switch, out);
    if (failed) return failed;
    if (!this.switched) {
      this.previous = this.live;
      this.live = release;
      this.switched = true;
    }
    out.line(`::sy switched release=${release} previous=${this.previous}`);
    return 0;
  }

  private async retire(out: Output): Promise<number> {
    const failed = await outcome('retire', this.script.retire, out);
    if (failed) return failed;
    const stopped = this.filesOnly ? 'pid=none signal=gone' : 'pid=4141 signal=TERM';
    out.line(this.previous === 'none' ? '::sy retired release=none' : `::sy retired release=${this.previous} ${stopped}`);
    out.line('::sy unlocked');
    return 0;
  }

  private async undo(release: string, out: Output): Promise<number> {
    const failed = await outcome('undo', this.script.undo, out);
    if (failed) return failed;
    if (!this.switched) {
      out.line(`::sy undone release=${release} restored=not-switched`);
      return 0;
    }
    this.live = this.previous;
    this.switched = false;
    out.line(`::sy undone release=${release} restored=${this.live}`);
    return 0;
  }

  private async status(out: Output): Promise<number> {
    const h = this.script.health;
    const health = Array.isArray(h) ? (h[Math.min(this.statusCalls, h.length - 1)] ?? 200) : (h ?? 200);
    this.statusCalls++;
    await sleep(1);
    const alive = this.live === 'none' || this.filesOnly ? 'no' : 'yes';
    const mode = this.live === 'none' ? 'none' : this.filesOnly ? 'files' : 'app';
    out.line(
      `::sy status release=${this.live} pid=${alive === 'yes' ? 4141 : 'none'} alive=${alive} uptime=5 socket=${alive} health=${this.filesOnly ? 'none' : health} healthy=${health === 200 && !this.filesOnly ? 'yes' : 'no'} lock=free releases=2 previous=none mode=${mode}`,
    );
    return 0;
  }
}

async function outcome(step: string, o: Outcome | undefined, out: Output): Promise<number> {
  await sleep(o?.delayMs ?? 1);
  const code = o?.code ?? 0;
  if (code) out.line(`::sy error code=${code} step=${step} msg=${o?.msg ?? `${step} failed`}`);
  return code;
}

/** What a command prints: each line to onLine as it comes (as the real transports do), and kept. */
class Output {
  private lines: string[] = [];
  constructor(private readonly onLine?: (line: string, stream: 'stdout' | 'stderr') => void) {}
  line(l: string): void {
    this.lines.push(l);
    this.onLine?.(l, 'stdout');
  }
  text(): string {
    return this.lines.map((l) => `${l}\n`).join('');
  }
}

/**
 * release.sh's stdin: with --delta, the upload (its header line `LINK-BYTES PACKAGE-BYTES`, then
 * those bytes, skipped), then one word a line.
 */
class Words {
  private pending: string[] = [];
  private buf = '';
  private ended = false;
  private wake: (() => void) | undefined;
  /** Bytes of the upload still to skip; the header line while it comes. */
  private skip = 0;
  private head: string | undefined;

  constructor(
    stream: Readable | undefined,
    readonly delta: boolean,
    onBytes: (n: number) => void,
  ) {
    if (delta) this.head = '';
    if (!stream) {
      this.ended = true;
      return;
    }
    stream.on('data', (chunk: Buffer | string) => {
      let b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      b = this.takeHead(b, onBytes);
      const n = Math.min(this.skip, b.length);
      this.skip -= n;
      onBytes(n);
      b = b.subarray(n);
      this.buf += b.toString();
      const lines = this.buf.split('\n');
      this.buf = lines.pop() ?? '';
      this.pending.push(...lines);
      this.poke();
    });
    const end = () => {
      this.ended = true;
      this.poke();
    };
    stream.on('end', end);
    stream.on('error', end);
  }

  /** The header line, once it is whole, sets how many bytes follow; returns what is left of b. */
  private takeHead(b: Buffer, onBytes: (n: number) => void): Buffer {
    if (this.head === undefined) return b;
    const nl = b.indexOf(10);
    const part = nl < 0 ? b : b.subarray(0, nl + 1);
    onBytes(part.length);
    this.head += part.toString();
    if (nl < 0) return Buffer.alloc(0);
    const [links, pkg] = this.head.trim().split(' ').map(Number);
    this.skip = (links ?? 0) + (pkg ?? 0);
    this.head = undefined;
    return b.subarray(nl + 1);
  }

  /** prepare reads exactly the upload's bytes before it goes on; false when stdin ended first. */
  async packageRead(): Promise<boolean> {
    while ((this.head !== undefined || this.skip > 0) && !this.ended) await new Promise<void>((r) => (this.wake = r));
    return this.head === undefined && this.skip === 0;
  }

  /** The next word; undefined once stdin has ended without one. */
  async next(): Promise<string | undefined> {
    while (!this.pending.length && !this.ended) await new Promise<void>((r) => (this.wake = r));
    return this.pending.shift();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

/** The words of a command line as a POSIX shell splits them (single quotes and backslashes, as q() writes them). */
export function shellWords(command: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === ' ') {
      if (word !== undefined) out.push(word);
      word = undefined;
      continue;
    }
    word ??= '';
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      word += command.slice(i + 1, end);
      i = end;
    } else if (c === '\\') {
      word += command[i + 1] ?? '';
      i++;
    } else {
      word += c;
    }
  }
  if (word !== undefined) out.push(word);
  return out;
}

function valueOf(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}
