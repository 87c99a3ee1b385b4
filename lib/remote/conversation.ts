// One exec that the client talks to, step by step (release.sh): the state of that conversation —
// the step under way, what it printed so far, who waits for its end — and the events that move it.
import fs from 'node:fs';
import { PassThrough } from 'node:stream';
import type { RemoteCommand } from './commands';
import { parseHaveLine, parseResultLine, uploadHead, type HaveEntry, type ResultLine, type Upload } from './protocol';
import type { Reporter } from '../output/reporter';
import type { ExecResult, Transport } from './transport';
import type { StepResult } from './session';

/**
 * One exec that the client talks to (release.sh): it prints `::sy ready step=…` and waits for the
 * next word on its stdin. Each step's result holds only the lines printed during that step.
 */
export interface Conversation {
  /**
   * Resolves when the command says it is ready (ok), or ends (its exit code says how). A step
   * that takes longer than timeoutSeconds ends the command (TERM, then KILL).
   */
  untilReady(step: string, timeoutSeconds: number): Promise<StepResult>;
  /** Writes the word and resolves as untilReady, or when the command ends (last: stdin is closed after). */
  say(word: string, step: string, timeoutSeconds: number, last?: boolean): Promise<StepResult>;
  /** Closes stdin: a command still waiting for a word ends. */
  end(): void;
  /** The command has ended. */
  readonly ended: boolean;
}

/** What a conversation needs from its session. */
export interface ConversationDeps {
  reporter: Reporter;
  /** Starts the command on the host (its transport's exec). */
  exec: Transport['exec'];
  /** Shows a line of human text with its host, keeping it in tail. */
  show: (line: string, stream: 'stdout' | 'stderr', tail: string[]) => void;
  /**
   * The upload for the files the host offers (`::sy have`, prepare.sh --delta), sent on stdin
   * when the command takes the package.
   */
  upload?: (have: ReadonlyMap<string, HaveEntry>) => Promise<Upload>;
}

type Waiter = { resolve: (r: StepResult) => void; reject: (e: Error) => void };

export class ReleaseConversation implements Conversation {
  private readonly stdin = new PassThrough();
  /** Aborts the exec: a step ran out of its time. */
  private readonly stop = new AbortController();
  /** The last lines of human output, for error messages. */
  private readonly tail: string[] = [];
  /** The step under way, when it started and its time limit. */
  private step: string;
  private stepStarted = Date.now();
  private limit: number;
  private timer: NodeJS.Timeout | undefined;
  /** What the step printed so far. */
  private events: ResultLine[] = [];
  private out: string[] = [];
  /** The caller waiting for the step's end. */
  private waiter: Waiter | undefined;
  /** A step that ended before anyone asked: kept for the next wait. */
  private early: StepResult | undefined;
  private hasEnded = false;
  /** Why the upload could not be sent (a build file unreadable, say). */
  private uploadError: Error | undefined;
  /** The host's `::sy have` listing while it comes (SHA MODE PATH lines, then `::sy have-end files=N`). */
  private have: Map<string, HaveEntry> | undefined;
  /** The whole exec: the last step's result; rejects when the host is lost. */
  private readonly done: Promise<StepResult>;
  private readonly takesPackage: boolean;

  constructor(
    private readonly host: string,
    cmd: RemoteCommand,
    private readonly deps: ConversationDeps,
  ) {
    deps.reporter.log('debug', `${cmd.step}: one exec for every step: ${cmd.display}`, host);
    this.step = cmd.step;
    this.limit = cmd.timeoutSeconds;
    // the env block (the app's variables) first, then the package, then the words
    const envBlock = cmd.stdinEnv?.();
    if (envBlock?.length) this.stdin.write(envBlock);
    this.takesPackage = cmd.stdinPackage === true;
    this.done = deps
      .exec(cmd.command, {
        stdin: () => this.stdin,
        // No limit for the whole exec: it waits between steps for the other hosts, as long as
        // they take; each step has its own limit (untilReady/say), and the waits are the client's.
        stop: this.stop.signal,
        onLine: (line, stream) => this.onLine(line, stream),
      })
      .then(
        (r) => this.onExit(r),
        (e: Error) => this.onLost(e),
      );
    this.done.catch(() => undefined); // a lost host is reported through the pending step
  }

  get ended(): boolean {
    return this.hasEnded;
  }

  untilReady(step: string, timeoutSeconds: number): Promise<StepResult> {
    return this.wait(step, timeoutSeconds);
  }

  say(word: string, step: string, timeoutSeconds: number, last = false): Promise<StepResult> {
    const p = this.wait(step, timeoutSeconds);
    if (!this.hasEnded) {
      this.stdin.write(`${word}\n`);
      if (last) this.stdin.end();
    }
    return p;
  }

  end(): void {
    if (!this.stdin.writableEnded) this.stdin.end();
  }

  /** What the host lacks, after its listing; stdin stays open for the words. */
  private sendUpload(have: ReadonlyMap<string, HaveEntry>): void {
    if (!this.takesPackage || !this.deps.upload) {
      this.stdin.destroy(new Error('the host asked for a package this command does not send'));
      return;
    }
    const fail = (e: Error) => {
      this.uploadError = e; // the host only sees its stdin end: this is the reason
      this.stdin.destroy(e);
    };
    this.deps.upload(have).then((u) => {
      this.stdin.write(uploadHead(u));
      fs.createReadStream(u.file).on('error', fail).pipe(this.stdin, { end: false });
    }, fail);
  }

  /** A line of the host's listing: `SHA256 MODE PATH`; true while the listing lasts. */
  private onHaveLine(line: string): boolean {
    if (!this.have) return false;
    if (parseResultLine(line)?.event === 'have-end') {
      const have = this.have;
      this.have = undefined;
      this.sendUpload(have);
      return true;
    }
    const h = parseHaveLine(line);
    if (h) this.have.set(h.path, h.entry);
    return true;
  }

  /** Starts the next step: the early result if it has ended already, else a wait within its limit. */
  private wait(step: string, seconds: number): Promise<StepResult> {
    if (this.early) {
      const r = { ...this.early, step };
      this.early = undefined;
      return Promise.resolve(r);
    }
    this.step = step;
    this.stepStarted = Date.now();
    if (this.hasEnded) return this.done.then((r) => ({ ...r, step }));
    this.limit = seconds;
    this.timer = setTimeout(() => this.stop.abort(), seconds * 1000);
    return new Promise<StepResult>((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** A line of output: stdout is kept for the step; a `::sy` line is an event, the rest is shown. */
  private onLine(line: string, stream: 'stdout' | 'stderr'): void {
    if (stream === 'stdout' && this.onHaveLine(line)) return;
    if (stream === 'stdout') this.out.push(`${line}\n`);
    const ev = stream === 'stdout' ? parseResultLine(line) : undefined;
    if (!ev) {
      this.deps.show(line, stream, this.tail);
      return;
    }
    this.deps.reporter.log('debug', line, this.host);
    if (ev.event === 'ready') this.onReady();
    else if (ev.event === 'have') this.have = new Map();
    else this.events.push(ev);
  }

  /** `::sy ready`: the step has ended well. */
  private onReady(): void {
    clearTimeout(this.timer);
    const w = this.takeWaiter();
    if (w) w.resolve(this.take());
    else this.early = this.take(); // nobody asked yet: kept for the next wait
  }

  /** The command has exited: the pending step ends with its exit code. */
  private onExit(r: ExecResult): StepResult {
    this.hasEnded = true;
    clearTimeout(this.timer);
    const result = this.take();
    result.ok = r.code === 0;
    result.code = r.code;
    if (!result.ok) result.error = this.uploadError ? `the upload failed: ${this.uploadError.message}` : failureOf(result, r, this.step, this.limit, this.tail);
    this.takeWaiter()?.resolve(result);
    return result;
  }

  /** The host is lost: the pending step rejects. */
  private onLost(e: Error): never {
    this.hasEnded = true;
    clearTimeout(this.timer);
    this.takeWaiter()?.reject(e);
    throw e;
  }

  private takeWaiter(): Waiter | undefined {
    const w = this.waiter;
    this.waiter = undefined;
    return w;
  }

  /** The step's result so far (ok until the exit says otherwise); the next step starts empty. */
  private take(): StepResult {
    const r: StepResult = {
      host: this.host,
      step: this.step,
      ok: true,
      code: 0,
      events: this.events,
      stdout: this.out.join(''),
      seconds: (Date.now() - this.stepStarted) / 1000,
    };
    this.events = [];
    this.out = [];
    return r;
  }
}

/** Why a command failed: its own `::sy error` line, a timeout, or its last lines of output. */
export function failureOf(result: StepResult, r: ExecResult, step: string, timeoutSeconds: number, tail: string[]): string {
  const err = result.events.find((e) => e.event === 'error');
  if (err?.msg) return err.msg;
  if (r.timedOut) return `${step} timed out after ${timeoutSeconds}s`;
  if (r.code === 124 || r.code === 137) return `${step} timed out on the server`;
  return tail.slice(-5).join(' | ') || `${step} exited with code ${r.code}`;
}
