// setup.sh, status.sh and unlock.sh with the real scripts.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alive, all, find, runFile, runScript, ScriptLab, SCRIPTS_DIR, show, waitFor, which } from '../support/scripts';

let lab: ScriptLab;
beforeEach(() => {
  lab = ScriptLab.create();
});
afterEach(async () => {
  await lab.cleanup();
});

// lib.sh's SY_TOOLS, as the contract says (docs/REMOTE-PROTOCOL.md, setup.sh)
const TOOLS = ['curl', 'ss', 'nohup', 'setsid', 'tar', 'timeout', 'mv', 'ln', 'stat', 'find', 'xargs', 'cp', 'awk', 'sha256sum'];

describe('as files', () => {
  it('a script run as a file sources lib.sh beside it and answers as when sent inline', async () => {
    await lab.setup();
    const inline = await runScript('status', lab.siteArgs());
    const file = await runFile(path.join(SCRIPTS_DIR, 'status.sh'), lab.siteArgs());
    expect(file.code, show(file)).toBe(0);
    expect(file.stdout).toBe(inline.stdout);
    expect(find(file, 'status')?.fields).toMatchObject({ release: 'none', lock: 'free' });
  });
});

describe('setup', () => {
  it('creates the layout, checks every tool, and is idempotent', async () => {
    const args = ['--deploy-to', lab.deployTo, '--socket-dir', lab.socketDir];
    const first = await runScript('setup', args);
    expect(first.code, show(first)).toBe(0);
    // tar and find: GNU's, and their version, from the --version the check runs anyway
    const version = (tool: string) => (tool === 'tar' || tool === 'find' ? { version: expect.stringMatching(/^\d+\.\d+/) } : {});
    expect(all(first, 'check').map((l) => l.fields)).toEqual(TOOLS.map((tool) => ({ tool, ok: 'yes', ...version(tool) })));
    expect(find(first, 'setup')?.fields).toEqual({ deploy_to: lab.deployTo, socket_dir: lab.socketDir });
    for (const d of ['releases', 'shared', '.switchyard']) expect(fs.statSync(path.join(lab.deployTo, d)).isDirectory()).toBe(true);
    expect(fs.statSync(lab.socketDir).isDirectory()).toBe(true);

    // Run again over a host in use: same answer, nothing lost.
    fs.mkdirSync(path.join(lab.deployTo, 'releases', 'r1'));
    fs.writeFileSync(path.join(lab.deployTo, '.switchyard', 'audit.log'), 'earlier line\n');
    const second = await runScript('setup', args);
    expect(second.code, show(second)).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    expect(fs.existsSync(path.join(lab.deployTo, 'releases', 'r1'))).toBe(true);
    expect(fs.readFileSync(path.join(lab.deployTo, '.switchyard', 'audit.log'), 'utf8')).toBe('earlier line\n');
  });

  it('names a missing tool and exits 3 without creating anything', async () => {
    // A PATH holding every needed tool but ss.
    const bin = path.join(lab.root, 'bin');
    fs.mkdirSync(bin);
    for (const t of TOOLS.filter((t) => t !== 'ss')) fs.symlinkSync(which(t), path.join(bin, t));
    const r = await runScript('setup', ['--deploy-to', lab.deployTo, '--socket-dir', lab.socketDir], { path: bin });
    expect(r.code, show(r)).toBe(3);
    expect(find(r, 'check')?.fields).toEqual({ tool: 'curl', ok: 'yes' });
    expect(all(r, 'check').find((l) => l.fields.tool === 'ss')?.fields.ok).toBe('no');
    expect(find(r, 'error')?.fields).toEqual({ code: '3', step: 'check' });
    expect(find(r, 'error')?.msg).toMatch(/missing tools: ss\b/);
    expect(fs.existsSync(lab.deployTo)).toBe(false);
  });

  it('exits 3 for a socket group that does not exist, 2 for a missing option', async () => {
    const g = await runScript('setup', ['--deploy-to', lab.deployTo, '--socket-dir', lab.socketDir, '--socket-group', 'no-such-group-sy']);
    expect(g.code, show(g)).toBe(3);
    expect(find(g, 'error')?.msg).toContain('no-such-group-sy');
    const u = await runScript('setup', ['--deploy-to', lab.deployTo]);
    expect(u.code, show(u)).toBe(2);
    expect(find(u, 'error')?.msg).toContain('--socket-dir');
  });

  it('scripts run on a host that was never set up exit 3', async () => {
    for (const [name, args] of [
      ['switch', lab.siteArgs('r1')],
      ['retire', lab.siteArgs('r1')],
      ['undo', lab.siteArgs('r1')],
      ['status', lab.siteArgs()],
      ['unlock', ['--deploy-to', lab.deployTo]],
    ] as const) {
      const r = await runScript(name, args);
      expect(r.code, `${name}: ${show(r)}`).toBe(3);
      expect(find(r, 'error')?.fields.code).toBe('3');
    }
  });
});

describe('status', () => {
  it('on an empty host: nothing live, no socket, lock free', async () => {
    await lab.setup();
    const r = await runScript('status', lab.siteArgs());
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'status')?.fields).toEqual({
      release: 'none',
      pid: 'none',
      alive: 'no',
      uptime: '0',
      socket: 'no',
      health: 'none',
      healthy: 'no',
      lock: 'free',
      releases: '0',
      previous: 'none',
      mode: 'none',
      instances: '0',
      running: '0',
    });
  });

  it('sees a dead live process and a stale socket', async () => {
    await lab.setup();
    const r1 = await lab.deploy('r1');
    process.kill(r1.pid, 'SIGKILL');
    // SIGKILL is delivered, not done: on a loaded machine the process may take a moment to die
    await waitFor(() => !alive(r1.pid, r1.starttime));
    const r = await runScript('status', lab.siteArgs());
    expect(r.code, show(r)).toBe(0);
    // Node could not unlink the socket on SIGKILL: the file stays, nothing answers.
    expect(find(r, 'status')?.fields).toMatchObject({ release: 'r1', pid: String(r1.pid), alive: 'no', uptime: '0', socket: 'yes', health: '000', healthy: 'no', mode: 'app' });
  });
});

describe('unlock', () => {
  it('free → state=free; held → unlocked with the owner text and an audit line', async () => {
    await lab.setup();
    const free = await runScript('unlock', ['--deploy-to', lab.deployTo]);
    expect(free.code, show(free)).toBe(0);
    expect(find(free, 'unlock')?.fields).toEqual({ state: 'free' });

    fs.mkdirSync(lab.stateFile('lock/owner').replace(/\/owner$/, ''));
    fs.writeFileSync(lab.stateFile('lock/owner'), 'release=r7 since=2026-01-01T00:00:00Z alice@laptop\n');
    const other = await runScript('unlock', ['--deploy-to', lab.deployTo, '--release', 'r8']);
    expect(other.code, show(other)).toBe(4);
    expect(find(other, 'error')?.msg).toContain('alice@laptop');
    expect(lab.lockHeld()).toBe(true);

    const r = await runScript('unlock', ['--deploy-to', lab.deployTo, '--release', 'r7']);
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'unlocked')?.msg).toBe('release=r7 since=2026-01-01T00:00:00Z alice@laptop');
    expect(lab.lockHeld()).toBe(false);
    expect(lab.state('audit.log')).toMatch(/Z unlock user=\S+ release=r7 msg=release=r7 since=2026-01-01T00:00:00Z alice@laptop$/);
  });

  it('a lock without an owner file (a deploy that died at once) can be removed', async () => {
    await lab.setup();
    fs.mkdirSync(path.join(lab.deployTo, '.switchyard', 'lock'));
    const r = await runScript('unlock', ['--deploy-to', lab.deployTo]);
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'unlocked')?.msg).toContain('no owner');
    expect(lab.lockHeld()).toBe(false);
  });
});
