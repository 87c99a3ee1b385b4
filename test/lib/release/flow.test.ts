// The release transaction (lib/release/flow.ts) against a fake transport that plays release.sh:
// the order of every exec and every word across hosts, what is undone where, the hooks, the aborts.
// The same states through real sshd and nginx: test/e2e/transaction.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryReporter } from '../../../lib/output/reporter';
import type { Package } from '../../../lib/release/package';
import type { HostConfig } from '../../../lib/environment';
import { uploadHead } from '../../../lib/remote/protocol';
import { STANDBY_RELEASE } from '../../../lib/remote/commands';
import { reportOf, runRelease, type HookContext, type HookName, type Hooks, type ReleaseEvent, type ReleaseKind, type ReleaseOptions, type ReleaseReport } from '../../../lib/release/flow';
import { Session } from '../../../lib/remote/session';
import { SwitchyardError } from '../../../lib/errors';
import { makeEnv } from '../../support/env';
import { FakeFleet, type HostScript } from '../../support/fake-transport';

const HOSTS = ['h1', 'h2', 'h3'];
const REL = '20260101T000000.000Z-abc1234';
const HOOKS: HookName[] = ['started', 'prepared', 'switched', 'finished', 'failed', 'rolledBack'];

let dir: string;
let pkg: Package;
/** What one host is sent: the header line, then the package. */
let uploadBytes: number;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-flow-'));
  const file = path.join(dir, 'release.tar.gz');
  fs.writeFileSync(file, 'not really a tarball\n'); // the fake skips exactly the upload's bytes
  const upload = { links: [], file, bytes: fs.statSync(file).size, files: 1 };
  pkg = { files: 1, buildBytes: upload.bytes, uploadFor: async () => upload, remove: async () => undefined };
  uploadBytes = uploadHead(upload).length + upload.bytes;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface World {
  fleet: FakeFleet;
  reporter: MemoryReporter;
  session: Session;
  /** Every hook that ran, in order, with its context (also noted in the fleet's log as `hook NAME`). */
  hooks: { name: HookName; ctx: HookContext }[];
  events: ReleaseEvent[];
  run(): Promise<ReleaseReport>;
  /** Runs the release expecting it to fail; the error. */
  fail(): Promise<SwitchyardError>;
}

interface Setup {
  scripts?: Record<string, HostScript>;
  kind?: ReleaseKind;
  release?: ReleaseOptions['release'];
  batchSize?: number;
  /** Run after the recording hook of the same name. */
  hooks?: Hooks;
  signal?: AbortSignal;
  dryRun?: boolean;
  packageFor?: (h: HostConfig) => Package;
  mask?: (t: string) => string;
  /** Roles per host (default web, app): a host without app runs no app, it gets the files only. */
  roles?: Record<string, string[]>;
  withoutStandby?: ReleaseOptions['withoutStandby'];
}

function world(o: Setup = {}): World {
  const env = makeEnv({ hosts: HOSTS.map((name) => ({ name, address: '127.0.0.1', roles: o.roles?.[name] ?? ['web', 'app'] })) });
  const fleet = new FakeFleet(HOSTS, o.scripts);
  const reporter = new MemoryReporter();
  const session = new Session(env, env.hosts, reporter, o.dryRun ? { dryRun: true } : {}, fleet.transports);
  const hooks: World['hooks'] = [];
  const events: ReleaseEvent[] = [];
  const all: Hooks = {};
  for (const name of HOOKS) {
    const record = (ctx: HookContext) => {
      hooks.push({ name, ctx });
      fleet.note(`hook ${name}`);
    };
    const extra = o.hooks?.[name];
    all[name] = [record, ...(Array.isArray(extra) ? extra : extra ? [extra] : [])];
  }
  const run = () =>
    runRelease({
      session,
      kind: o.kind ?? 'deploy',
      release: o.release ?? REL,
      packageFor: o.packageFor ?? (() => pkg),
      hooks: all,
      onEvent: (e) => events.push(e),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.batchSize ? { batchSize: o.batchSize } : {}),
      ...(o.mask ? { mask: o.mask } : {}),
      ...(o.withoutStandby ? { withoutStandby: o.withoutStandby } : {}),
    });
  const fail = () =>
    run().then(
      (r) => {
        throw new Error(`expected the release to fail; it reported ${JSON.stringify(r.hosts.map((h) => h.phase))}`);
      },
      (e: unknown) => {
        expect(e).toBeInstanceOf(SwitchyardError);
        return e as SwitchyardError;
      },
    );
  return { fleet, reporter, session, hooks, events, run, fail };
}

const names = (w: World) => w.hooks.map((h) => h.name);
const phases = (r: ReleaseReport | undefined) => r?.hosts.map((h) => h.phase);
/** Hosts that got an undo: the word on their release exec, or undo.sh as an exec of its own. */
const undone = (f: FakeFleet) => HOSTS.filter((h) => f.of(h).some((w) => w === 'word undo' || w === 'exec undo.sh'));
const switchWords = (f: FakeFleet) => f.lines('word').filter((l) => l.endsWith(' word switch'));
const served = (f: FakeFleet) => HOSTS.map((h) => f.host(h).live);
const logText = (w: World) => w.reporter.text();

describe('the release transaction, with a fake transport', () => {
  it('prepares every host before any host switches, then switches and retires in the one exec per host', async () => {
    const w = world({ scripts: { h1: { prepare: { delayMs: 1 } }, h2: { prepare: { delayMs: 40 } }, h3: { prepare: { delayMs: 20 } } } });
    const r = await w.run();
    expect(r).toMatchObject({ ok: true, kind: 'deploy', release: REL, env: 'test', site: 'app.test' });
    expect(phases(r)).toEqual(['finished', 'finished', 'finished']);
    expect(r.hosts.map((h) => h.previous)).toEqual(['R0', 'R0', 'R0']);
    // the barrier: every ready of prepare comes before the first switch word anywhere
    const lastReady = Math.max(...w.fleet.seqs('*', 'ready prepare'));
    const firstSwitch = Math.min(...w.fleet.seqs('*', 'word switch'));
    expect(w.fleet.seqs('*', 'ready prepare')).toHaveLength(3);
    expect(lastReady).toBeLessThan(firstSwitch);
    // and every host is switched before any retires
    expect(Math.max(...w.fleet.seqs('*', 'ready switch'))).toBeLessThan(Math.min(...w.fleet.seqs('*', 'word retire')));
    for (const h of HOSTS) {
      expect(w.fleet.of(h)).toEqual(['connect', 'exec release.sh', 'ready prepare', 'word switch', 'ready switch', 'word retire', 'exit release.sh 0']);
      expect(w.fleet.host(h).stats).toEqual({ connections: 1, executions: 1, bytesUploaded: uploadBytes });
    }
    expect(served(w.fleet)).toEqual([REL, REL, REL]);
    expect(logText(w)).toContain(`deploy ${REL} to 3 host(s): h1, h2, h3`);
    expect(logText(w)).toContain('[h2] prepared: pid 4242, healthy (200), live now: R0');
    expect(logText(w)).toContain(`[h2] switched: ${REL} is live (was R0)`);
    expect(logText(w)).toContain('[h2] retired R0 (TERM)');
    expect(w.events.filter((e) => e.host === 'h1').map((e) => `${e.step} ${e.at}${e.ok === undefined ? '' : ` ${e.ok}`}`)).toEqual([
      'prepare start',
      'prepare end true',
      'switch start',
      'switch end true',
      'retire start',
      'retire end true',
    ]);
  });

  it('a health check failing on one host: no host switches, every touched host is undone, the host is named', async () => {
    const w = world({ scripts: { h2: { prepare: { code: 6, msg: 'health check failed: GET /health answered 500', delayMs: 10 } } } });
    const err = await w.fail();
    expect(err.message).toBe('no host switched: 1 of 3 failed to prepare\nh2: prepare failed: health check failed: GET /health answered 500');
    expect(err.host).toBe('h2');
    expect(switchWords(w.fleet)).toEqual([]);
    // h2's exec ended with its prepare: its undo runs as an exec of its own; h1 and h3 get the word
    expect(undone(w.fleet)).toEqual(['h1', 'h2', 'h3']);
    expect(w.fleet.of('h1')).toEqual(['connect', 'exec release.sh', 'ready prepare', 'word undo', 'exit release.sh 0']);
    expect(w.fleet.of('h2')).toEqual(['connect', 'exec release.sh', 'exit release.sh 6', 'exec undo.sh', 'exit undo.sh 0']);
    const report = reportOf(err)!;
    expect(report).toMatchObject({ ok: false, error: err.message, switchOrder: [] });
    expect(phases(report)).toEqual(['rolled-back', 'failed', 'rolled-back']);
    expect(report.hosts[1]!.error).toBe('health check failed: GET /health answered 500');
    expect(names(w)).toEqual(['started', 'rolledBack', 'failed']);
    expect(served(w.fleet)).toEqual(['R0', 'R0', 'R0']);
    expect(logText(w)).toContain('rolling back h1, h2, h3: no host switched: 1 of 3 failed to prepare');
    expect(logText(w)).toContain('[h1] rolled back (not-switched)');
  });

  it('an upload that cannot be made (a build file gone meanwhile) fails that host with the reason, not "stdin ended"; no host switches', async () => {
    const broken: Package = { ...pkg, uploadFor: () => Promise.reject(new Error("ENOENT: no such file or directory, open 'dist/app.js'")) };
    const w = world({ packageFor: (h) => (h.name === 'h2' ? broken : pkg) });
    const err = await w.fail();
    expect(err.message).toBe("no host switched: 1 of 3 failed to prepare\nh2: prepare failed: the upload failed: ENOENT: no such file or directory, open 'dist/app.js'");
    expect(switchWords(w.fleet)).toEqual([]);
    expect(undone(w.fleet)).toEqual(['h1', 'h2', 'h3']);
    expect(served(w.fleet)).toEqual(['R0', 'R0', 'R0']);
  });

  it.each([
    [4, 'locked by: release=20251231T000000.000Z alice@elsewhere pid=42', 'deploy lock is held: release=20251231T000000.000Z alice@elsewhere pid=42'],
    [3, `releases/${REL} already exists`, `releases/${REL} already exists`],
  ])('a host refused with code %i is not undone (nothing there is ours); the others are', async (code, msg, said) => {
    const w = world({ scripts: { h2: { prepare: { code, msg } } } });
    const err = await w.fail();
    expect(err.message).toBe(`no host switched: 1 of 3 failed to prepare\nh2: prepare failed: ${said}`);
    expect(switchWords(w.fleet)).toEqual([]);
    expect(undone(w.fleet)).toEqual(['h1', 'h3']);
    expect(w.fleet.of('h2')).toEqual(['connect', 'exec release.sh', `exit release.sh ${code}`]);
    expect(phases(reportOf(err))).toEqual(['rolled-back', 'failed', 'rolled-back']);
    expect(reportOf(err)!.hosts[1]!.error).toBe(said);
    expect(logText(w)).toContain('rolling back h1, h3: ');
  });

  it('batchSize 1 over 3 hosts: batch N+1 switches only after batch N answered its status check healthy', async () => {
    const w = world({ batchSize: 1 });
    const r = await w.run();
    expect(r.ok).toBe(true);
    expect(r.switchOrder).toEqual(['h1', 'h2', 'h3']);
    expect(r.hosts.map((h) => h.batch)).toEqual([1, 2, 3]);
    const f = w.fleet;
    expect(f.seqOf('h1', 'ready switch')).toBeLessThan(f.seqOf('h1', 'exec status.sh'));
    expect(f.seqOf('h1', 'exit status.sh 0')).toBeLessThan(f.seqOf('h2', 'word switch'));
    expect(f.seqOf('h2', 'exit status.sh 0')).toBeLessThan(f.seqOf('h3', 'word switch'));
    // no check after the last batch; then every host retires
    expect(f.seqs('h3', 'exec status.sh')).toEqual([]);
    expect(f.seqOf('h3', 'ready switch')).toBeLessThan(Math.min(...f.seqs('*', 'word retire')));
    expect(f.lines('word', 'exec').filter((l) => !l.endsWith('release.sh'))).toEqual([
      'h1 word switch',
      'h1 exec status.sh',
      'h2 word switch',
      'h2 exec status.sh',
      'h3 word switch',
      'h1 word retire',
      'h2 word retire',
      'h3 word retire',
    ]);
    for (const h of HOSTS) expect(f.host(h).stats).toMatchObject({ connections: 1, executions: h === 'h3' ? 1 : 2 });
  });

  it('an unhealthy batch check stops the release: no further batch switches, every touched host is undone', async () => {
    const w = world({ batchSize: 1, scripts: { h2: { health: 502 } } });
    const err = await w.fail();
    expect(err.message).toBe('batch 2 is not healthy after the switch: h2');
    expect(switchWords(w.fleet)).toEqual(['h1 word switch', 'h2 word switch']);
    expect(w.fleet.seqOf('h2', 'exit status.sh 0')).toBeLessThan(Math.min(...w.fleet.seqs('*', 'word undo')));
    expect(undone(w.fleet)).toEqual(['h1', 'h2', 'h3']);
    expect(served(w.fleet)).toEqual(['R0', 'R0', 'R0']);
    const report = reportOf(err)!;
    expect(report.switchOrder).toEqual(['h1', 'h2']);
    expect(phases(report)).toEqual(['rolled-back', 'rolled-back', 'rolled-back']);
    expect(logText(w)).toContain('[h1] rolled back (R0)');
    expect(logText(w)).toContain('[h3] rolled back (not-switched)');
    expect(names(w)).toEqual(['started', 'prepared', 'rolledBack', 'failed']);
  });

  it('a switch failing on one host puts every switched host back', async () => {
    const w = world({ scripts: { h3: { switch: { code: 7, msg: 'the staged socket is gone', delayMs: 15 } } } });
    const err = await w.fail();
    expect(err.message).toBe('switch failed on h3: every host goes back\nh3: switch failed: the staged socket is gone');
    expect(err.host).toBe('h3');
    // h1 and h2 did switch; they get undo on their exec; h3's exec ended with its switch
    for (const h of ['h1', 'h2']) expect(w.fleet.of(h)).toEqual(['connect', 'exec release.sh', 'ready prepare', 'word switch', 'ready switch', 'word undo', 'exit release.sh 0']);
    expect(w.fleet.of('h3')).toEqual(['connect', 'exec release.sh', 'ready prepare', 'word switch', 'exit release.sh 7', 'exec undo.sh', 'exit undo.sh 0']);
    expect(undone(w.fleet)).toEqual(['h1', 'h2', 'h3']);
    expect(served(w.fleet)).toEqual(['R0', 'R0', 'R0']);
    const report = reportOf(err)!;
    expect(phases(report)).toEqual(['rolled-back', 'rolled-back', 'failed']);
    expect(report.hosts[2]!.error).toBe('h3: switch failed: the staged socket is gone');
    expect(w.fleet.lines('word').filter((l) => l.endsWith('retire'))).toEqual([]);
    expect(names(w)).toEqual(['started', 'prepared', 'rolledBack', 'failed']);
  });

  it('hooks run started, prepared, switched, finished, each at its moment, with the release, kind, hosts and session', async () => {
    const w = world();
    await w.run();
    expect(names(w)).toEqual(['started', 'prepared', 'switched', 'finished']);
    for (const { ctx } of w.hooks) {
      expect(ctx.session).toBe(w.session);
      expect(ctx).toMatchObject({ release: REL, kind: 'deploy' });
      expect(ctx.hosts.map((h) => h.name)).toEqual(HOSTS);
      expect(ctx.error).toBeUndefined();
    }
    const f = w.fleet;
    expect(f.seqOf('-', 'hook started')).toBeLessThan(Math.min(...f.seqs('*', 'connect')));
    expect(Math.max(...f.seqs('*', 'ready prepare'))).toBeLessThan(f.seqOf('-', 'hook prepared'));
    expect(f.seqOf('-', 'hook prepared')).toBeLessThan(Math.min(...f.seqs('*', 'word switch')));
    expect(Math.max(...f.seqs('*', 'ready switch'))).toBeLessThan(f.seqOf('-', 'hook switched'));
    expect(f.seqOf('-', 'hook switched')).toBeLessThan(Math.min(...f.seqs('*', 'word retire')));
    expect(Math.max(...f.seqs('*', 'exit release.sh 0'))).toBeLessThan(f.seqOf('-', 'hook finished'));
  });

  it('on failure: rolledBack once every touched host is undone, then failed; both carry the error', async () => {
    const w = world({ scripts: { h1: { prepare: { code: 5, msg: 'the app did not start' } } } });
    const err = await w.fail();
    expect(names(w)).toEqual(['started', 'rolledBack', 'failed']);
    for (const { ctx } of w.hooks.slice(1)) {
      expect(ctx.error).toBe(err);
      expect(ctx).toMatchObject({ release: REL, kind: 'deploy' });
    }
    expect(Math.max(...w.fleet.seqs('*', 'exit release.sh 0'), w.fleet.seqOf('h1', 'exit undo.sh 0'))).toBeLessThan(w.fleet.seqOf('-', 'hook rolledBack'));
  });

  it('the failed and rolledBack hooks get the error masked, without its cause (a hook may post it anywhere)', async () => {
    const w = world({
      scripts: { h2: { prepare: { code: 5, msg: 'the app did not start: token=s3cr3t-value rejected' } } },
      mask: (t) => t.split('s3cr3t-value').join('***'),
    });
    await w.fail();
    expect(names(w)).toEqual(['started', 'rolledBack', 'failed']);
    for (const { ctx } of w.hooks.slice(1)) {
      expect(ctx.error!.message).toContain('token=*** rejected');
      expect(ctx.error!.message).not.toContain('s3cr3t');
      expect(ctx.error!.cause).toBeUndefined();
    }
  });

  it.each(['prepared', 'switched'] as const)('a %s hook that throws rolls every host back; the error is the hook’s', async (name) => {
    const w = world({
      hooks: {
        [name]: () => {
          throw new Error('migration failed');
        },
      },
    });
    const err = await w.fail();
    expect(err.message).toBe('migration failed');
    expect((err.cause as Error).message).toBe('migration failed');
    expect(undone(w.fleet)).toEqual(['h1', 'h2', 'h3']);
    expect(w.fleet.lines('word').filter((l) => l.endsWith('retire'))).toEqual([]);
    expect(served(w.fleet)).toEqual(['R0', 'R0', 'R0']);
    expect(phases(reportOf(err))).toEqual(['rolled-back', 'rolled-back', 'rolled-back']);
    expect(names(w)).toEqual(name === 'prepared' ? ['started', 'prepared', 'rolledBack', 'failed'] : ['started', 'prepared', 'switched', 'rolledBack', 'failed']);
    if (name === 'prepared') expect(switchWords(w.fleet)).toEqual([]);
  });

  it('a finished hook that throws: the release stays live everywhere, the error says so and carries the report', async () => {
    const w = world({
      hooks: {
        finished: () => {
          throw new Error('chat is down');
        },
      },
    });
    const err = await w.fail();
    expect(err.message).toBe(`${REL} is live everywhere, but the finished hook failed: chat is down`);
    expect(served(w.fleet)).toEqual([REL, REL, REL]);
    expect(undone(w.fleet)).toEqual([]);
    const report = reportOf(err)!;
    expect(report).toMatchObject({ ok: false, error: err.message });
    expect(phases(report)).toEqual(['finished', 'finished', 'finished']);
  });

  it('a started hook that throws stops before any connection; nothing to undo', async () => {
    const w = world({
      hooks: {
        started: () => {
          throw new SwitchyardError('not today');
        },
      },
    });
    const err = await w.fail();
    expect(err.message).toBe('not today');
    expect(w.fleet.lines().filter((l) => !l.startsWith('- '))).toEqual([]);
    expect(phases(reportOf(err))).toEqual(['planned', 'planned', 'planned']);
    expect(names(w)).toEqual(['started', 'failed']);
  });

  it('a retire failure: the new release is live everywhere, but the error and the report say retire failed', async () => {
    const w = world({ scripts: { h2: { retire: { code: 8, msg: 'kill refused: pid 4141 is not the old app' } } } });
    const err = await w.fail();
    const msg = `${REL} is live everywhere, but retiring the old release failed on h2:\nh2: retire failed: kill refused: pid 4141 is not the old app`;
    expect(err.message).toBe(msg);
    const report = reportOf(err)!;
    expect(report).toMatchObject({ ok: false, error: msg, switchOrder: ['h1', 'h2', 'h3'] });
    expect(phases(report)).toEqual(['finished', 'switched', 'finished']);
    expect(report.hosts[1]!.error).toBe('retire failed: kill refused: pid 4141 is not the old app');
    expect(undone(w.fleet)).toEqual([]);
    expect(served(w.fleet)).toEqual([REL, REL, REL]);
    expect(names(w)).toEqual(['started', 'prepared', 'switched', 'failed']);
    expect(w.hooks[3]!.ctx.error?.message).toBe(msg);
  });

  it.each([
    ['after-ready', false],
    ['at-word', true],
  ] as const)('a release exec that ended waiting for its word (%s): the steps run as execs of their own', async (endEarly, warned) => {
    const w = world({ scripts: { h1: { prepare: { delayMs: 30 } }, h2: { endEarly } } });
    const r = await w.run();
    expect(r.ok).toBe(true);
    expect(phases(r)).toEqual(['finished', 'finished', 'finished']);
    expect(w.fleet.of('h2', 'exec', 'exit')).toEqual(['exec release.sh', 'exit release.sh 9', 'exec switch.sh', 'exit switch.sh 0', 'exec retire.sh', 'exit retire.sh 0']);
    expect(w.fleet.host('h2').stats.executions).toBe(3);
    expect(w.fleet.host('h2').live).toBe(REL);
    expect(w.reporter.lines.some((l) => /^\[h2\] switch: the host's release exec ended \(no word from the client after prepare .*\); running switch on its own$/.test(l.line))).toBe(warned);
  });

  it('cold-deploy refuses before touching any host when a release is live somewhere', async () => {
    const w = world({ kind: 'cold-deploy', scripts: { h1: { live: 'none' }, h2: { live: 'R0' }, h3: { live: 'none' } } });
    const err = await w.fail();
    expect(err.message).toBe('cold-deploy: a release is already live on h2 (R0); use gulp deploy');
    expect(w.fleet.lines('exec')).toEqual(['h1 exec status.sh', 'h2 exec status.sh', 'h3 exec status.sh']);
    expect(names(w)).toEqual(['started', 'failed']);
    expect(phases(reportOf(err))).toEqual(['planned', 'planned', 'planned']);
  });

  it('cold-deploy onto hosts that serve nothing: nothing to retire', async () => {
    const w = world({ kind: 'cold-deploy', scripts: Object.fromEntries(HOSTS.map((h) => [h, { live: 'none' }])) });
    const r = await w.run();
    expect(r.ok).toBe(true);
    expect(r.hosts.map((h) => h.previous)).toEqual([undefined, undefined, undefined]);
    expect(logText(w)).toContain('[h1] prepared: pid 4242, healthy (200), nothing live yet');
    expect(logText(w)).toContain('[h1] nothing to retire');
  });

  it('a rollback reuses a release per host: no package, the report names every id', async () => {
    const target: Record<string, string> = { h1: 'A', h2: 'B', h3: 'A' };
    const w = world({ kind: 'rollback', release: (h) => target[h.name]! });
    const r = await w.run();
    expect(r).toMatchObject({ ok: true, kind: 'rollback', release: 'A,B' });
    expect(r.hosts.map((h) => h.release)).toEqual(['A', 'B', 'A']);
    expect(served(w.fleet)).toEqual(['A', 'B', 'A']);
    for (const h of HOSTS) expect(w.fleet.host(h).stats.bytesUploaded).toBe(0);
  });

  it('a plain rollback inside the standby window: one exec per host, each host names its standby; hooks and report get the ids', async () => {
    const standby: Record<string, string> = { h1: 'A', h2: 'B', h3: 'A' };
    const w = world({
      kind: 'rollback',
      release: () => STANDBY_RELEASE,
      scripts: Object.fromEntries(HOSTS.map((h) => [h, { standby: standby[h]! }])),
      withoutStandby: () => Promise.reject(new Error('no fallback: every host has its standby')),
    });
    const r = await w.run();
    expect(r).toMatchObject({ ok: true, kind: 'rollback', release: 'A,B' });
    expect(r.hosts.map((h) => [h.release, h.standby, h.phase])).toEqual([['A', true, 'finished'], ['B', true, 'finished'], ['A', true, 'finished']]);
    expect(served(w.fleet)).toEqual(['A', 'B', 'A']);
    for (const h of HOSTS) {
      expect(w.fleet.of(h)).toEqual(['connect', 'exec release.sh', 'ready prepare', 'word switch', 'ready switch', 'word retire', 'exit release.sh 0']);
      expect(w.fleet.host(h).stats.executions).toBe(1);
      expect(w.fleet.host(h).argv[0]!.args).toContain('@standby'); // the host resolves it, not the client
    }
    expect(w.hooks.map((x) => `${x.name} ${x.ctx.release}`)).toEqual(['started @standby', 'prepared A,B', 'switched A,B', 'finished A,B']);
    expect(logText(w)).toContain('[h2] prepared: B was the standby, still running (pid 4343), healthy: nothing started');
    expect(logText(w)).toContain('[h2] switched: B is live (was R0)');
  });

  it('a step run alone after a rollback to @standby names the release the host resolved', async () => {
    const w = world({ kind: 'rollback', release: () => STANDBY_RELEASE, scripts: Object.fromEntries(HOSTS.map((h) => [h, { standby: 'A', endEarly: h === 'h2' ? ('after-ready' as const) : undefined }])) });
    const r = await w.run();
    expect(r.ok).toBe(true);
    expect(w.fleet.of('h2', 'exec')).toEqual(['exec release.sh', 'exec switch.sh', 'exec retire.sh']);
    for (const step of w.fleet.host('h2').argv.slice(1)) expect(step.args.slice(step.args.indexOf('--release'), step.args.indexOf('--release') + 2)).toEqual(['--release', 'A']);
  });

  it('a host without a running standby: the prepared hosts are undone (their standby runs on), then every host takes the relaunch path', async () => {
    const w = world({
      kind: 'rollback',
      release: () => STANDBY_RELEASE,
      scripts: { h1: { standby: 'A' }, h3: { standby: 'A', prepare: { delayMs: 20 } } },
      withoutStandby: async () => {
        w.fleet.note('withoutStandby');
        return () => 'A';
      },
    });
    const r = await w.run();
    expect(r).toMatchObject({ ok: true, release: 'A' });
    expect(r.hosts.map((h) => [h.release, h.standby ?? false, h.phase, h.error])).toEqual([['A', true, 'finished', undefined], ['A', false, 'finished', undefined], ['A', true, 'finished', undefined]]);
    expect(w.fleet.of('h2', 'exec', 'exit')).toEqual(['exec release.sh', 'exit release.sh 12', 'exec release.sh', 'exit release.sh 0']);
    for (const h of ['h1', 'h3']) {
      expect(w.fleet.of(h, 'exec', 'word', 'exit')).toEqual(['exec release.sh', 'word undo', 'exit release.sh 0', 'exec release.sh', 'word switch', 'word retire', 'exit release.sh 0']);
      // the new targets asked for only once the hosts that prepared are put back
      expect(w.fleet.seqs(h, 'exit release.sh 0')[0]).toBeLessThan(w.fleet.seqOf('-', 'withoutStandby'));
    }
    expect(w.fleet.host('h2').argv.map((a) => a.args[a.args.indexOf('--release') + 1])).toEqual(['@standby', 'A']);
    expect(names(w)).toEqual(['started', 'prepared', 'switched', 'finished']); // the fallback is no failure
    expect(served(w.fleet)).toEqual(['A', 'A', 'A']);
    expect(logText(w)).toContain('no standby runs on h2: the rollback starts the release again instead');
  });

  it('no fallback when another failure comes with the missing standby: every host is put back, nothing more', async () => {
    let asked = false;
    const w = world({
      kind: 'rollback',
      release: () => STANDBY_RELEASE,
      scripts: { h1: { standby: 'A' }, h3: { standby: 'A', prepare: { code: 6, msg: 'health check failed' } } },
      withoutStandby: async () => {
        asked = true;
        return () => 'A';
      },
    });
    const e = await w.fail();
    expect(asked).toBe(false);
    expect(e.message).toMatch(/^no host switched: 2 of 3 failed to prepare\n/);
    expect(e.message).toContain('h2: prepare failed: @standby: no standby runs here');
    expect(undone(w.fleet)).toEqual(['h1', 'h3']); // h2 changed nothing
    expect(w.fleet.host('h1').live).toBe('R0');
    expect(names(w)).toEqual(['started', 'rolledBack', 'failed']);
  });

  it('a dry run in batches plans every batch (nothing switched, so no batch check runs)', async () => {
    const w = world({ dryRun: true, batchSize: 1 });
    const r = await w.run();
    expect(r).toMatchObject({ ok: true, dryRun: true });
    expect(w.fleet.lines().filter((l) => !l.startsWith('- '))).toEqual([]);
    expect(w.reporter.lines.filter((l) => l.line.includes('would run: ')).length).toBe(9);
  });

  it('a dry run prints every step it would run and runs nothing', async () => {
    const w = world({ dryRun: true });
    const r = await w.run();
    expect(r.ok).toBe(true);
    expect(w.fleet.lines().filter((l) => !l.startsWith('- '))).toEqual([]);
    const would = w.reporter.lines.filter((l) => l.line.includes('would run: '));
    expect(would).toHaveLength(9);
    for (const h of HOSTS) for (const s of ['prepare.sh', 'switch.sh', 'retire.sh']) expect(would.some((l) => l.line.startsWith(`[${h}] would run: ${s}`))).toBe(true);
    expect(names(w)).toEqual(['started', 'prepared', 'switched', 'finished']);
    // nothing happened, so nothing says it did; the report says it was a dry run
    expect(r.dryRun).toBe(true);
    expect(w.reporter.text()).not.toMatch(/healthy|is live|retired|nothing to retire/);
  });
});

describe('a host that runs no app (no app role: a db primary) in the transaction', () => {
  /** The words of the host's release.sh: prepare's, switch's, retire's, undo's. */
  const releaseWords = (w: World, h: string) => w.fleet.host(h).argv.find((a) => a.script === 'release.sh')!.args;

  it('gets the files only: prepare and switch --files-only, no app command; no batch check on it; said and reported so', async () => {
    const w = world({ roles: { h2: ['db'] }, batchSize: 1 });
    const r = await w.run();
    expect(r.ok).toBe(true);
    expect(phases(r)).toEqual(['finished', 'finished', 'finished']);
    expect(r.hosts.map((h) => h.filesOnly)).toEqual([undefined, true, undefined]);
    const db = releaseWords(w, 'h2');
    expect(db.filter((x) => x === '--files-only')).toHaveLength(2); // prepare's and switch's
    expect(db).not.toContain('--');
    expect(db).not.toContain('server.js');
    expect(releaseWords(w, 'h1')).not.toContain('--files-only');
    expect(releaseWords(w, 'h1')).toContain('server.js');
    // batch 2 (h2) is followed by batch 3, with no status check of h2 between: nothing answers there
    expect(w.fleet.seqs('h2', 'exec status.sh')).toEqual([]);
    expect(w.fleet.seqOf('h2', 'ready switch')).toBeLessThan(w.fleet.seqOf('h3', 'word switch'));
    expect(w.fleet.seqs('h1', 'exec status.sh')).toHaveLength(1);
    expect(served(w.fleet)).toEqual([REL, REL, REL]);
    expect(w.fleet.host('h2').stats).toEqual({ connections: 1, executions: 1, bytesUploaded: uploadBytes });
    expect(logText(w)).toContain('[h2] prepared: files only (no app role): unpacked, nothing started, live now: R0');
    expect(logText(w)).toContain(`[h2] switched: current is ${REL} (files only) (was R0)`);
    expect(logText(w)).toContain(`[h2] done: current is ${REL}, nothing to stop (files only)`);
    expect(logText(w)).toContain('[h1] prepared: pid 4242, healthy (200), live now: R0');
    // the prepared hook sees it: a hook can work in its release
    expect(w.hooks.find((x) => x.name === 'prepared')!.ctx.hosts.map((h) => h.name)).toEqual(HOSTS);
  });

  it('a prepare failing on an app host undoes it too; a switch failing elsewhere puts its current back', async () => {
    const p = world({ roles: { h3: ['db'] }, scripts: { h1: { prepare: { code: 6, msg: 'health check failed' } } } });
    const err = await p.fail();
    expect(p.fleet.of('h3')).toEqual(['connect', 'exec release.sh', 'ready prepare', 'word undo', 'exit release.sh 0']);
    expect(phases(reportOf(err))).toEqual(['failed', 'rolled-back', 'rolled-back']);
    expect(logText(p)).toContain('[h3] rolled back (not-switched)');
    const s = world({ roles: { h1: ['db'] }, scripts: { h3: { switch: { code: 7, msg: 'the staged socket is gone', delayMs: 15 } } } });
    await s.fail();
    expect(s.fleet.of('h1')).toEqual(['connect', 'exec release.sh', 'ready prepare', 'word switch', 'ready switch', 'word undo', 'exit release.sh 0']);
    expect(served(s.fleet)).toEqual(['R0', 'R0', 'R0']);
    expect(logText(s)).toContain('[h1] rolled back (R0)');
  });

  it('a dry run plans its files-only steps', async () => {
    const w = world({ roles: { h3: ['db'] }, dryRun: true });
    await w.run();
    const would = w.reporter.lines.filter((l) => l.line.startsWith('[h3] would run: ')).map((l) => l.line);
    expect(would[0]).toMatch(/^\[h3\] would run: prepare\.sh .* --lock-owner '[^']+' --files-only --delta < the package, less the files the host has \(unpacked into \/srv\/app\/releases\/\S+, nothing started\)/);
    expect(would[1]).toMatch(/^\[h3\] would run: switch\.sh .* --release \S+ --files-only/);
  });
});

describe('aborting the release (Ctrl-C) at each phase', () => {
  /** A world whose signal aborts when `when` first holds for a log entry (or in a hook). */
  function aborting(o: Setup, when?: (what: string, host: string) => boolean): { w: World; ac: AbortController } {
    const ac = new AbortController();
    const w = world({ ...o, signal: ac.signal });
    if (when) w.fleet.on((e) => void (when(e.what, e.host) && ac.abort()));
    return { w, ac };
  }
  const interrupted = 'deploy interrupted: every host is put back';

  it('before connecting: nothing connects, nothing is touched', async () => {
    const ac = new AbortController();
    const w = world({ signal: ac.signal, hooks: { started: () => ac.abort() } });
    const err = await w.fail();
    expect(err.message).toBe(interrupted);
    expect(w.fleet.lines().filter((l) => !l.startsWith('- '))).toEqual([]);
    expect(phases(reportOf(err))).toEqual(['planned', 'planned', 'planned']);
    expect(names(w)).toEqual(['started', 'failed']);
    expect(logText(w)).toContain(interrupted);
  });

  it('while preparing: every host finishes its prepare, then every host is undone; none switched', async () => {
    const { w } = aborting({ scripts: { h3: { prepare: { delayMs: 20 } } } }, (what, host) => host === 'h1' && what === 'exec release.sh');
    const err = await w.fail();
    expect(err.message).toBe(interrupted);
    expect(w.fleet.seqs('*', 'ready prepare')).toHaveLength(3);
    expect(switchWords(w.fleet)).toEqual([]);
    expect(undone(w.fleet)).toEqual(['h1', 'h2', 'h3']);
    expect(phases(reportOf(err))).toEqual(['rolled-back', 'rolled-back', 'rolled-back']);
    expect(names(w)).toEqual(['started', 'prepared', 'rolledBack', 'failed']);
    expect(w.hooks.at(-1)!.ctx.error?.message).toBe(interrupted);
  });

  it('after prepare (in the prepared hook): every host is undone before any switch', async () => {
    const ac = new AbortController();
    const w = world({ signal: ac.signal, hooks: { prepared: () => ac.abort() } });
    const err = await w.fail();
    expect(err.message).toBe(interrupted);
    expect(switchWords(w.fleet)).toEqual([]);
    expect(undone(w.fleet)).toEqual(['h1', 'h2', 'h3']);
    expect(served(w.fleet)).toEqual(['R0', 'R0', 'R0']);
  });

  it('between batches: the batch already switched goes back, with every other touched host', async () => {
    const { w } = aborting({ batchSize: 1 }, (what, host) => host === 'h1' && what === 'ready switch');
    const err = await w.fail();
    expect(err.message).toBe(interrupted);
    // the batch's check still ran; then the abort, before the next batch
    expect(w.fleet.seqOf('h1', 'exit status.sh 0')).toBeLessThan(Math.min(...w.fleet.seqs('*', 'word undo')));
    expect(switchWords(w.fleet)).toEqual(['h1 word switch']);
    expect(undone(w.fleet)).toEqual(['h1', 'h2', 'h3']);
    expect(served(w.fleet)).toEqual(['R0', 'R0', 'R0']);
    expect(logText(w)).toContain('[h1] rolled back (R0)');
    const report = reportOf(err)!;
    expect(report.switchOrder).toEqual(['h1']);
    expect(phases(report)).toEqual(['rolled-back', 'rolled-back', 'rolled-back']);
  });

  it.each([
    ['during the last batch’s switch', { batchSize: 1 }, (what: string, host: string) => host === 'h3' && what === 'word switch'],
    ['after every host switched (in the switched hook)', {}, undefined],
  ] as const)('%s: past the point of no return, the release finishes (retire)', async (_, o, when) => {
    const ac = new AbortController();
    const w = world({ ...o, signal: ac.signal, ...(when ? {} : { hooks: { switched: () => ac.abort() } }) });
    if (when) w.fleet.on((e) => void (when(e.what, e.host) && ac.abort()));
    const r = await w.run();
    expect(ac.signal.aborted).toBe(true);
    expect(r.ok).toBe(true);
    expect(phases(r)).toEqual(['finished', 'finished', 'finished']);
    expect(undone(w.fleet)).toEqual([]);
    expect(w.fleet.seqs('*', 'word retire')).toHaveLength(3);
    expect(served(w.fleet)).toEqual([REL, REL, REL]);
    expect(names(w)).toEqual(['started', 'prepared', 'switched', 'finished']);
  });
});
