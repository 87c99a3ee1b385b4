// Everything the user reads goes through here: one place to put host prefixes and mask secrets.
import log from 'gulplog';

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Reporter {
  log(level: Level, message: string, host?: string): void;
  /** Values that must never be shown (secrets); replaced by ****** in every line. */
  addSecret(value: string): void;
  readonly verbose: boolean;
}

/**
 * Control characters (a value's escape sequence, a carriage return that would overwrite the line)
 * are shown as \xNN, so what a terminal shows is what the line holds. Tabs stay.
 */
export function escapeControls(line: string): string {
  return line.replace(/[\x00-\x08\x0b-\x1f\x7f\x9b]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export abstract class BaseReporter implements Reporter {
  private secrets: string[] = [];
  constructor(readonly verbose = false) {}
  addSecret(value: string): void {
    if (value && !this.secrets.includes(value)) {
      this.secrets.push(value);
      this.secrets.sort((a, b) => b.length - a.length); // longest first: no half-masked overlaps
    }
  }
  mask(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('******');
    return out;
  }
  log(level: Level, message: string, host?: string): void {
    if (level === 'debug' && !this.verbose) return;
    const text = this.mask(message);
    for (const line of text.split('\n')) this.write(level, escapeControls(host ? `[${host}] ${line}` : line));
  }
  protected abstract write(level: Level, line: string): void;
}

/**
 * Through gulplog, so gulp-cli prints it with its timestamps (and --silent works). Outside gulp
 * (the switchyard command, a program of your own) nobody listens to gulplog, which would throw on
 * an error line: the line goes to the console instead (warnings and errors to stderr).
 */
export class GulpReporter extends BaseReporter {
  /** toStderr: every line to stderr, none through gulplog (--json: stdout holds the JSON alone). */
  constructor(verbose = false, private readonly toStderr = false) {
    super(verbose);
  }
  protected write(level: Level, line: string): void {
    if (this.toStderr) {
      process.stderr.write(`${line}\n`);
      return;
    }
    // gulp-cli shows debug only at -LLLL; --verbose already chose to show these lines.
    const as = level === 'debug' ? 'info' : level;
    // gulplog is an EventEmitter (glogg over sparkles); its types leave that out
    if ((log as unknown as NodeJS.EventEmitter).listenerCount(as) > 0) log[as](line);
    else (as === 'info' ? process.stdout : process.stderr).write(`${line}\n`);
  }
}

/** A dry run says so at the end of every line it prints, so no line reads as something that happened. */
export class DryRunReporter implements Reporter {
  constructor(private readonly inner: Reporter) {}
  get verbose(): boolean {
    return this.inner.verbose;
  }
  addSecret(value: string): void {
    this.inner.addSecret(value);
  }
  log(level: Level, message: string, host?: string): void {
    this.inner.log(level, message.split('\n').map((l) => `${l}  (dry run)`).join('\n'), host);
  }
}

/** Keeps lines in memory: for tests, and for programs that embed switchyard. */
export class MemoryReporter extends BaseReporter {
  readonly lines: { level: Level; line: string }[] = [];
  constructor(verbose = true, private echo = false) {
    super(verbose);
  }
  protected write(level: Level, line: string): void {
    this.lines.push({ level, line });
    if (this.echo) process.stderr.write(`${level}: ${line}\n`);
  }
  text(): string {
    return this.lines.map((l) => l.line).join('\n');
  }
}
