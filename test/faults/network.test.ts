// Issue 12 (fault injection): network faults, through the lab's real sshd + nginx hosts.
// Three hosts (web+app each); every case runs under CONCURRENCY requests in flight through the
// three nginx (split evenly, a new connection per request), and asserts for every case:
//   1. production keeps serving: zero failed requests;
//   2. every host ends on one consistent release, the one live before the case: .switchyard/live,
//      the current symlink, and the live socket answering it through nginx;
//   3. nothing is left: only the live release's process per host (/proc: cwd or argv under the
//      host's deployTo), no staged socket SOCK-<site>-<R>, no lock, no releases/<failed R>;
//   4. the deploy fails with a message naming what happened and the host;
//   5. the next deploy succeeds (and leaves 2 and 3 true for its own release).
// The faults: the SSH link to h2 drops during the upload; it drops when h2's switch starts; h2 is
// unreachable from the start; h2's host key changed. A line per case is printed for the lead's table.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateEnvironment, type Environment } from '../../lib/environment';
import type { LoadResult } from '../../lib/load/engine';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { reportOf, type ReleaseEvent } from '../../lib/release/flow';
import { fingerprint } from '../../lib/remote/transport/known-hosts';
import { setup } from '../../lib/servers/setup';
import { unlock } from '../../lib/servers/unlock';
import { startCutProxy, type CutProxy } from '../support/cut-proxy';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnvInput, REPO } from '../support/lab-env';
import { recordedSupervisor } from '../../bench/soak-run';
import { liveProcesses, loadThrough, sleep, warmedUp } from './support';

const CONCURRENCY = 100;
const BLOB_FILES = 6; // × 1 MiB of random bytes: the package does not compress, the upload takes a moment
const CUT_AFTER_BYTES = 2 * 1024 * 1024;
/** How ssh.ts names a dropped link: the socket's error, or a close without one. */
const LOST = String.raw`connection lost: (?:(?:read|write) (?:ECONNRESET|EPIPE)|the connection closed)`;

let lab: Lab;
let h2: LabHost;
let buildDir: string;
let live = '';
const proxies: CutProxy[] = [];

function envWith(ports: Record<string, number> = {}): Environment {
  const base = labEnvInput(lab);
  return validateEnvironment(
    { ...base, build: { dir: buildDir }, hosts: base.hosts.map((h) => (ports[h.name] ? { ...h, port: ports[h.name]! } : h)) },
    { name: 'lab', file: 'env/lab.ts', root: REPO },
  );
}

/** The known_hosts line of a lab host's sshd: `[127.0.0.1]:<port> <type> <key>`. */
function knownHostLine(h: LabHost): string {
  const line = fs
    .readFileSync(lab.knownHostsFile, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`[127.0.0.1]:${h.sshPort} `));
  if (!line) throw new Error(`no known_hosts line for ${h.name}`);
  return line;
}

/** A cuttable link in front of the host's sshd, known to known_hosts with the host's key. */
async function cutProxyFor(h: LabHost): Promise<CutProxy> {
  const p = await startCutProxy({ targetPort: h.sshPort });
  proxies.push(p);
  const key = knownHostLine(h).split(' ').slice(1).join(' ');
  fs.appendFileSync(lab.knownHostsFile, `[127.0.0.1]:${p.port} ${key}\n`);
  return p;
}

/** Processes of a host's deploys: cwd or argv under its deployTo (apps, release.sh), but the site's recorded supervisor; zombies are gone. */
function processesOf(h: LabHost): { pid: number; cmd: string }[] {
  const sv = recordedSupervisor(h.deployTo);
  return liveProcesses().flatMap(({ pid, cwd, cmdline }) => {
    if (pid === sv) return [];
    const cmd = cmdline.split('\0').join(' ').trim();
    return cwd.startsWith(h.deployTo + '/') || cmd.includes(h.deployTo) ? [{ pid, cmd: cmd.slice(0, 120) }] : [];
  });
}

interface HostState {
  host: string;
  live: string;
  current: string;
  served: string;
  processes: string[];
  locked: boolean;
  stagedSockets: string[];
  failedDir: boolean;
}

async function hostState(h: LabHost, failed?: string): Promise<HostState> {
  const liveFile = path.join(h.deployTo, '.switchyard', 'live');
  const [rel, pid] = fs.existsSync(liveFile) ? fs.readFileSync(liveFile, 'utf8').trim().split(/\s+/) : ['none', ''];
  const currentLink = path.join(h.deployTo, 'current');
  const r = await lab.fetchSite(h).catch((e: Error) => ({ status: 0, body: e.message }));
  return {
    host: h.name,
    live: rel!,
    current: fs.existsSync(currentLink) ? path.basename(fs.readlinkSync(currentLink)) : 'none',
    served: r.status === 200 ? r.body.replace(/^hello from release /, '').trim() : `HTTP ${r.status}`,
    // the live release's process is listed by its pid, anything else by its command line
    processes: processesOf(h).map((p) => (String(p.pid) === pid ? `live:${rel}` : `${p.pid} ${p.cmd}`)),
    locked: fs.existsSync(path.join(h.deployTo, '.switchyard', 'lock')),
    stagedSockets: fs.readdirSync(h.socketDir).filter((s) => s.startsWith(`SOCK-${lab.site}-`)),
    failedDir: failed ? fs.existsSync(path.join(h.deployTo, 'releases', failed)) : false,
  };
}

const consistent = (h: LabHost, release: string): HostState => ({
  host: h.name,
  live: release,
  current: release,
  served: release,
  processes: [`live:${release}`],
  locked: false,
  stagedSockets: [],
  failedDir: false,
});

/** Every host on `release`, nothing of `failed` left; processes get a few seconds to go. */
async function expectConsistentOn(release: string, failed?: string): Promise<void> {
  const want = lab.hosts.map((h) => consistent(h, release));
  let got: HostState[] = [];
  for (const deadline = Date.now() + 5_000; Date.now() < deadline; await sleep(100)) {
    got = await Promise.all(lab.hosts.map((h) => hostState(h, failed)));
    if (JSON.stringify(got) === JSON.stringify(want)) break;
  }
  expect(got).toEqual(want);
}

/** A snapshot of every host's files and sockets (names only: logs grow). */
function snapshot(): string {
  return JSON.stringify(
    lab.hosts.map((h) => [
      fs
        .readdirSync(h.deployTo, { recursive: true })
        .map(String)
        .filter((p) => !p.endsWith('.log'))
        .sort(),
      fs.readdirSync(h.socketDir).sort(),
    ]),
  );
}

/**
 * One case under load through every host's nginx: the load starts before it and stops after it
 * (its next deploy included); zero failed requests; a line of figures for the lead's table.
 * body returns the end state in words.
 */
async function underLoad(what: string, body: () => Promise<string>): Promise<void> {
  const run = loadThrough(lab, lab.hosts, { concurrency: CONCURRENCY });
  let end = 'the case failed before its end';
  let failure: unknown;
  try {
    await warmedUp(run, 200);
    end = await body();
    await sleep(300);
  } catch (e) {
    failure = e;
  }
  const load = await run.stop();
  console.log(`[network faults] ${what}: ${load.requests} requests, ${load.failed} failed (${CONCURRENCY} concurrent over ${lab.hosts.length} hosts' nginx); end state: ${end}`);
  if (failure) throw failure;
  expectServed(load);
}

function expectServed(load: LoadResult): void {
  expect(load.requests).toBeGreaterThan(300);
  expect(load.failuresByCode).toEqual({});
  expect(load.failed).toBe(0);
}

/** A failed deploy: its error, the release it tried, and the log. */
async function failingDeploy(env: Environment, onEvent?: (e: ReleaseEvent) => void): Promise<{ err: Error; release: string; log: MemoryReporter }> {
  const log = new MemoryReporter();
  const r = await deploy({ environment: env, reporter: log, ...(onEvent ? { onEvent } : {}) }).then(
    (ok) => ({ ok }),
    (e: Error) => ({ err: e }),
  );
  if (!('err' in r)) throw new Error(`the deploy was meant to fail, but ${r.ok.release} went live`);
  return { err: r.err, release: reportOf(r.err)?.release ?? '?', log };
}

async function nextDeploySucceeds(env: Environment): Promise<string> {
  const r = await deploy({ environment: env, reporter: new MemoryReporter() });
  expect(r.ok).toBe(true);
  expect(r.hosts.map((h) => h.phase)).toEqual(lab.hosts.map(() => 'finished'));
  live = r.release;
  await expectConsistentOn(live);
  return r.release;
}

/** New content for the blobs: files the hosts do not have yet, so the whole of them travels. */
function newBlobs(): void {
  for (let i = 0; i < BLOB_FILES; i++) fs.writeFileSync(path.join(buildDir, 'blob', `r${i}.bin`), crypto.randomBytes(1024 * 1024));
}

beforeAll(async () => {
  lab = await startLab({ hosts: 3 });
  h2 = lab.hosts[1]!;
  buildDir = path.join(lab.dir, 'build');
  fs.mkdirSync(path.join(buildDir, 'blob'), { recursive: true });
  for (const f of ['server.js', 'package.json']) fs.copyFileSync(path.join(REPO, 'examples', 'hello', f), path.join(buildDir, f));
  newBlobs();
  const env = envWith();
  await setup({ environment: env, reporter: new MemoryReporter() });
  live = (await deploy({ environment: env, reporter: new MemoryReporter() }, 'cold-deploy')).release;
  await expectConsistentOn(live);
});

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.stop()));
  await lab?.stop();
});

describe.sequential('network faults under load', () => {
  afterEach(async () => {
    // a failed case must not leave its lock to the next one
    if (lab.hosts.some((h) => fs.existsSync(path.join(h.deployTo, '.switchyard', 'lock')))) {
      await unlock({ environment: envWith(), reporter: new MemoryReporter() }).catch(() => undefined);
    }
  });

  it('the SSH link to h2 drops during the upload: no host switches, nothing is left, the next deploy works', async () => {
    const proxy = await cutProxyFor(h2);
    const env = envWith({ h2: proxy.port });
    const before = live;
    newBlobs(); // else they are linked on the hosts, and hardly anything travels
    await underLoad('link to h2 cut during the upload', async () => {
      let cutAt = 0;
      proxy.cutWhenUp(CUT_AFTER_BYTES, () => (cutAt = proxy.bytes.up));
      const f = await failingDeploy(env);
      expect(proxy.cuts).toBe(1);
      expect(cutAt).toBeGreaterThanOrEqual(CUT_AFTER_BYTES);
      expect(f.err.message, f.log.text()).toMatch(new RegExp(String.raw`^no host switched: 1 of 3 failed to prepare\nhost h2 \(\S+@127\.0\.0\.1:\d+\): ${LOST}$`));
      const report = reportOf(f.err)!;
      expect(report.switchOrder).toEqual([]);
      expect(report.hosts.map((h) => h.phase)).toEqual(['rolled-back', 'failed', 'rolled-back']);
      expect(report.hosts[1]!.stats.bytesUploaded).toBeLessThan(BLOB_FILES * 1024 * 1024); // cut mid-package
      await expectConsistentOn(before, f.release);
      const next = await nextDeploySucceeds(env); // through the same link, healed
      return `every host on ${before}, unlocked, nothing staged; next deploy ${next} OK`;
    });
  });

  it('the SSH link to h2 drops when its switch starts and stays down: h1 and h3 go back; h2 is left locked as documented; unlock, then the next deploy works', async () => {
    const proxy = await cutProxyFor(h2);
    const env = envWith({ h2: proxy.port });
    const before = live;
    // The cut comes before the word `switch` is written: h2 never hears it. The link stays down
    // (every new connection reset) until the deploy has ended, so h2 cannot be undone from here.
    const onEvent = (e: ReleaseEvent) => {
      if (e.host === 'h2' && e.step === 'switch' && e.at === 'start' && !proxy.refuse) {
        proxy.refuse = true;
        proxy.cut();
      }
    };
    await underLoad('link to h2 cut at its switch, down until the deploy ended', async () => {
      const f = await failingDeploy(env, onEvent);
      proxy.refuse = false;
      expect(proxy.cuts).toBe(1);
      expect(f.err.message, f.log.text()).toMatch(
        new RegExp(
          String.raw`^switch failed on h2: every host goes back\nhost h2 \(\S+@127\.0\.0\.1:\d+\): ${LOST}\n` +
            String.raw`NOT put back \(its deploy lock stays held: check with gulp status, then gulp unlock\): h2: undo failed: host h2 \(.*\): cannot connect: \S+$`,
        ),
      );
      const report = reportOf(f.err)!;
      expect([...report.switchOrder].sort()).toEqual(['h1', 'h3']); // they had switched: they went back
      expect(report.hosts.map((h) => h.phase)).toEqual(['rolled-back', 'failed', 'rolled-back']);
      expect(report.hosts[1]!.error).toMatch(/^host h2 \(.*\): connection lost: .*; undo failed: host h2 \(.*\): cannot connect: /);
      expect(f.log.text()).toMatch(/\[h2\] UNDO FAILED: host h2 .*cannot connect/);
      // Documented (REMOTE-PROTOCOL.md, release.sh exit 9; ARCHITECTURE.md "Interrupts"): stdin ending
      // without a word leaves the host as it is, locked: the staged release keeps running on its own
      // socket while the old one serves, for `gulp unlock` or the next deploy to name.
      const [h1, , h3] = lab.hosts;
      expect(await hostState(h1!, f.release)).toEqual(consistent(h1!, before));
      expect(await hostState(h3!, f.release)).toEqual(consistent(h3!, before));
      const stuck = await hostState(h2, f.release);
      expect(stuck).toMatchObject({ live: before, current: before, served: before, locked: true, stagedSockets: [`SOCK-${lab.site}-${f.release}`], failedDir: true });
      expect(stuck.processes.filter((p) => p !== `live:${before}`)).toHaveLength(1); // the staged app
      // the next deploy names the lock and changes nothing (its own prepares are undone)
      const refused = await failingDeploy(env);
      expect(refused.err.message).toMatch(new RegExp(`^no host switched: 1 of 3 failed to prepare\nh2: prepare failed: deploy lock is held: release=${f.release.replace('.', '\\.')} `));
      // the documented recovery: unlock undoes a release that never went live there
      const unlocked = await unlock({ environment: env, reporter: new MemoryReporter() });
      expect(unlocked.map((u) => [u.host, u.undone])).toEqual([['h1', undefined], ['h2', f.release], ['h3', undefined]]);
      await expectConsistentOn(before, f.release);
      await expectConsistentOn(before, refused.release);
      const next = await nextDeploySucceeds(env);
      return `h1+h3 back on ${before}; h2 still serving ${before} but locked, ${f.release} staged and running (documented); next deploy refused naming the lock; after unlock every host on ${before}, clean; next deploy ${next} OK`;
    });
  });

  it('the SSH link to h2 blips when its switch starts (back at once): every host goes back, h2 through a new connection', async () => {
    const proxy = await cutProxyFor(h2);
    const env = envWith({ h2: proxy.port });
    const before = live;
    const onEvent = (e: ReleaseEvent) => {
      if (e.host === 'h2' && e.step === 'switch' && e.at === 'start' && proxy.cuts === 0) proxy.cut();
    };
    await underLoad('link to h2 cut at its switch, back at once', async () => {
      const f = await failingDeploy(env, onEvent);
      expect(proxy.cuts).toBe(1);
      expect(f.err.message, f.log.text()).toMatch(new RegExp(String.raw`^switch failed on h2: every host goes back\nhost h2 \(\S+@127\.0\.0\.1:\d+\): ${LOST}$`));
      const report = reportOf(f.err)!;
      expect([...report.switchOrder].sort()).toEqual(['h1', 'h3']);
      expect(report.hosts.map((h) => [h.host, h.phase, h.stats.connections])).toEqual([
        ['h1', 'rolled-back', 1],
        ['h2', 'failed', 2], // the undo reconnected
        ['h3', 'rolled-back', 1],
      ]);
      expect(f.log.text()).toMatch(/\[h2\] ::sy undone release=\S+ restored=not-switched/);
      await expectConsistentOn(before, f.release);
      const next = await nextDeploySucceeds(env);
      return `every host on ${before} (h2 undone over a new connection), unlocked, nothing staged; next deploy ${next} OK`;
    });
  });

  it('h2 unreachable from the start (nothing listens on its port): nothing changes anywhere, the error names h2', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const before = live;
    await underLoad('h2 unreachable from the start', async () => {
      const snap = snapshot();
      const f = await failingDeploy(envWith({ h2: port }));
      expect(f.err.message).toBe(`host h2 (${lab.user}@127.0.0.1:${port}): cannot connect: ECONNREFUSED`);
      expect(reportOf(f.err)!.hosts.map((h) => h.phase)).toEqual(['planned', 'planned', 'planned']);
      expect(snapshot()).toBe(snap);
      await expectConsistentOn(before, f.release);
      const next = await nextDeploySucceeds(envWith());
      return `nothing changed (every host on ${before}); next deploy ${next} OK`;
    });
  });

  it("h2's host key changed: nothing changes anywhere, the error names h2 and both fingerprints", async () => {
    const original = fs.readFileSync(lab.knownHostsFile, 'utf8');
    const line = knownHostLine(h2);
    const realKey = line.split(' ')[2]!;
    const keyFile = path.join(lab.dir, 'other_host_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'not-h2', '-f', keyFile]);
    const [type, otherKey] = fs.readFileSync(`${keyFile}.pub`, 'utf8').trim().split(' ');
    const lineNo = original.split('\n').indexOf(line) + 1;
    const before = live;
    await underLoad("h2's host key changed", async () => {
      const snap = snapshot();
      fs.writeFileSync(lab.knownHostsFile, original.replace(line, `[127.0.0.1]:${h2.sshPort} ${type} ${otherKey}`));
      let f: Awaited<ReturnType<typeof failingDeploy>>;
      try {
        f = await failingDeploy(envWith());
      } finally {
        fs.writeFileSync(lab.knownHostsFile, original);
      }
      expect(f.err.message).toContain(`host h2 (${lab.user}@127.0.0.1:${h2.sshPort}): HOST KEY CHANGED: the server offered ssh-ed25519 ${fingerprint(realKey)} `);
      expect(f.err.message).toContain(` but ${lab.knownHostsFile}:${lineNo} (${fingerprint(otherKey!)}) says otherwise`);
      expect(reportOf(f.err)!.hosts.map((h) => h.phase)).toEqual(['planned', 'planned', 'planned']);
      expect(snapshot()).toBe(snap);
      await expectConsistentOn(before, f.release);
      const next = await nextDeploySucceeds(envWith());
      return `nothing changed (every host on ${before}); known_hosts restored; next deploy ${next} OK`;
    });
  });
});
