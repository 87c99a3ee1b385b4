// The release as one transaction over every selected host (docs/ARCHITECTURE.md). Its steps, by
// method name, in the order ReleaseRun.run() takes them:
//   hook('started') -> connect -> refuseIfLive (cold-deploy only) -> prepareAll (prepareEach:
//   prepareHost, startTalk; a rollback to @standby with a host that has none: fallBack, then
//   prepareEach again) -> hook('prepared') -> switchInBatches (switchBatch; checkBatch between batches)
//   -> hook('switched') -> retireAll (retireHost) -> hook('finished')
//   a failure or an abort before the retire: rollBack -> undoTouched (undoHost, hook('rolledBack'))
//   -> hook('failed'); a failure to retire: hook('failed'), the new release staying live.
// prepare: unpack, start on its own socket, health-check; the barrier: all healthy, or undo
// everywhere and fail; switch: mv the new socket over the live one, any failure: undo everywhere;
// retire: the old releases (grace, TERM, drain, KILL), prune, unlock.
// Each host's steps run in ONE exec (release.sh, Mina-style): prepare, then the client writes
// `switch`, `retire` or `undo` to its stdin when every host is ready for it (nextStep). A step whose
// conversation is gone (the host's script ended) runs as an exec of its own (execStep).
// A plain rollback inside the standby window is one exec too: the host resolves `@standby` itself
// (release.sh) and says which release that is; one without a standby refuses (12), changing nothing.
import { releaseCommand, statusCommand, superviseCommand, type RemoteCommand } from '../remote/commands';
import { SwitchyardError } from '../errors';
import { forHost, type Environment, type HostConfig } from '../environment';
import { runsApp } from '../environment/hosts';
import type { HaveEntry, Package, Upload } from './package';
import { formatBytes } from '../output/summary';
import { field, type Conversation, type Session, type StepResult } from '../remote/session';
import type { TransportStats } from '../remote/transport';
import type { Reporter } from '../output/reporter';
import { describeLock, lockOwner } from './lock';
import { runHooks } from './hooks';
import { resolveAppEnv } from '../config/secrets';

export { describeLock, lockOwner } from './lock';

export type Phase = 'planned' | 'prepared' | 'switched' | 'finished' | 'failed' | 'rolled-back';
export type HookName = 'started' | 'prepared' | 'switched' | 'finished' | 'failed' | 'rolledBack';

export interface HookContext {
  session: Session;
  /**
   * The release id, or the ids joined with commas when they differ per host (rollback). A plain
   * rollback to each host's standby: `@standby` in `started`, the ids each host named from `prepared` on.
   */
  release: string;
  kind: ReleaseKind;
  /** Every host of the release; those without an app role have its files only (nothing runs there). */
  hosts: HostConfig[];
  /** Set for `failed` and `rolledBack`. */
  error?: Error;
}
export type Hook = (ctx: HookContext) => unknown;
export type Hooks = Partial<Record<HookName, Hook | Hook[]>>;

export type ReleaseKind = 'deploy' | 'cold-deploy' | 'restart' | 'rollback';

/** Moments worth marking on a load-test timeline. */
export interface ReleaseEvent {
  host: string;
  step: 'prepare' | 'switch' | 'retire' | 'undo';
  at: 'start' | 'end';
  ok?: boolean;
  time: number;
}

export interface ReleaseOptions {
  session: Session;
  kind: ReleaseKind;
  /**
   * The release each host runs: one id for a deploy (the same everywhere); per host for a rollback;
   * STANDBY_RELEASE (lib/remote/commands.ts) for a plain rollback to each host's running standby.
   */
  release: string | ((h: HostConfig) => string);
  /**
   * With STANDBY_RELEASE: where each host goes instead when some host has no standby running (its
   * release.sh refused: 12). The hosts that prepared are undone first (their standby runs on).
   */
  withoutStandby?: () => Promise<(h: HostConfig) => string>;
  /** The package to stream into prepare (deploy and cold-deploy). */
  packageFor?: (host: HostConfig) => Package;
  /**
   * The app's variables, app.env with its secrets resolved (resolveAppEnv): deploy, rollback and
   * restart resolve them before any connection. Left out: resolved at the first prepare.
   */
  appEnv?: Readonly<Record<string, string>>;
  hooks?: Hooks;
  /** Aborting (Ctrl-C) stops at the next safe point and leaves every host rolled back or finished. */
  signal?: AbortSignal;
  /** Switch this many hosts at a time, each batch checked before the next (default: all at once). */
  batchSize?: number;
  onEvent?: (e: ReleaseEvent) => void;
  /**
   * Masks the secrets in a text (the deploy's Masker): the `failed` and `rolledBack` hooks get the
   * error masked, as the log has it, since a hook may post it anywhere.
   */
  mask?: (text: string) => string;
}

export interface HostReport {
  host: string;
  roles: string[];
  release: string;
  previous?: string;
  phase: Phase;
  seconds: number;
  error?: string;
  /** Switch batch number (1-based) when the host switched. */
  batch?: number;
  /** The host has no app role: the release's files only, nothing started (its switch moves `current`). */
  filesOnly?: true;
  /** A rollback to the standby: its process was still running, nothing was started (instant). */
  standby?: true;
  stats: TransportStats;
}

export interface ReleaseReport {
  kind: ReleaseKind;
  env: string;
  site: string;
  release: string;
  ok: boolean;
  error?: string;
  seconds: number;
  switchOrder: string[];
  hosts: HostReport[];
  /** A dry run: nothing ran, nothing changed; the phases say how far the plan went. */
  dryRun?: true;
}

class Aborted extends SwitchyardError {}
/** release.sh found no standby to resolve `@standby` to: nothing changed there. */
class NoStandby extends SwitchyardError {}
const NO_STANDBY = 12;
/** A release id as the remote scripts take one (docs/REMOTE-PROTOCOL.md, "Values"). */
const SCRIPT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

type Plan = ReturnType<typeof releaseCommand>;
type NextStep = 'switch' | 'retire' | 'undo';

export async function runRelease(o: ReleaseOptions): Promise<ReleaseReport> {
  return new ReleaseRun(o).run();
}

/** One run of the transaction; the per-host state lives in its fields. */
class ReleaseRun {
  private readonly session: Session;
  private readonly env: Environment;
  private readonly reporter: Reporter;
  private readonly hosts: HostConfig[];
  private readonly started = Date.now();
  /** The release each host is asked for (before a host names its @standby; after a fallBack, the new targets). */
  private target: (h: HostConfig) => string;
  private readonly state: Map<string, HostReport>;
  private readonly switchOrder: string[] = [];
  /** Each host's release command, built once: its `steps` serve dry runs and steps run alone. */
  private readonly plans = new Map<string, Plan>();
  private readonly talks = new Map<string, Conversation>();
  /** Hosts whose prepare may have changed something: they get an undo if we do not finish. */
  private readonly touched = new Set<string>();
  /** The app's variables (o.appEnv, or resolved at the first prepare). */
  private appEnv: Readonly<Record<string, string>> | undefined;

  constructor(private readonly o: ReleaseOptions) {
    this.session = o.session;
    this.env = o.session.env;
    this.reporter = o.session.reporter;
    this.hosts = o.session.hosts;
    const { release } = o;
    this.target = typeof release === 'string' ? () => release : release;
    this.state = new Map(this.hosts.map((h) => [h.name, this.plannedReport(h)]));
  }

  async run(): Promise<ReleaseReport> {
    try {
      await this.hook('started');
      this.checkAbort();
      await this.connect();
      await this.refuseIfLive();
      await this.prepareAll();
      await this.hook('prepared');
      this.checkAbort();
      await this.switchInBatches();
      await this.hook('switched');
    } catch (e) {
      throw await this.rollBack(e);
    }
    // past the point of no return: every host serves the new release already
    await this.retireAll();
    await this.finished();
    return this.report(true);
  }

  /** The finished hook: if it throws, the release stays done and its report is still published. */
  private async finished(): Promise<void> {
    try {
      await this.hook('finished');
    } catch (e) {
      const msg = `${this.release} is live everywhere, but the finished hook failed: ${(e as Error)?.message ?? String(e)}`;
      throw Object.assign(new SwitchyardError(msg, { cause: e }), { report: this.report(false, msg) });
    }
  }

  private async connect(): Promise<void> {
    await this.session.connectAll();
    this.checkAbort();
  }

  /** cold-deploy is for hosts that serve nothing yet: a live release anywhere stops it. */
  private async refuseIfLive(): Promise<void> {
    if (this.o.kind !== 'cold-deploy' || this.session.options.dryRun) return;
    const { session, env } = this;
    const live = await session.each(this.hosts, (h) => session.exec(h.name, statusCommand(forHost(env, h))));
    const running = live.filter((r) => r.value && field(r.value, 'status', 'release') !== 'none' && field(r.value, 'status', 'alive') === 'yes');
    if (running.length) {
      throw new SwitchyardError(
        `cold-deploy: a release is already live on ${running.map((r) => `${r.host.name} (${field(r.value!, 'status', 'release')})`).join(', ')}; use gulp deploy`,
      );
    }
  }

  /** Every host prepares; the barrier: one failure and no host switches. */
  private async prepareAll(): Promise<void> {
    let failedPrepare = await this.prepareEach();
    if (failedPrepare.length && this.o.withoutStandby && failedPrepare.every((p) => p.error instanceof NoStandby)) {
      await this.fallBack(failedPrepare.map((p) => p.host.name));
      failedPrepare = await this.prepareEach();
    }
    if (failedPrepare.length) {
      const msg = failedPrepare.map((p) => p.error!.message).join('\n');
      throw new SwitchyardError(`no host switched: ${failedPrepare.length} of ${this.hosts.length} failed to prepare\n${msg}`, {
        host: failedPrepare[0]!.host.name,
      });
    }
  }

  /** prepareHost on every host at once; the hosts that failed. */
  private async prepareEach(): Promise<{ host: HostConfig; error?: Error }[]> {
    const { hosts } = this;
    this.reporter.log('info', `${this.o.kind} ${this.release} to ${hosts.length} host(s): ${hosts.map((h) => h.name).join(', ')}`);
    const prepared = await this.session.each(hosts, (h) => this.prepareHost(h));
    const failedPrepare = prepared.filter((p) => p.error);
    for (const p of failedPrepare) {
      // a lost host rejects before prepareFailed could say so: it stays 'failed' through the undo
      const s = this.state.get(p.host.name)!;
      s.phase = 'failed';
      s.error ??= p.error!.message;
    }
    return failedPrepare;
  }

  /**
   * Some host has no standby running (the others may): the hosts that prepared are undone (a
   * standby prepared but not switched stays running: undo.sh), and every host starts over on the
   * targets withoutStandby gives, as a rollback outside the standby window.
   */
  private async fallBack(without: string[]): Promise<void> {
    this.reporter.log('info', `no standby runs on ${without.join(', ')}: the rollback starts the release again instead`);
    const undo = this.hosts.filter((h) => this.touched.has(h.name));
    const notBack = (await this.session.each(undo, (h) => this.undoHost(h))).filter((r) => r.error || !r.value?.ok);
    if (notBack.length) throw new SwitchyardError(`undo failed on ${notBack.map((r) => r.host.name).join(', ')}`, { host: notBack[0]!.host.name });
    this.touched.clear();
    this.target = await this.o.withoutStandby!();
    for (const h of this.hosts) this.state.set(h.name, this.plannedReport(h));
  }

  /** One host's release command starts (its conversation stays open for the next words) and prepares. */
  private async prepareHost(h: HostConfig): Promise<StepResult> {
    const reuse = this.o.kind === 'restart' || this.o.kind === 'rollback';
    const pkg = reuse ? undefined : this.o.packageFor?.(h);
    if (!reuse && !pkg && !this.session.options.dryRun) throw new SwitchyardError('no package to deploy', { host: h.name });
    const filesOnly = !runsApp(this.env, h);
    const cmd = this.plan(h, this.releaseOf(h));
    this.plans.set(h.name, cmd);
    this.touched.add(h.name);
    const r = this.session.options.dryRun ? await this.execStep(h, cmd.steps.prepare, 'prepare') : await this.startTalk(h, cmd, pkg);
    if (!r.ok) this.prepareFailed(h, r);
    this.resolved(h, field(r, 'resolved', 'release'));
    const s = this.state.get(h.name)!;
    s.phase = 'prepared';
    const prev = field(r, 'live', 'release');
    if (prev && prev !== 'none') s.previous = prev;
    if (field(r, 'prepared', 'standby') === 'yes') {
      s.standby = true;
      this.say(`prepared: ${this.releaseOf(h)} was the standby, still running (pid ${field(r, 'prepared', 'pid') ?? '?'}), healthy: nothing started`, h.name);
      return r;
    }
    const what = filesOnly ? 'files only (no app role): unpacked, nothing started' : `pid ${field(r, 'prepared', 'pid') ?? '?'}, healthy (${field(r, 'prepared', 'status') ?? 'ok'})`;
    this.say(`prepared: ${what}${s.previous ? `, live now: ${s.previous}` : ', nothing live yet'}`, h.name);
    return r;
  }

  /** The host's release command for R (its steps serve dry runs and steps run alone). */
  private plan(h: HostConfig, release: string): Plan {
    const reuse = this.o.kind === 'restart' || this.o.kind === 'rollback';
    return releaseCommand(forHost(this.env, h), {
      release,
      lockOwner: lockOwner(),
      reuse,
      filesOnly: !runsApp(this.env, h),
      audit: `${this.o.kind} by ${lockOwner()}`,
      markBad: this.o.kind === 'rollback',
      standby: this.o.kind === 'deploy', // the previous release stays up for retire.standbySeconds
      // on stdin, never on the command line (lib/remote/commands.ts envBlock)
      appEnv: (this.appEnv ??= this.o.appEnv ?? resolveAppEnv(this.env.app.env, { envFile: this.env.file, reporter: this.reporter }).values),
    });
  }

  /** The host named the release @standby stands for: the report, and any step run alone, say that one. */
  private resolved(h: HostConfig, id: string | undefined): void {
    if (id === undefined) return;
    if (!SCRIPT_ID.test(id)) throw new SwitchyardError(`${h.name}: @standby named '${id}', not a release id`, { host: h.name });
    this.state.get(h.name)!.release = id;
    this.plans.set(h.name, this.plan(h, id));
  }

  /** The host's one exec (release.sh) starts and runs prepare; it then waits for the client's word. */
  private async startTalk(h: HostConfig, cmd: Plan, pkg: Package | undefined): Promise<StepResult> {
    this.emit(h.name, 'prepare', 'start');
    this.reporter.log('debug', `prepare: ${cmd.steps.prepare.display}`, h.name);
    const talk = this.session.converse(h.name, cmd, pkg ? { upload: (have) => this.upload(h, pkg, have) } : {});
    this.talks.set(h.name, talk);
    // a host with a live release offers its files: have the checksums ready when it has (a first deploy's host offers none)
    if (this.o.kind === 'deploy') pkg?.warm?.();
    const r = await talk.untilReady('prepare', cmd.steps.prepare.timeoutSeconds);
    this.emit(h.name, 'prepare', 'end', r.ok);
    return r;
  }

  /** What the host lacks of the package, once it has said what it has. */
  private async upload(h: HostConfig, pkg: Package, have: ReadonlyMap<string, HaveEntry>): Promise<Upload> {
    const u = await pkg.uploadFor(have);
    const linked = u.links.length ? `${u.links.length} unchanged files linked on the host, ` : '';
    this.reporter.log('info', `upload: ${linked}${u.files} files sent (${formatBytes(u.bytes)})`, h.name);
    return u;
  }

  private prepareFailed(h: HostConfig, r: StepResult): never {
    // 3: the release dir already existed; 4: someone else's lock; 12: no standby to roll back to,
    // nothing done. None is ours to undo.
    if (r.code === 3 || r.code === 4 || r.code === NO_STANDBY) this.touched.delete(h.name);
    const s = this.state.get(h.name)!;
    s.phase = 'failed';
    const holder = r.error?.replace(/^locked by:?\s*/i, '') ?? '';
    // the live socket's own lock names another environment: its unlock, not this one's, frees it
    s.error = r.code !== 4 ? r.error : /being deployed by another environment/.test(holder) ? holder : `deploy lock is held: ${describeLock(holder)}`;
    throw new (r.code === NO_STANDBY ? NoStandby : SwitchyardError)(`${h.name}: prepare failed: ${s.error}`, { host: h.name });
  }

  /** In batches when asked, all at once by default; each batch is checked before the next goes. */
  private async switchInBatches(): Promise<void> {
    const { hosts } = this;
    const size = this.o.batchSize && this.o.batchSize > 0 ? this.o.batchSize : hosts.length;
    for (let i = 0, batch = 1; i < hosts.length; i += size, batch++) {
      const group = hosts.slice(i, i + size);
      await this.switchBatch(group, batch);
      if (i + size < hosts.length) {
        await this.checkBatch(group, batch);
        this.checkAbort();
      }
    }
  }

  /** Every host of the batch switches; any failure: every host goes back. */
  private async switchBatch(group: HostConfig[], batch: number): Promise<void> {
    const switched = await this.session.each(group, async (h) => {
      const r = await this.nextStep(h, 'switch');
      if (!r.ok) throw new SwitchyardError(`${h.name}: switch failed: ${r.error}`, { host: h.name });
      const s = this.state.get(h.name)!;
      s.phase = 'switched';
      s.batch = batch;
      this.switchOrder.push(h.name);
      const live = s.filesOnly ? `current is ${this.releaseOf(h)} (files only)` : `${this.releaseOf(h)} is live`;
      this.say(`switched: ${live}${s.previous ? ` (was ${s.previous})` : ''}`, h.name);
      return r;
    });
    const failed = switched.filter((x) => x.error);
    if (!failed.length) return;
    for (const f of failed) {
      const s = this.state.get(f.host.name)!;
      s.phase = 'failed';
      s.error = f.error!.message;
    }
    throw new SwitchyardError(`switch failed on ${failed.map((f) => f.host.name).join(', ')}: every host goes back\n${failed.map((f) => f.error!.message).join('\n')}`, {
      host: failed[0]!.host.name,
    });
  }

  /** Between batches: the batch just switched must still answer before the next one goes. */
  private async checkBatch(group: HostConfig[], batch: number): Promise<void> {
    const { session, env } = this;
    if (session.options.dryRun) return; // nothing switched: nothing to check (a status would answer nothing)
    const serving = group.filter((h) => runsApp(env, h)); // a files-only host has nothing to answer
    const checks = await session.each(serving, (h) => session.exec(h.name, statusCommand(forHost(env, h))));
    const sick = checks.filter((c) => c.error || !c.value?.ok || field(c.value, 'status', 'health') !== String(env.app.health.expectStatus));
    if (sick.length) throw new SwitchyardError(`batch ${batch} is not healthy after the switch: ${sick.map((c) => c.host.name).join(', ')}`);
  }

  /** Every host retires its old release; a failure here leaves the new release live, and says so. */
  private async retireAll(): Promise<void> {
    const retired = await this.session.each(this.hosts, (h) => this.retireHost(h));
    this.endTalks();
    const failedRetire = retired.filter((r) => r.error);
    if (!failedRetire.length) return;
    const msg = `${this.release} is live everywhere, but retiring the old release failed on ${failedRetire.map((r) => r.host.name).join(', ')}:\n${failedRetire.map((r) => r.error!.message).join('\n')}`;
    await runHooks(this.o.hooks, 'failed', { ...this.ctx, error: this.forHooks(new Error(msg)) }).catch(() => undefined);
    throw Object.assign(new SwitchyardError(msg), { report: this.report(false, msg) });
  }

  private async retireHost(h: HostConfig): Promise<StepResult> {
    const r = await this.nextStep(h, 'retire');
    const s = this.state.get(h.name)!;
    if (!r.ok) {
      s.error = `retire failed: ${r.error}`;
      throw new SwitchyardError(`${h.name}: ${s.error}`, { host: h.name });
    }
    s.phase = 'finished';
    const old = field(r, 'retired', 'release');
    const signal = field(r, 'retired', 'signal');
    if (s.filesOnly) this.say(`done: current is ${this.releaseOf(h)}, nothing to stop (files only)`, h.name);
    else this.say(old && old !== 'none' ? (signal === 'standby' ? `${old} stays up as the standby (retire.standbySeconds)` : `retired ${old} (${signal ?? 'done'})`) : 'nothing to retire', h.name);
    await this.keepSupervisor(h, field(r, 'supervisor', 'state'));
    return r;
  }

  /** The site's supervisor runs on every app host after a release (cold-deploy starts it; a deploy restarts one gone or of another version). */
  private async keepSupervisor(h: HostConfig, state: string | undefined): Promise<void> {
    if (!state || state === 'running') return;
    const r = await this.session.exec(h.name, superviseCommand(forHost(this.env, h), 'start'));
    const s = this.state.get(h.name)!;
    if (!r.ok) {
      s.error = `the supervisor did not start: ${r.error}`;
      throw new SwitchyardError(`${h.name}: ${s.error}`, { host: h.name });
    }
    this.say(`supervisor ${state === 'outdated' ? 'restarted (new version)' : 'started'}: pid ${field(r, 'supervisor', 'pid') ?? '?'}`, h.name);
  }

  /** Before the point of no return: every touched host goes back; the error carries the report. */
  private async rollBack(e: unknown): Promise<Error> {
    const cause = e instanceof Aborted ? new SwitchyardError(`${this.o.kind} interrupted: every host is put back`) : e instanceof Error ? e : new SwitchyardError(String(e));
    this.reporter.log('error', cause.message);
    const notBack = await this.undoTouched(cause);
    // the message must not let "every host goes back" stand for a host that did not; the error
    // thrown may be a hook's own, so it is wrapped, never changed
    const err = notBack.length
      ? new SwitchyardError(`${cause.message}\nNOT put back (its deploy lock stays held: check with gulp status, then gulp unlock): ${notBack.join('; ')}`, { cause, ...(hostOf(cause) ? { host: hostOf(cause)! } : {}) })
      : cause;
    this.endTalks();
    await runHooks(this.o.hooks, 'failed', { ...this.ctx, error: this.forHooks(err) }).catch(() => undefined);
    for (const s of this.state.values()) if (s.phase === 'prepared' || s.phase === 'switched') s.phase = 'failed'; // not put back
    const r = this.report(false, err.message);
    return Object.assign(err instanceof SwitchyardError ? err : new SwitchyardError(err.message, { cause: err }), { report: r });
  }

  /** Every touched host goes back; returns the ones that could not (`host: why`). */
  private async undoTouched(why: Error): Promise<string[]> {
    const targets = this.hosts.filter((h) => this.touched.has(h.name));
    if (!targets.length) return [];
    this.reporter.log('warn', `rolling back ${targets.map((h) => h.name).join(', ')}: ${why.message}`);
    const results = await this.session.each(targets, (h) => this.undoHost(h));
    const notBack: string[] = [];
    for (const r of results) {
      if (r.value && !r.value.ok) notBack.push(`${r.host.name}: undo failed: ${r.value.error}`);
      if (!r.error) continue;
      // the host was lost (undoHost recorded nothing): the report says so too
      const s = this.state.get(r.host.name)!;
      s.error = `${s.error ? `${s.error}; ` : ''}undo failed: ${r.error.message}`;
      this.reporter.log('error', `UNDO FAILED: ${r.error.message}`, r.host.name);
      notBack.push(`${r.host.name}: undo failed: ${r.error.message}`);
    }
    // a throwing rolledBack hook must not cut the rollback short (the failed hook, the report)
    await runHooks(this.o.hooks, 'rolledBack', { ...this.ctx, error: this.forHooks(why) }).catch((e: unknown) => this.reporter.log('warn', `rolledBack hook failed: ${(e as Error)?.message ?? String(e)}`));
    return notBack;
  }

  private async undoHost(h: HostConfig): Promise<StepResult> {
    const r = await this.nextStep(h, 'undo');
    const s = this.state.get(h.name)!;
    if (r.ok) {
      // the host whose own failure stopped the release stays 'failed'; the others were put back
      if (!s.error) s.phase = 'rolled-back';
      this.say(`rolled back (${field(r, 'undone', 'restored') ?? 'done'})`, h.name);
    } else {
      s.error = `undo failed: ${r.error}`;
      this.reporter.log('error', `UNDO FAILED: ${r.error}`, h.name);
    }
    return r;
  }

  /** The next step on the host's conversation while it lasts, else as an exec of its own. */
  private async nextStep(h: HostConfig, name: NextStep): Promise<StepResult> {
    const talk = this.talks.get(h.name);
    const cmd = this.plans.get(h.name)!.steps[name];
    if (!talk || talk.ended) return this.execStep(h, cmd, name);
    this.reporter.log('debug', `${name}: ${cmd.display}`, h.name);
    this.emit(h.name, name, 'start');
    let r = await talk.say(name, name, cmd.timeoutSeconds, name !== 'switch');
    // The exec ended before the step printed a thing (killed, or it gave up waiting for the word:
    // code 9): the step never ran there, so it runs as an exec of its own. Every step may run again.
    if (!r.ok && talk.ended && r.events.every((e) => e.event === 'error' && e.fields.step === 'release' && e.fields.code === '9')) {
      this.reporter.log('warn', `${name}: the host's release exec ended (${r.error ?? `exit ${r.code}`}); running ${name} on its own`, h.name);
      r = await this.session.exec(h.name, cmd);
    }
    this.emit(h.name, name, 'end', r.ok);
    return r;
  }

  /** One step as an exec of its own (a dry run's prepare, or a step after the conversation ended). */
  private async execStep(h: HostConfig, cmd: RemoteCommand, name: ReleaseEvent['step']): Promise<StepResult> {
    this.emit(h.name, name, 'start');
    const r = await this.session.exec(h.name, cmd);
    this.emit(h.name, name, 'end', r.ok);
    return r;
  }

  /** No exec is left waiting for a word: one still waiting ends (and says so: exit 9). */
  private endTalks(): void {
    for (const t of this.talks.values()) t.end();
  }

  /** The error as a hook may see it: masked, without its cause (which is not). */
  private forHooks(e: Error): Error {
    if (!this.o.mask) return e;
    const host = hostOf(e);
    return new SwitchyardError(this.o.mask(e.message), host ? { host } : {});
  }

  /** What a hook is given: a new object each time (the ids are the hosts' own once they named @standby). */
  private get ctx(): HookContext {
    return { session: this.session, release: this.release, kind: this.o.kind, hosts: this.hosts };
  }

  private hook(name: HookName): Promise<void> {
    return runHooks(this.o.hooks, name, this.ctx);
  }

  private checkAbort(): void {
    if (this.o.signal?.aborted) throw new Aborted('interrupted');
  }

  /** The host's release: as asked, then as the host named it (@standby). */
  private releaseOf(h: HostConfig): string {
    return this.state.get(h.name)!.release;
  }

  /** The release id, or the ids joined with commas when they differ per host (rollback). */
  private get release(): string {
    const ids = [...new Set([...this.state.values()].map((s) => s.release))];
    return ids.length === 1 ? ids[0]! : ids.join(',');
  }

  private plannedReport(h: HostConfig): HostReport {
    const files = runsApp(this.env, h) ? {} : { filesOnly: true as const };
    return { host: h.name, roles: h.roles, release: this.target(h), phase: 'planned', seconds: 0, ...files, stats: this.session.transport(h.name).stats };
  }

  /** What happened on a host; a dry run made nothing happen, so it says only what would run. */
  private say(msg: string, host?: string): void {
    if (!this.session.options.dryRun) this.reporter.log('info', msg, host);
  }

  private emit(host: string, step: ReleaseEvent['step'], at: ReleaseEvent['at'], ok?: boolean): void {
    this.o.onEvent?.({ host, step, at, time: Date.now(), ...(ok === undefined ? {} : { ok }) });
  }

  private report(ok: boolean, error?: string): ReleaseReport {
    for (const s of this.state.values()) s.seconds = (Date.now() - this.started) / 1000;
    return {
      kind: this.o.kind,
      env: this.env.name,
      site: this.env.site,
      release: this.release,
      ok,
      ...(error ? { error } : {}),
      seconds: (Date.now() - this.started) / 1000,
      switchOrder: this.switchOrder,
      hosts: [...this.state.values()],
      ...(this.session.options.dryRun ? { dryRun: true as const } : {}),
    };
  }
}

function hostOf(e: Error): string | undefined {
  return (e as { host?: string }).host;
}

/** The report a failed release carries, when it got far enough to have one. */
export function reportOf(e: unknown): ReleaseReport | undefined {
  return (e as { report?: ReleaseReport } | undefined)?.report;
}
