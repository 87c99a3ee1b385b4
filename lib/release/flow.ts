// The release as one transaction over every selected host (docs/ARCHITECTURE.md):
//   prepare everywhere (unpack, start on its own socket, health-check)
//   -> barrier: all healthy, or undo everywhere and fail
//   -> switch everywhere (mv the new socket over the live one); any failure: undo everywhere
//   -> retire the old releases (grace, TERM, drain, KILL), prune, unlock.
// Each host's steps run in ONE exec (release.sh, Mina-style): prepare, then the client writes
// `switch`, `retire` or `undo` to its stdin when every host is ready for it. A step whose
// conversation is gone (the host's script ended) runs as an exec of its own.
import os from 'node:os';
import { releaseCommand, statusCommand, type RemoteCommand } from '../remote/commands';
import { SwitchyardError } from '../errors';
import { forHost, type HostConfig } from '../environment';
import type { Package } from './package';
import { field, type Conversation, type Session, type StepResult } from '../remote/session';
import type { TransportStats } from '../remote/transport';

export type Phase = 'planned' | 'prepared' | 'switched' | 'finished' | 'failed' | 'rolled-back';
export type HookName = 'started' | 'prepared' | 'switched' | 'finished' | 'failed' | 'rolledBack';

export interface HookContext {
  session: Session;
  release: string;
  kind: ReleaseKind;
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
  /** The release each host runs: one id for a deploy (the same everywhere); per host for a rollback. */
  release: string | ((h: HostConfig) => string);
  /** The package to stream into prepare (deploy and cold-deploy). */
  packageFor?: (host: HostConfig) => Package;
  hooks?: Hooks;
  /** Aborting (Ctrl-C) stops at the next safe point and leaves every host rolled back or finished. */
  signal?: AbortSignal;
  /** Switch this many hosts at a time, each batch checked before the next (default: all at once). */
  batchSize?: number;
  onEvent?: (e: ReleaseEvent) => void;
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
}

export function lockOwner(): string {
  return `${os.userInfo().username}@${os.hostname()} pid=${process.pid}`;
}

/** A lock held by a process of this machine that no longer exists is stale; say so. */
export function describeLock(owner: string): string {
  const m = /(\S+)@(\S+) pid=(\d+)/.exec(owner);
  if (m && m[2] === os.hostname()) {
    try {
      process.kill(Number(m[3]), 0);
    } catch {
      return `${owner} — STALE: process ${m[3]} on this machine is gone; if no deploy is running, remove it with gulp unlock`;
    }
  }
  return owner;
}

async function runHooks(hooks: Hooks | undefined, name: HookName, ctx: HookContext): Promise<void> {
  const list = hooks?.[name];
  for (const h of Array.isArray(list) ? list : list ? [list] : []) await h(ctx);
}

class Aborted extends SwitchyardError {}

export async function runRelease(o: ReleaseOptions): Promise<ReleaseReport> {
  const { session } = o;
  const { env, reporter } = session;
  const started = Date.now();
  const hosts = session.hosts;
  const releaseOf = (h: HostConfig) => (typeof o.release === 'string' ? o.release : o.release(h));
  const ids = [...new Set(hosts.map(releaseOf))];
  const release = ids.length === 1 ? ids[0]! : ids.join(',');
  const state = new Map<string, HostReport>(
    hosts.map((h) => [h.name, { host: h.name, roles: h.roles, release: releaseOf(h), phase: 'planned', seconds: 0, stats: session.transport(h.name).stats }]),
  );
  const switchOrder: string[] = [];
  const ctx: HookContext = { session, release, kind: o.kind, hosts };
  const say = (msg: string, host?: string) => reporter.log('info', msg, host);
  const emit = (host: string, step: ReleaseEvent['step'], at: ReleaseEvent['at'], ok?: boolean) =>
    o.onEvent?.({ host, step, at, time: Date.now(), ...(ok === undefined ? {} : { ok }) });
  const checkAbort = () => {
    if (o.signal?.aborted) throw new Aborted('interrupted');
  };
  const step = async (h: HostConfig, cmd: RemoteCommand, name: ReleaseEvent['step'], packageFile?: string): Promise<StepResult> => {
    emit(h.name, name, 'start');
    const r = await session.exec(h.name, cmd, packageFile ? { packageFile } : {});
    emit(h.name, name, 'end', r.ok);
    return r;
  };
  /** Each host's release command, built once: its `steps` serve dry runs and steps run alone. */
  const plans = new Map<string, ReturnType<typeof releaseCommand>>();
  const talks = new Map<string, Conversation>();
  /** No exec is left waiting for a word: one still waiting ends (and says so: exit 9). */
  const endTalks = () => {
    for (const t of talks.values()) t.end();
  };
  /** The next step on the host's conversation while it lasts, else as an exec of its own. */
  const next = async (h: HostConfig, name: 'switch' | 'retire' | 'undo'): Promise<StepResult> => {
    const talk = talks.get(h.name);
    const cmd = plans.get(h.name)!.steps[name];
    if (!talk || talk.ended) return step(h, cmd, name);
    reporter.log('debug', `${name}: ${cmd.display}`, h.name);
    emit(h.name, name, 'start');
    let r = await talk.say(name, name, cmd.timeoutSeconds, name !== 'switch');
    // The exec ended before the step printed a thing (killed, or it gave up waiting for the word:
    // code 9): the step never ran there, so it runs as an exec of its own. Every step may run again.
    if (!r.ok && talk.ended && r.events.every((e) => e.event === 'error' && e.fields.step === 'release' && e.fields.code === '9')) {
      reporter.log('warn', `${name}: the host's release exec ended (${r.error ?? `exit ${r.code}`}); running ${name} on its own`, h.name);
      r = await session.exec(h.name, cmd);
    }
    emit(h.name, name, 'end', r.ok);
    return r;
  };
  const report = (ok: boolean, error?: string): ReleaseReport => {
    for (const s of state.values()) s.seconds = (Date.now() - started) / 1000;
    return {
      kind: o.kind,
      env: env.name,
      site: env.site,
      release,
      ok,
      ...(error ? { error } : {}),
      seconds: (Date.now() - started) / 1000,
      switchOrder,
      hosts: [...state.values()],
    };
  };

  // Hosts whose prepare may have changed something: they get an undo if we do not finish.
  const touched = new Set<string>();
  const undoAll = async (why: Error): Promise<void> => {
    const targets = hosts.filter((h) => touched.has(h.name));
    if (!targets.length) return;
    reporter.log('warn', `rolling back ${targets.map((h) => h.name).join(', ')}: ${why.message}`);
    const results = await session.each(targets, async (h) => {
      const r = await next(h, 'undo');
      const s = state.get(h.name)!;
      if (r.ok) {
        // the host whose own failure stopped the release stays 'failed'; the others were put back
        if (!s.error) s.phase = 'rolled-back';
        say(`rolled back (${field(r, 'undone', 'restored') ?? 'done'})`, h.name);
      } else {
        s.error = `undo failed: ${r.error}`;
        reporter.log('error', `UNDO FAILED: ${r.error}`, h.name);
      }
      return r;
    });
    const lost = results.filter((r) => r.error);
    for (const l of lost) reporter.log('error', `UNDO FAILED: ${l.error!.message}`, l.host.name);
    await runHooks(o.hooks, 'rolledBack', { ...ctx, error: why });
  };

  try {
    await runHooks(o.hooks, 'started', ctx);
    checkAbort();
    await session.connectAll();
    checkAbort();

    if (o.kind === 'cold-deploy' && !session.options.dryRun) {
      const live = await session.each(hosts, (h) => session.exec(h.name, statusCommand(forHost(env, h))));
      const running = live.filter((r) => r.value && field(r.value, 'status', 'release') !== 'none' && field(r.value, 'status', 'alive') === 'yes');
      if (running.length) {
        throw new SwitchyardError(
          `cold-deploy: a release is already live on ${running.map((r) => `${r.host.name} (${field(r.value!, 'status', 'release')})`).join(', ')}; use gulp deploy`,
        );
      }
    }

    // prepare
    say(`${o.kind} ${release} to ${hosts.length} host(s): ${hosts.map((h) => h.name).join(', ')}`);
    const reuse = o.kind === 'restart' || o.kind === 'rollback';
    const prepared = await session.each(hosts, async (h) => {
      const pkg = reuse ? undefined : o.packageFor?.(h);
      if (!reuse && !pkg && !session.options.dryRun) throw new SwitchyardError('no package to deploy', { host: h.name });
      const cmd = releaseCommand(forHost(env, h), { release: releaseOf(h), lockOwner: lockOwner(), reuse, audit: `${o.kind} by ${lockOwner()}`, ...(pkg ? { packageBytes: pkg.bytes } : {}) });
      plans.set(h.name, cmd);
      touched.add(h.name);
      let r: StepResult;
      if (session.options.dryRun) {
        r = await step(h, cmd.steps.prepare, 'prepare', pkg?.file);
      } else {
        emit(h.name, 'prepare', 'start');
        reporter.log('debug', `prepare: ${cmd.steps.prepare.display}`, h.name);
        const talk = session.converse(h.name, cmd, pkg ? { packageFile: pkg.file } : {});
        talks.set(h.name, talk);
        r = await talk.untilReady('prepare', cmd.steps.prepare.timeoutSeconds);
        emit(h.name, 'prepare', 'end', r.ok);
      }
      if (!r.ok) {
        // 3: the release dir already existed; 4: someone else's lock. Neither is ours to undo.
        if (r.code === 3 || r.code === 4) touched.delete(h.name);
        const s = state.get(h.name)!;
        s.phase = 'failed';
        s.error = r.code === 4 ? `deploy lock is held: ${describeLock(r.error?.replace(/^locked by:?\s*/i, '') ?? '')}` : r.error;
        throw new SwitchyardError(`${h.name}: prepare failed: ${s.error}`, { host: h.name });
      }
      const s = state.get(h.name)!;
      s.phase = 'prepared';
      const prev = field(r, 'live', 'release');
      if (prev && prev !== 'none') s.previous = prev;
      say(`prepared: pid ${field(r, 'prepared', 'pid') ?? '?'}, healthy (${field(r, 'prepared', 'status') ?? 'ok'})${s.previous ? `, live now: ${s.previous}` : ', nothing live yet'}`, h.name);
      return r;
    });
    const failedPrepare = prepared.filter((p) => p.error);
    if (failedPrepare.length) {
      const msg = failedPrepare.map((p) => p.error!.message).join('\n');
      throw new SwitchyardError(`no host switched: ${failedPrepare.length} of ${hosts.length} failed to prepare\n${msg}`, {
        host: failedPrepare[0]!.host.name,
      });
    }
    await runHooks(o.hooks, 'prepared', ctx);
    checkAbort();

    // switch: in batches when asked, all at once by default
    const size = o.batchSize && o.batchSize > 0 ? o.batchSize : hosts.length;
    for (let i = 0, batch = 1; i < hosts.length; i += size, batch++) {
      const group = hosts.slice(i, i + size);
      const switched = await session.each(group, async (h) => {
        const r = await next(h, 'switch');
        if (!r.ok) throw new SwitchyardError(`${h.name}: switch failed: ${r.error}`, { host: h.name });
        const s = state.get(h.name)!;
        s.phase = 'switched';
        s.batch = batch;
        switchOrder.push(h.name);
        say(`switched: ${releaseOf(h)} is live${s.previous ? ` (was ${s.previous})` : ''}`, h.name);
        return r;
      });
      const failed = switched.filter((x) => x.error);
      if (failed.length) {
        for (const f of failed) {
          const s = state.get(f.host.name)!;
          s.phase = 'failed';
          s.error = f.error!.message;
        }
        throw new SwitchyardError(`switch failed on ${failed.map((f) => f.host.name).join(', ')}: every host goes back\n${failed.map((f) => f.error!.message).join('\n')}`, {
          host: failed[0]!.host.name,
        });
      }
      if (i + size < hosts.length) {
        // Between batches: the batch just switched must still answer before the next one goes.
        const checks = await session.each(group, (h) => session.exec(h.name, statusCommand(forHost(env, h))));
        const sick = checks.filter((c) => c.error || !c.value?.ok || field(c.value, 'status', 'health') !== String(env.app.health.expectStatus));
        if (sick.length) throw new SwitchyardError(`batch ${batch} is not healthy after the switch: ${sick.map((c) => c.host.name).join(', ')}`);
        checkAbort();
      }
    }
    await runHooks(o.hooks, 'switched', ctx);
  } catch (e) {
    const err = e instanceof Aborted ? new SwitchyardError(`${o.kind} interrupted: every host is put back`) : (e as Error);
    reporter.log('error', err.message);
    await undoAll(err);
    endTalks();
    await runHooks(o.hooks, 'failed', { ...ctx, error: err }).catch(() => undefined);
    for (const s of state.values()) if (s.phase === 'prepared' || s.phase === 'switched') s.phase = 'failed'; // not put back
    const r = report(false, err.message);
    throw Object.assign(err instanceof SwitchyardError ? err : new SwitchyardError(err.message, { cause: err }), { report: r });
  }

  // retire: past the point of no return; every host serves the new release already
  const retired = await session.each(hosts, async (h) => {
    const r = await next(h, 'retire');
    const s = state.get(h.name)!;
    if (!r.ok) {
      s.error = `retire failed: ${r.error}`;
      throw new SwitchyardError(`${h.name}: ${s.error}`, { host: h.name });
    }
    s.phase = 'finished';
    const old = field(r, 'retired', 'release');
    say(old && old !== 'none' ? `retired ${old} (${field(r, 'retired', 'signal') ?? 'done'})` : 'nothing to retire', h.name);
    return r;
  });
  endTalks();
  const failedRetire = retired.filter((r) => r.error);
  if (failedRetire.length) {
    const msg = `${release} is live everywhere, but retiring the old release failed on ${failedRetire.map((r) => r.host.name).join(', ')}:\n${failedRetire.map((r) => r.error!.message).join('\n')}`;
    await runHooks(o.hooks, 'failed', { ...ctx, error: new Error(msg) }).catch(() => undefined);
    throw Object.assign(new SwitchyardError(msg), { report: report(false, msg) });
  }
  await runHooks(o.hooks, 'finished', ctx);
  return report(true);
}

/** The report a failed release carries, when it got far enough to have one. */
export function reportOf(e: unknown): ReleaseReport | undefined {
  return (e as { report?: ReleaseReport } | undefined)?.report;
}
