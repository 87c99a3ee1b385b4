// doctor.sh with the real scripts on this machine: what it reports, read-only, and its usage errors.
// (Through sshd and nginx, with the client's judgement: test/e2e/doctor.test.ts.)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { all, find, runScript, ScriptLab, show } from '../support/scripts';

let lab: ScriptLab;
beforeEach(() => {
  lab = ScriptLab.create();
});
afterEach(async () => {
  await lab.cleanup();
});

/** Every file under the lab's deployTo and socketDir with its mode, size and mtime to the ns. */
function listing(): string {
  return [lab.deployTo, lab.socketDir]
    .flatMap((d) => fs.readdirSync(d, { recursive: true }).map((p) => path.join(d, String(p))))
    .sort()
    .map((p) => {
      const st = fs.lstatSync(p, { bigint: true });
      return `${p} ${st.mode} ${st.size} ${st.mtimeNs}`;
    })
    .join('\n');
}

const group = execFileSync('id', ['-gn']).toString().trim();

describe('doctor.sh', () => {
  it('reports the tools, the layout, the socket, who can reach it and the live socket\'s answer, changing nothing', async () => {
    await lab.setup();
    const R = '20261201T100000.000Z-abc1234';
    await lab.deploy(R, { args: ['--socket-group', group] });
    fs.chmodSync(lab.root, 0o750); // mkdtemp's 0700 would stop the group there (doctor says so: below)
    const before = listing();
    const r = await runScript('doctor', [...lab.siteArgs(), '--socket-group', group, '--shell-up', '1.00']);
    expect(r.code, show(r)).toBe(0);
    expect(listing()).toBe(before);
    expect(all(r, 'check').every((l) => l.fields.ok === 'yes')).toBe(true);
    expect(all(r, 'version').map((l) => l.fields.tool)).toEqual(['curl', 'bash']);
    expect(find(r, 'layout')?.fields).toEqual({ set_up: 'yes', live: R });
    expect(find(r, 'socket')?.fields).toMatchObject({ present: 'yes', mode: '660', group });
    expect(find(r, 'reach')?.fields).toMatchObject({ who: `group:${group}`, uid: '-1', found: 'config', traverse: 'yes', blocked: 'none', connect: 'yes' });
    expect(find(r, 'get')?.fields).toEqual({ via: 'socket', code: '200', rc: '0' });
    expect(find(r, 'route')?.fields).toEqual({ live: R, same: 'none' });
    expect(find(r, 'shell')?.fields.login_ms).toMatch(/^-?\d+$/); // --shell-up as given here: not a login shell's

    // a socket dir its group cannot search: where it is blocked, and its mode (a group member is not root)
    fs.chmodSync(lab.socketDir, 0o700);
    const blocked = await runScript('doctor', [...lab.siteArgs(), '--socket-group', group]);
    fs.chmodSync(lab.socketDir, 0o750);
    expect(find(blocked, 'reach')?.fields).toMatchObject({ traverse: 'no', blocked: lab.socketDir, blocked_mode: '700', connect: 'no' });
    expect(find(blocked, 'shell')?.fields).toMatchObject({ login_ms: 'none', script_ms: 'none' });
  });

  it('a host not set up: said so, and nothing made', async () => {
    const r = await runScript('doctor', lab.siteArgs());
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'layout')?.fields).toEqual({ set_up: 'no', live: 'none' });
    expect(find(r, 'socketdir')?.fields).toEqual({ path: lab.socketDir, present: 'no' });
    expect(find(r, 'route')?.fields).toEqual({ live: 'none', same: 'none' });
    expect(fs.existsSync(lab.deployTo)).toBe(false);
  });

  it('usage errors exit 2', async () => {
    for (const args of [['--frob', 'x'], ['--nginx-url', 'http://x/;id'], ['--shell-up', '$(id)'], ['--deploy-to', '/d', '--socket-dir', '/s']]) {
      const r = await runScript('doctor', args.includes('--deploy-to') ? args : [...lab.siteArgs(), ...args]);
      expect(r.code, show(r)).toBe(2);
      expect(find(r, 'error')?.fields).toMatchObject({ code: '2' });
    }
  });
});
