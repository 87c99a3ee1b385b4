// Everything is importable: a user's gulpfile chains its build with switchyard's tasks.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import gulp, { series } from 'gulp';
import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { createTasks, deployTask, MemoryReporter, remoteTask } from '../../index';
import { validateEnvironment } from '../../lib/environment';
import { REPO } from '../support/lab-env';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-chain-'));
afterAll(async () => {
  // stop what the deploys started (the live release), then clean up
  for (const f of ['live', 'previous']) {
    const p = path.join(dir, 'app', '.switchyard', f);
    if (fs.existsSync(p)) {
      const pid = Number(fs.readFileSync(p, 'utf8').split(' ')[1]);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

// gulp-cli listens for task errors; without a listener undertaker's 'error' event would throw.
gulp.on('error', () => undefined);

function run(task: (done: (err?: unknown) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => task((err?: unknown) => (err ? reject(err) : resolve())));
}

describe('tasks in a user gulpfile', () => {
  const build = path.join(dir, 'build');
  const environment = validateEnvironment(
    {
      site: 'chain.test',
      transport: 'local',
      build: { dir: build },
      app: { start: [process.execPath, 'server.js', '--socket', '{socket}'], health: { timeoutSeconds: 10 } },
      hosts: [{ name: 'local', roles: ['web', 'app', 'db'] }],
      deployTo: path.join(dir, 'app'),
      socketDir: path.join(dir, 's'),
      retire: { graceSeconds: 1, drainSeconds: 5 },
    },
    { name: 'chain', file: 'env/chain.ts', root: REPO },
  );
  const reporter = new MemoryReporter();
  const o = { environment, reporter };

  it('series(build, setup, deployTask) runs the build first, then releases what it built; a remoteTask runs on the role', async () => {
    const order: string[] = [];
    const userBuild = async () => {
      order.push('build');
      fs.cpSync(path.join(REPO, 'examples', 'hello'), build, { recursive: true });
    };
    const tasks = createTasks(o);
    const whoami = remoteTask('whoami', 'print the release on the db host', o, async (s) => {
      const [r] = await s.run({ role: 'db', primary: true }, ['cat', path.join(dir, 'app', 'current', '.switchyard', 'release.json')]);
      order.push(`remote:${(JSON.parse(r!.stdout) as { release: string }).release}`);
    });
    await run(series(userBuild, tasks.setup, tasks['cold-deploy'], deployTask(o), whoami));
    const live = fs.readlinkSync(path.join(dir, 'app', 'current'));
    expect(order).toEqual(['build', `remote:${live.replace('releases/', '')}`]);
    const { stdout } = await execa('curl', ['-s', '--unix-socket', path.join(dir, 's', 'SOCK-chain.test'), '-H', 'Host: chain.test', 'http://x/']);
    expect(stdout).toBe(`hello from release ${live.replace('releases/', '')}`);
  });

  it('a failing task fails the series (and gulp exits non-zero)', async () => {
    const broken = { ...o, environment: { ...environment, build: { dir: path.join(dir, 'missing') } } };
    let after = false;
    await expect(run(series(deployTask(broken), async () => void (after = true)))).rejects.toThrow(/build\.dir: .*missing is not a directory/);
    expect(after).toBe(false);
  });

  it('gulp itself: --tasks lists every task with its description; a failing task exits non-zero with a clear message', async () => {
    const gulp = path.join(REPO, 'node_modules', '.bin', 'gulp');
    const tasks = await execa(gulp, ['--tasks-simple'], { cwd: REPO });
    expect(tasks.stdout.split('\n').sort()).toEqual(
      ['cold-deploy', 'config', 'config-check', 'demo', 'deploy', 'doctor', 'loadtest', 'nginx-config', 'releases', 'restart', 'rollback', 'setup', 'status', 'supervise', 'unlock', 'verify'].sort(),
    );
    const help = await execa(gulp, ['--tasks'], { cwd: REPO });
    expect(help.stdout).toMatch(/deploy\s+Package, upload and release atomically on every host/);
    const bad = await execa(gulp, ['deploy', '--env=nope'], { cwd: REPO, reject: false });
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/environment "nope": no file .*env\/nope\.\{ts,/);
    expect(bad.stdout + bad.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });
});
