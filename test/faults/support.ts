// What the fault suites (server.test.ts, server-client.test.ts, network.test.ts) share: the /proc
// scan for a deploy's processes, one host's end state and the check that every host ended clean
// on one release (server and server-client), the load through every host's nginx, the line a case
// prints for the table, a deploy that must succeed, and the flag files the apps' start commands read.
// What a suite checks beyond that (network.test.ts's own end state, its known_hosts and cut links,
// the child deploy of server-client.test.ts) stays in its file.
import { recordedSupervisor } from '../../bench/soak-run';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { Environment } from '../../lib/environment';
import { startLoad, type LoadOptions, type LoadResult, type LoadRun } from '../../lib/load/engine';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import type { Lab, LabHost } from '../support/lab';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/* ------------------------------------------------------------------ processes */

/** The state (field 3) of /proc/PID/stat, parsed after the last `)`, says a zombie or a dead one. */
const gone = (stat: string) => /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));

/** The process runs (not a zombie). */
export function alive(pid: number): boolean {
  try {
    return !gone(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Every live process (not a zombie) but this one: its cwd as /proc links it, its cmdline as /proc gives it (NUL-separated). */
export function liveProcesses(): { pid: number; cwd: string; cmdline: string }[] {
  const out: { pid: number; cwd: string; cmdline: string }[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (gone(fs.readFileSync(`/proc/${e}/stat`, 'utf8'))) continue;
      const cwd = fs.readlinkSync(`/proc/${e}/cwd`);
      const cmdline = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8');
      out.push({ pid: Number(e), cwd, cmdline });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** Live processes (not zombies) whose cwd is under dir, or whose command line names it. */
export function processesOf(dir: string): number[] {
  return liveProcesses()
    .filter((p) => {
      const cwd = p.cwd.replace(/ \(deleted\)$/, '');
      return cwd === dir || cwd.startsWith(dir + '/') || p.cmdline.includes(dir);
    })
    .map((p) => p.pid);
}

/* ------------------------------------------------------------------ end state */

export interface HostState<Stray = number> {
  live: string;
  current: string;
  served: string;
  /** processes of the deploy dir other than the live release's */
  stray: Stray[];
  /** SOCK-* other than the live socket and its .prev link */
  sockets: string[];
  locked: boolean;
  /** release dirs of releases that never went live */
  staged: string[];
}

/** `.switchyard/live` as its words: release, pid. */
const liveFile = (h: LabHost) => fs.readFileSync(path.join(h.deployTo, '.switchyard', 'live'), 'utf8').trim().split(/\s+/);

/**
 * One host's end state; `everLive`: every release that went live, the only ones that may have a
 * directory under releases/. o.live reads `.switchyard/live` another way (default: it must exist).
 */
export async function hostState(lab: Lab, h: LabHost, everLive: ReadonlySet<string>, o: { live?: (h: LabHost) => string[] } = {}): Promise<HostState> {
  const [release, pid] = (o.live ?? liveFile)(h);
  const r = await lab.fetchSite(h);
  return {
    live: release!,
    current: path.basename(fs.readlinkSync(path.join(h.deployTo, 'current'))),
    served: r.status === 200 ? r.body.replace(/^hello from release /, '').trim() : `HTTP ${r.status}`,
    // the site's supervisor (recorded in .switchyard/supervisor) belongs there; anything else is stray
    stray: processesOf(h.deployTo).filter((p) => p !== Number(pid) && p !== recordedSupervisor(h.deployTo)),
    sockets: fs.readdirSync(h.socketDir).filter((s) => s !== `SOCK-${lab.site}` && s !== `SOCK-${lab.site}.prev`),
    locked: fs.existsSync(path.join(h.deployTo, '.switchyard', 'lock')),
    staged: fs.readdirSync(path.join(h.deployTo, 'releases')).filter((d) => !everLive.has(d)),
  };
}

/** Every host on `release` and nothing else left; processes get a moment to go (a retired app's drain). */
export async function expectClean<Stray>(hosts: readonly LabHost[], state: (h: LabHost) => Promise<HostState<Stray>>, release: string): Promise<void> {
  const want = (): HostState<Stray> => ({ live: release, current: release, served: release, stray: [], sockets: [], locked: false, staged: [] });
  let states: HostState<Stray>[] = [];
  for (let i = 0; i < 40; i++) {
    states = await Promise.all(hosts.map((h) => state(h)));
    if (states.every((s) => JSON.stringify(s) === JSON.stringify(want()))) break;
    await sleep(100);
  }
  expect(states).toEqual(hosts.map(want));
}

/* ------------------------------------------------------------------ load, figures, deploys, flags */

/** Load through every host's nginx, a new connection per request (keep-alive off). */
export function loadThrough(lab: Lab, hosts: readonly LabHost[], o: Omit<LoadOptions, 'targets' | 'keepalive'>): LoadRun {
  return startLoad({
    targets: hosts.map((h) => ({ url: lab.url(h), host: lab.site, label: h.name })),
    keepalive: false,
    ...o,
  });
}

/** Until the load has sent `requests` requests. */
export async function warmedUp(load: LoadRun, requests: number): Promise<void> {
  while (load.progress().requests < requests) await sleep(20);
}

/** The line a case prints for the table (server.test.ts, server-client.test.ts). */
export function figures(what: string, r: LoadResult, end: string, hosts: readonly LabHost[]): void {
  console.log(`CASE ${what} | requests ${r.requests} | failed ${r.failed}${r.failed ? ` ${JSON.stringify(r.failuresByCode)}` : ''} | end: ${hosts.map((h) => `${h.name}=${end}`).join(' ')}`);
}

/** A deploy that must succeed; its release joins everLive. */
export async function deployed(env: Environment, everLive: Set<string>, rep = new MemoryReporter()): Promise<string> {
  const r = await deploy({ environment: env, reporter: rep });
  expect(r.ok).toBe(true);
  everLive.add(r.release);
  return r.release;
}

/** Sets or clears the flag file flags/<name> in a host's shared dir (the apps' start commands read it). */
export function flag(h: LabHost, name: string, on: boolean): void {
  const dir = path.join(h.deployTo, 'shared', 'flags');
  fs.mkdirSync(dir, { recursive: true });
  if (on) fs.writeFileSync(path.join(dir, name), '');
  else fs.rmSync(path.join(dir, name), { force: true });
}
