// The "real package" issue, acceptance 1–4: gulp-switchyard as a user gets it. `npm pack` (which
// builds dist/), the tarball installed with gulp 5 into a project of its own outside this
// repository, then, against a one-host lab (real sshd + nginx):
//   1. the tarball ships what a user needs and nothing else; it installs on its own;
//   2. a CommonJS, an ESM and a TypeScript gulpfile each chain the user's build before deploy:
//      `gulp release --env=lab` releases, a failing build releases nothing, `gulp --tasks` lists;
//      tsc --strict with skipLibCheck off accepts the package's declarations;
//   3. the `switchyard` bin from an npm script deploys; help and --version answer;
//   4. strict flags through both front ends: unknown, misspelled, empty and foreign flags are
//      refused for every task before any connection, and `--dryrun` never deploys.
// The lab host is reached only through a counting TCP forwarder, so "nothing connected" is a
// number that did not change.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG, type TaskName } from '../../tasks/plumbing/catalog';
import { FLAGS, type FlagName } from '../../tasks/plumbing/flags';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnvInput, REPO } from '../support/lab-env';
import { GULPFILE_CJS, GULPFILE_ESM, GULPFILE_TS, GULP_TYPES, TSCONFIG, envFile, packageJson } from './consumer-files';
import { declarationImports, mapLimit, run, show, startCountingForwarder, type CountingForwarder, type RunResult } from './consumer-project';

const PKG = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string> };
const LOCK = JSON.parse(fs.readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
/** The version this repository's lock holds: what `npm ci` put into the npm cache. */
const pinned = (name: string) => LOCK.packages[`node_modules/${name}`]!.version;

let work = '';
let consumer = '';
let tarball = '';
let tarEntries: string[] = [];
let lab: Lab | undefined;
let h: LabHost;
let fwd: CountingForwarder | undefined;

const bin = () => path.join(consumer, 'node_modules', '.bin', 'switchyard');
const gulpBin = () => path.join(consumer, 'node_modules', '.bin', 'gulp');
/** The lab host's live release id: the first word of <deployTo>/.switchyard/live ('' if none). */
const live = () => {
  const f = path.join(h.deployTo, '.switchyard', 'live');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split(' ')[0]!.trim() : '';
};
const inConsumer = (command: string, args: string[], env: Record<string, string> = {}, timeoutMs = 60_000) =>
  run(command, args, { cwd: consumer, env, timeoutMs });
const switchyard = (args: string[], env: Record<string, string> = {}) => inConsumer(process.execPath, [bin(), ...args], env);
const gulp = (gulpfile: string, args: string[], env: Record<string, string> = {}) => inConsumer(gulpBin(), ['--gulpfile', gulpfile, ...args], env);
const STACK_FRAME = /\n\s+at .+:\d+/;

/** The consumer's gulpfiles, each with the tasks `gulp --tasks` must list. */
const GULPFILES: [string, string[]][] = [
  ['gulpfile.js', ['build', 'deploy', 'release']],
  ['gulpfile.mjs', [...Object.keys(CATALOG), 'build', 'release']],
  ['gulpfile.ts', ['build', 'deploy', 'status', 'whoami', 'release']],
];

async function packAndInstall(): Promise<void> {
  const packDir = path.join(work, 'pack');
  fs.mkdirSync(packDir);
  const packed = await run('npm', ['pack', '--pack-destination', packDir], { cwd: REPO, timeoutMs: 120_000 });
  if (packed.code !== 0) throw new Error(show('npm pack', packed));
  const tgz = fs.readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
  if (tgz.length !== 1) throw new Error(`npm pack: expected one tarball in ${packDir}, found ${tgz.join(', ') || 'none'}`);
  tarball = path.join(packDir, tgz[0]!);
  const listed = await run('tar', ['-tzf', tarball], { cwd: work });
  tarEntries = listed.stdout.split('\n').filter((l) => l && !l.endsWith('/'));

  fs.mkdirSync(path.join(consumer, 'app-src'), { recursive: true });
  fs.mkdirSync(path.join(consumer, 'env'));
  fs.mkdirSync(path.join(consumer, 'types'));
  const dev = Object.fromEntries(['gulp', 'esbuild-register', 'typescript', '@types/node'].map((n) => [n, pinned(n)]));
  fs.writeFileSync(path.join(consumer, 'package.json'), packageJson(tarball, dev));
  fs.copyFileSync(path.join(REPO, 'examples', 'hello', 'server.js'), path.join(consumer, 'app-src', 'server.js'));
  fs.writeFileSync(path.join(consumer, 'gulpfile.js'), GULPFILE_CJS);
  fs.writeFileSync(path.join(consumer, 'gulpfile.mjs'), GULPFILE_ESM);
  fs.writeFileSync(path.join(consumer, 'gulpfile.ts'), GULPFILE_TS);
  fs.writeFileSync(path.join(consumer, 'types', 'gulp.d.ts'), GULP_TYPES);
  fs.writeFileSync(path.join(consumer, 'tsconfig.json'), TSCONFIG);
  const installed = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: consumer, timeoutMs: 180_000 });
  if (installed.code !== 0) throw new Error(show('npm install (consumer)', installed));
}

/** The lab host behind a counting forwarder, as the consumer's env/lab.ts. */
async function writeLabEnvironment(): Promise<void> {
  h = lab!.hosts[0]!;
  fwd = await startCountingForwarder(h.sshPort);
  // the forwarder's port must be a known host too: the host's own key under [127.0.0.1]:<port>
  const hostLine = fs.readFileSync(lab!.knownHostsFile, 'utf8').split('\n').find((l) => l.startsWith(`[127.0.0.1]:${h.sshPort} `))!;
  fs.appendFileSync(lab!.knownHostsFile, hostLine.replace(`[127.0.0.1]:${h.sshPort} `, `[127.0.0.1]:${fwd.port} `) + '\n');
  const input = labEnvInput(lab!, { over: { build: { dir: 'dist-app' }, retire: { graceSeconds: 1, drainSeconds: 5 } } });
  input.hosts[0]!.port = fwd.port;
  fs.writeFileSync(path.join(consumer, 'env', 'lab.ts'), envFile(input));
}

beforeAll(async () => {
  work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'sy-pkg-')));
  consumer = path.join(work, 'consumer');
  fs.mkdirSync(consumer);
  const started = Date.now();
  const [labStarted, installed] = await Promise.allSettled([startLab({ hosts: 1 }).then((l) => (lab = l)), packAndInstall()]);
  for (const r of [labStarted, installed]) if (r.status === 'rejected') throw r.reason;
  await writeLabEnvironment();
  console.log(`package: packed and installed into ${consumer} in ${Date.now() - started} ms`);
}, 300_000);

afterAll(async () => {
  try {
    await fwd?.stop();
    await lab?.stop();
  } finally {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  }
});

describe.sequential('gulp-switchyard as a user installs it', () => {
  it('npm pack ships dist/, the sample environments, the Mono example app, docs, README, package.json and LICENSE: no sources, tests or tooling', () => {
    const files = tarEntries.map((f) => f.replace(/^package\//, ''));
    const allowed = [/^dist\//, /^env\/(mono-)?uat\.example\.ts$/, /^examples\/mono-shop\/[^/]+$/, /^docs\/[^/]+\.md$/, /^README\.md$/, /^package\.json$/, /^LICENSE$/];
    expect(files.filter((f) => !allowed.some((a) => a.test(f)))).toEqual([]);
    expect(tarEntries.filter((f) => !f.startsWith('package/'))).toEqual([]);
    // nothing of the source tree or the tooling, not even inside dist/
    const forbidden = /(^|\/)(test|bench|\.ci|scripts|node_modules)\/|^examples\/(?!mono-shop\/)|tsconfig|gulpfile|\.test\.|vitest|(^|\/)\.[^/]+$/;
    expect(files.filter((f) => forbidden.test(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !/^env\/(mono-)?uat\.example\.ts$/.test(f))).toEqual([]);
    for (const f of ['package.json', 'README.md', 'env/uat.example.ts', 'dist/index.js', 'dist/index.d.ts', 'dist/index.mjs', 'dist/bin/switchyard.js']) {
      expect(files).toContain(f);
    }
    if (fs.existsSync(path.join(REPO, 'LICENSE'))) expect(files).toContain('LICENSE');
    for (const doc of fs.readdirSync(path.join(REPO, 'docs')).filter((d) => d.endsWith('.md'))) expect(files).toContain(`docs/${doc}`);
    // the remote scripts the deploy uploads, every one
    for (const s of fs.readdirSync(path.join(REPO, 'remote-scripts')).filter((s) => !s.startsWith('.'))) expect(files).toContain(`dist/remote-scripts/${s}`);
    // every relative link of the shipped README and docs names a file (or folder) the package has
    const broken = files
      .filter((f) => f.endsWith('.md') && !f.startsWith('dist/'))
      .flatMap((doc) =>
        [...fs.readFileSync(path.join(REPO, doc), 'utf8').matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)]
          .map((m) => m[1]!)
          .filter((link) => !/^[a-z]+:/.test(link))
          .map((link) => [doc, path.posix.normalize(path.posix.join(path.posix.dirname(doc), link))] as const)
          .filter(([, target]) => !files.some((f) => f === target || f.startsWith(`${target}/`)))
          .map(([d, target]) => `${d} → ${target}`),
      );
    expect(broken).toEqual([]);
  });

  it('installs from the tarball alone: a copy inside the project, no path back to the repository; its declarations need only node and its own dependencies', () => {
    const installed = path.join(consumer, 'node_modules', 'gulp-switchyard');
    expect(fs.lstatSync(installed).isSymbolicLink()).toBe(false);
    const resolved = fs.realpathSync(createRequire(path.join(consumer, 'package.json')).resolve('gulp-switchyard'));
    expect(resolved).toBe(path.join(installed, 'dist', 'index.js'));
    const intoRepo = fs
      .readdirSync(path.join(consumer, 'node_modules'))
      .map((n) => path.join(consumer, 'node_modules', n))
      .filter((p) => fs.realpathSync(p).startsWith(REPO + path.sep));
    expect(intoRepo).toEqual([]);
    expect(JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')).version).toBe(PKG.version);

    // every module a .d.ts imports must be installed for a user: node's own, or a dependency
    const leaks = [...declarationImports(path.join(installed, 'dist'))]
      .filter(([name]) => !name.startsWith('node:') && name !== 'node' && !(name in PKG.dependencies))
      .map(([name, files]) => `${name} (imported by ${files.join(', ')})`);
    expect(leaks).toEqual([]);
  });

  it('validates an environment with the zod it bundles (lib/vendor/zod.ts): no module of the zod package loads, and its messages are the same', () => {
    const script = `
      const sy = require('gulp-switchyard');
      const env = sy.loadEnvironment({ name: 'lab', root: process.cwd() });
      let bad = '';
      try { sy.loadEnvironment({ name: 'broken', root: process.cwd() }); } catch (e) { bad = e.message; }
      const zod = Object.keys(require.cache).filter((k) => k.includes('/node_modules/zod/'));
      console.log(JSON.stringify({ site: env.site, zod, bad }));`;
    fs.writeFileSync(path.join(consumer, 'env', 'broken.json'), JSON.stringify({ site: 'app.test', build: { dir: 'dist-app' }, app: { start: 5 }, hosts: [{ name: 'a', port: 'x', roles: ['web'] }] }));
    try {
      const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: consumer, encoding: 'utf8' })) as { site: string; zod: string[]; bad: string };
      expect(out.site).toBe(lab!.site);
      expect(out.zod).toEqual([]);
      expect(out.bad).toMatch(/app\.start: expected array, received number/);
      expect(out.bad).toMatch(/hosts\[0\]\.port: expected number, received string/);
    } finally {
      fs.rmSync(path.join(consumer, 'env', 'broken.json'));
    }
  });

  it('switchyard setup, then cold-deploy, from the installed bin make a first release live on the lab host', async () => {
    expect(live()).toBe('');
    // the user's build first (cold-deploy ships dist-app/ as it is)
    const build = await gulp('gulpfile.js', ['build'], { BUILD_ID: 'cold' });
    expect(build.code, show('gulp build', build)).toBe(0);
    const setup = await switchyard(['setup', '--env=lab']);
    expect(setup.code, show('switchyard setup', setup)).toBe(0);
    const cold = await switchyard(['cold-deploy', '--env=lab']);
    expect(cold.code, show('switchyard cold-deploy', cold)).toBe(0);
    expect(live()).not.toBe('');
    expect(fs.readFileSync(path.join(h.deployTo, 'current', 'build.txt'), 'utf8')).toBe('cold');
    expect(await lab!.fetchSite(h)).toEqual({ status: 200, body: `hello from release ${live()}\n` });
    expect(fwd!.connections()).toBeGreaterThan(0); // the lab host is reached through the forwarder only
    // the command's code cache (lib/code-cache.ts) went into the project's node_modules, the user's alone
    const cacheDir = path.join(consumer, 'node_modules', '.cache', 'switchyard');
    const native = typeof (require('node:module') as { enableCompileCache?: unknown }).enableCompileCache === 'function';
    const cache = path.join(cacheDir, native ? 'v8' : `code-${process.version}-${process.arch}.bin`);
    expect(fs.statSync(cacheDir).mode & 0o777).toBe(0o700);
    if (!native) expect(fs.statSync(cache).mode & 0o777).toBe(0o600);
  });

  describe.each(GULPFILES)('%s', (gulpfile, tasks) => {
    it('gulp --tasks lists its tasks, switchyard’s with their description and flags', async () => {
      const r = await gulp(gulpfile, ['--tasks']);
      expect(r.code, show('gulp --tasks', r)).toBe(0);
      for (const t of tasks) expect(r.stdout).toMatch(new RegExp(`─[─┬] ${t}(\\s|$)`, 'm')); // ─┬: a series
      expect(r.stdout).toMatch(/── deploy\s+Package, upload and release atomically on every host/);
      expect(r.stdout).toMatch(/--dry-run\s+…print every remote command per host, run none/);
    });

    it('gulp release --env=lab runs the user’s build, then deploys it: a new release is live and nginx answers it', async () => {
      const before = live();
      const connections = fwd!.connections();
      const buildId = `${gulpfile}-${Date.now()}`;
      const r = await gulp(gulpfile, ['release', '--env=lab'], { BUILD_ID: buildId });
      expect(r.code, show(`gulp release (${gulpfile})`, r)).toBe(0);
      expect(r.output).toMatch(/Finished 'build'[\s\S]*Starting 'deploy'[\s\S]*Finished 'deploy'[\s\S]*Finished 'release'/);
      const after = live();
      expect(after).not.toBe(before);
      expect(fs.readFileSync(path.join(h.deployTo, 'current', 'build.txt'), 'utf8')).toBe(buildId);
      expect(await lab!.fetchSite(h)).toEqual({ status: 200, body: `hello from release ${after}\n` });
      expect(fwd!.connections()).toBeGreaterThan(connections);
    });

    it('with FAIL_BUILD=1 the build fails, gulp exits non-zero and nothing is deployed (no connection, same live release)', async () => {
      const before = live();
      const connections = fwd!.connections();
      const r = await gulp(gulpfile, ['release', '--env=lab'], { FAIL_BUILD: '1' });
      expect(r.code, show(`gulp release FAIL_BUILD=1 (${gulpfile})`, r)).not.toBe(0);
      expect(r.output).toContain('the build failed (FAIL_BUILD=1)');
      expect(r.output).not.toContain("Starting 'deploy'");
      expect(live()).toBe(before);
      expect(fwd!.connections()).toBe(connections);
      expect(await lab!.fetchSite(h)).toEqual({ status: 200, body: `hello from release ${before}\n` });
    });
  });

  it('a remoteTask of the user’s own (gulpfile.ts whoami) runs on the app host with switchyard’s connection', async () => {
    const r = await gulp('gulpfile.ts', ['whoami', '--env=lab']);
    expect(r.code, show('gulp whoami', r)).toBe(0);
    expect(r.stdout).toContain(`live on h1: ${live()}`);
  });

  it('tsc --noEmit (strict, skipLibCheck off) accepts gulpfile.ts and env/lab.ts against the installed declarations, and catches a wrong option', async () => {
    fs.writeFileSync(
      path.join(consumer, 'bad.ts'),
      "import { deployTask } from 'gulp-switchyard';\nexport const d = deployTask({ envv: 'lab' });\n",
    );
    fs.writeFileSync(path.join(consumer, 'tsconfig.bad.json'), JSON.stringify({ extends: './tsconfig.json', files: ['bad.ts'] }));
    const tsc = path.join(consumer, 'node_modules', 'typescript', 'bin', 'tsc');
    const [good, bad] = await Promise.all([
      inConsumer(process.execPath, [tsc, '--noEmit', '-p', 'tsconfig.json', '--listFiles']),
      inConsumer(process.execPath, [tsc, '--noEmit', '-p', 'tsconfig.bad.json']),
    ]);
    expect(good.code, show('tsc --noEmit', good)).toBe(0);
    // the package's own declarations were part of the check (and zod's, which they import)
    expect(good.stdout).toContain(path.join(consumer, 'node_modules', 'gulp-switchyard', 'dist', 'index.d.ts'));
    expect(good.stdout).toContain(path.join(consumer, 'node_modules', 'gulp-switchyard', 'dist', 'lib', 'environment', 'schema.d.ts'));
    expect(good.stdout).toMatch(/node_modules\/zod\/.*\.d\.(c|m)?ts/);
    expect(good.stdout).not.toContain(REPO + path.sep);
    expect(bad.code, show('tsc on bad.ts', bad)).not.toBe(0);
    expect(bad.stdout).toMatch(/bad\.ts\(2,\d+\): error TS\d+: .*'envv'/);
  }, 180_000); // two tsc runs over node_modules' declarations: slow on a loaded machine

  it('npm run ship (switchyard deploy --env=lab in an npm script) deploys: exit 0, a new live release', async () => {
    const before = live();
    const r = await inConsumer('npm', ['run', 'ship']);
    expect(r.code, show('npm run ship', r)).toBe(0);
    const after = live();
    expect(after).not.toBe(before);
    expect(await lab!.fetchSite(h)).toEqual({ status: 200, body: `hello from release ${after}\n` });
  });

  it('npx switchyard help deploy lists every flag of deploy; npx switchyard --version prints the package version', async () => {
    const [help, version] = await Promise.all([inConsumer('npx', ['switchyard', 'help', 'deploy']), inConsumer('npx', ['switchyard', '--version'])]);
    expect(help.code, show('switchyard help deploy', help)).toBe(0);
    const listed = [...help.stdout.matchAll(/^\s+(--[a-z][a-z-]*)/gm)].map((m) => m[1]!);
    expect(listed.sort()).toEqual([...CATALOG.deploy.flags].sort());
    expect(help.stdout).toContain(CATALOG.deploy.description);
    expect(version.code, show('switchyard --version', version)).toBe(0);
    expect(version.stdout).toBe(`${PKG.version}\n`);
  });
});

/* ------------------------------------------------------------------ strict flags */

interface BadFlag {
  task: TaskName;
  kind: 'unknown' | 'misspelled' | 'empty' | 'foreign';
  /** The flags after the task name: --env=lab (when the task takes it) and the bad one. */
  args: string[];
  /** What the refusal must say. */
  message: string;
}

const valueOf = (f: FlagName) => (FLAGS[f].type === 'boolean' ? f : `${f}=2`);

/** For one task: an unknown flag, one of its own with a letter dropped, an empty value, another task's flag. */
function badFlags(task: TaskName): BadFlag[] {
  const own: readonly FlagName[] = CATALOG[task].flags;
  const env = own.includes('--env') ? ['--env=lab'] : [];
  const out: BadFlag[] = [{ task, kind: 'unknown', args: [...env, '--frobnicate'], message: '--frobnicate: unknown flag' }];
  const longest = [...own].sort((a, b) => b.length - a.length)[0]!;
  const cut = 2 + Math.floor((longest.length - 2) / 2);
  const typo = longest.slice(0, cut) + longest.slice(cut + 1);
  expect(Object.keys(FLAGS)).not.toContain(typo);
  out.push({ task, kind: 'misspelled', args: [...env, typo], message: `${typo}: unknown flag; did you mean ${longest}?` });
  const empty = own.includes('--env') ? '--env' : own.find((f) => FLAGS[f].type === 'string' || FLAGS[f].type === 'list')!;
  out.push({ task, kind: 'empty', args: [`${empty}=`], message: `${empty}: needs a` });
  const foreign = (Object.keys(FLAGS) as FlagName[]).find(
    (f) => !own.includes(f) && Object.entries(CATALOG).some(([n, t]) => n !== task && (t.flags as readonly FlagName[]).includes(f)),
  );
  if (foreign) out.push({ task, kind: 'foreign', args: [...env, valueOf(foreign)], message: `${foreign}: not a flag of this task (` });
  return out;
}

function expectRefused(b: BadFlag, r: RunResult, front: string, code?: number): void {
  const what = `${front} ${b.task} ${b.args.join(' ')} (${b.kind})`;
  if (code === undefined) expect(r.code, show(what, r)).not.toBe(0);
  else expect(r.code, show(what, r)).toBe(code);
  expect(r.output, show(what, r)).toContain(`switchyard: ${b.message}`);
  expect(r.output, show(what, r)).not.toMatch(STACK_FRAME);
}

describe.sequential('strict flags: refused before anything is loaded or reached', () => {
  it('switchyard <task>, for every task: an unknown, a misspelled, an empty and a foreign flag each exit 2 naming the flag; nothing connects', async () => {
    const cases = (Object.keys(CATALOG) as TaskName[]).flatMap(badFlags);
    expect(cases.filter((c) => c.kind === 'foreign').length).toBeGreaterThan(0);
    const before = { live: live(), connections: fwd!.connections() };
    const results = await mapLimit(cases, 4, (b) => switchyard([b.task, ...b.args]));
    cases.forEach((b, i) => expectRefused(b, results[i]!, 'switchyard', 2));
    expect({ live: live(), connections: fwd!.connections() }).toEqual(before);
    console.log(`strict flags (bin): ${cases.length} refusals over ${Object.keys(CATALOG).length} tasks, slowest ${Math.max(...results.map((r) => r.ms))} ms`);
  });

  it('gulp deploy and gulp status (a gulpfile with every task): the same refusals, exit non-zero; nothing connects', async () => {
    const cases = (['deploy', 'status'] as TaskName[]).flatMap(badFlags);
    const before = { live: live(), connections: fwd!.connections() };
    const results = await mapLimit(cases, 2, (b) => gulp('gulpfile.mjs', [b.task, ...b.args]));
    cases.forEach((b, i) => expectRefused(b, results[i]!, 'gulp'));
    expect({ live: live(), connections: fwd!.connections() }).toEqual(before);
  });

  it('--dryrun against a live release: switchyard deploy and gulp deploy / gulp release (every gulpfile) refuse it, suggest --dry-run, and deploy nothing', async () => {
    const before = { live: live(), connections: fwd!.connections(), build: fs.readFileSync(path.join(consumer, 'dist-app', 'build.txt'), 'utf8') };
    expect(before.live).not.toBe('');
    const message = 'switchyard: --dryrun: unknown flag; did you mean --dry-run?';
    const env = { BUILD_ID: 'must-not-build' };
    const runs: [string, () => Promise<RunResult>][] = [
      ['switchyard deploy', () => switchyard(['deploy', '--env=lab', '--dryrun'], env)],
      ...GULPFILES.flatMap(([file]) => [
        [`gulp deploy (${file})`, () => gulp(file, ['deploy', '--env=lab', '--dryrun'], env)] as [string, () => Promise<RunResult>],
        [`gulp release (${file})`, () => gulp(file, ['release', '--env=lab', '--dryrun'], env)] as [string, () => Promise<RunResult>],
      ]),
    ];
    const results = await mapLimit(runs, 2, ([, go]) => go());
    runs.forEach(([what], i) => {
      const r = results[i]!;
      expect(r.code, show(what, r)).not.toBe(0);
      if (what.startsWith('switchyard')) expect(r.code, show(what, r)).toBe(2);
      expect(r.output, show(what, r)).toContain(message);
      expect(r.output, show(what, r)).not.toMatch(STACK_FRAME);
    });
    expect({ live: live(), connections: fwd!.connections(), build: fs.readFileSync(path.join(consumer, 'dist-app', 'build.txt'), 'utf8') }).toEqual(before);
    expect(await lab!.fetchSite(h)).toEqual({ status: 200, body: `hello from release ${before.live}\n` });
  });
});
