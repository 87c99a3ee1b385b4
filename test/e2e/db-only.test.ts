// Issue 11: a host that runs no app (h2, role db, the db primary) gets each release's files, unpacked
// and not started, so the README's migration hook runs inside the new release there. Through the
// SSH lab: h1 web+app, h2 db. The hook is the README's (its `node` the test's own binary: the lab's
// sshd PATH need not have it); migrate.js writes a marker in its working directory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateEnvironment, type Environment } from '../../lib/environment';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { reportOf, type Hooks } from '../../lib/release/flow';
import { releases } from '../../lib/servers/releases';
import { setup } from '../../lib/servers/setup';
import { status } from '../../lib/servers/status';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnvInput, REPO } from '../support/lab-env';
import { tree } from '../support/tree';

let lab: Lab;
let app: LabHost;
let db: LabHost;
let env: Environment;
let tmp: string;
let build: string;

// the README's migration hook, word for word but for the node binary
const hooks: Hooks = {
  prepared: (ctx) =>
    ctx.session.run({ role: 'db', primary: true }, [process.execPath, 'migrate.js'], {
      cwd: (h) => ctx.session.releaseDir(h, ctx.release),
    }),
};

const MIGRATE = `const fs = require('node:fs');
fs.writeFileSync('migrated', process.cwd() + '\\n');
`;

const releaseDir = (h: LabHost, r: string) => path.join(h.deployTo, 'releases', r);
const current = (h: LabHost) => fs.readlinkSync(path.join(h.deployTo, 'current'));

/** Live processes whose working directory is under the host's directory (what a release started there). */
function processesIn(h: LabHost): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readlinkSync(`/proc/${d}/cwd`).startsWith(h.root + '/')) out.push(Number(d));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** The db host after a release R: its files and shared links, the marker of the migration run in them, nothing running. */
function expectFilesOnly(r: string): void {
  const dir = releaseDir(db, r);
  const { migrated, ...files } = tree(dir);
  expect(files).toEqual({ ...tree(build), flags: `link ${path.join(db.deployTo, 'shared', 'flags')}` }); // shared paths too
  expect(migrated).toMatch(/^file /);
  expect(fs.readFileSync(path.join(dir, 'migrated'), 'utf8')).toBe(`${fs.realpathSync(dir)}\n`);
  expect(current(db)).toBe(`releases/${r}`);
  expect(processesIn(db)).toEqual([]);
  expect(fs.readdirSync(db.socketDir)).toEqual([]);
  expect(fs.existsSync(path.join(dir, '.switchyard', 'pid'))).toBe(false);
  expect(fs.existsSync(path.join(db.deployTo, '.switchyard', 'lock'))).toBe(false);
}

beforeAll(async () => {
  lab = await startLab({ hosts: 2 });
  [app, db] = [lab.hosts[0]!, lab.hosts[1]!];
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-dbonly-'));
  build = path.join(tmp, 'build');
  fs.cpSync(path.join(REPO, 'examples', 'hello'), build, { recursive: true });
  fs.writeFileSync(path.join(build, 'migrate.js'), MIGRATE);
  const input = labEnvInput(lab, { roles: (i) => (i === 0 ? ['web', 'app'] : ['db']), primary: (i) => (i === 1 ? true : undefined) });
  input.build = { dir: build };
  input.shared = ['flags'];
  // the app exits at once when flags/fail is in its shared dir: its prepare fails (5)
  input.app = { ...input.app, start: ['/bin/sh', '-c', '[ -e flags/fail ] && exit 1; exec "$0" server.js --socket "$1"', process.execPath, '{socket}'] };
  env = validateEnvironment(input, { name: 'lab', file: 'env/lab.ts', root: REPO });
  await setup({ environment: env, reporter: new MemoryReporter() });
});
afterAll(async () => {
  await lab?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe.sequential('a db-only primary gets the release files, not started, and the migration hook runs in them', () => {
  let first = '';
  let second = '';

  it('cold deploy: the hook ran in releases/R on the db host, which runs nothing; status says files only', async () => {
    const r = await deploy({ environment: env, reporter: new MemoryReporter(), hooks }, 'cold-deploy');
    expect(r.ok).toBe(true);
    expect(r.hosts.map((h) => [h.host, h.phase, h.filesOnly])).toEqual([
      ['h1', 'finished', undefined],
      ['h2', 'finished', true],
    ]);
    first = r.release;
    expectFilesOnly(first);
    expect(await lab.fetchSite(app)).toEqual({ status: 200, body: `hello from release ${first}\n` });
    const rep = new MemoryReporter();
    const st = await status({ environment: env, reporter: rep });
    expect(st.map((s) => [s.host, s.release, s.filesOnly, s.alive])).toEqual([
      ['h1', first, false, true],
      ['h2', first, true, false],
    ]);
    expect(rep.text()).toContain(`[h2] release ${first}, files only (no process, no socket: nothing runs here), lock free, 1 release(s) kept`);
  });

  it('the next deploy links the unchanged files from the db host\'s current release (--delta); the hook runs in the new one', async () => {
    fs.appendFileSync(path.join(build, 'migrate.js'), '// changed\n');
    const rep = new MemoryReporter();
    const r = await deploy({ environment: env, reporter: rep, hooks });
    expect(r.ok).toBe(true);
    second = r.release;
    expectFilesOnly(second);
    // as on the app host: all but migrate.js and release.json (a new one each release) linked
    const linked = (h: string) => new RegExp(`\\[${h}\\] upload: (\\d+) unchanged files linked on the host, 2 files sent`).exec(rep.text())?.[1];
    expect(Number(linked('h2'))).toBeGreaterThan(10);
    expect(linked('h2')).toBe(linked('h1'));
    expect(rep.text()).toContain(`[h2] switched: current is ${second} (files only) (was ${first})`);
    const listed = await releases({ environment: env, reporter: new MemoryReporter() });
    expect(listed.find((h) => h.host === 'h2')!.releases.map((x) => [x.id, x.state])).toEqual([
      [second, 'current'],
      [first, 'previous'],
    ]);
  });

  it('a prepare failing on the app host removes the db host\'s new release too; its current stays', async () => {
    const flags = path.join(app.deployTo, 'shared', 'flags');
    fs.mkdirSync(flags, { recursive: true });
    fs.writeFileSync(path.join(flags, 'fail'), '');
    const before = fs.readdirSync(path.join(db.deployTo, 'releases')).sort();
    let ran = false;
    const steps: string[] = [];
    const err = (await deploy({
      environment: env,
      reporter: new MemoryReporter(),
      hooks: { prepared: () => void (ran = true) },
      onEvent: (e) => void (e.host === 'h2' && e.at === 'end' && steps.push(`${e.step} ${e.ok}`)),
    }).catch((e: Error) => e)) as Error;
    fs.rmSync(path.join(flags, 'fail'));
    expect(err.message).toMatch(/^no host switched: 1 of 2 failed to prepare\nh1: prepare failed: /);
    expect(ran).toBe(false);
    // h2 had unpacked its release (prepared), then undid it
    expect(steps).toEqual(['prepare true', 'undo true']);
    expect(reportOf(err)!.hosts.map((h) => h.phase)).toEqual(['failed', 'rolled-back']);
    expect(fs.readdirSync(path.join(db.deployTo, 'releases')).sort()).toEqual(before);
    expect(current(db)).toBe(`releases/${second}`);
    expect(fs.existsSync(path.join(db.deployTo, '.switchyard', 'lock'))).toBe(false);
    expect(await lab.fetchSite(app)).toEqual({ status: 200, body: `hello from release ${second}\n` });
  });
});
