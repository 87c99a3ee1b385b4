// The switchyard command from the source tree (the packed one is test/package's): one task a run.
import { execa } from 'execa';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(__dirname, '..', '..');
const run = (...args: string[]) => execa(process.execPath, ['-r', 'esbuild-register', path.join(REPO, 'bin', 'switchyard.ts'), ...args], { cwd: REPO, reject: false });

describe('switchyard <task>', () => {
  it('refuses a word that is not a flag (it would deploy the default environment) with exit 2, before anything loads', async () => {
    const r = await run('deploy', 'uat');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe('switchyard: uat: not a flag; switchyard runs one task: switchyard deploy [--flag=value …] (--env=<name> picks the environment)');
    // a flag's value after a space, as gulp takes it: said how switchyard takes it
    const sp = await run('deploy', '--report', 'out.json');
    expect(sp.exitCode).toBe(2);
    expect(sp.stderr).toBe('switchyard: --report out.json: write --report=out.json (switchyard takes --flag=value)');
    const dd = await run('status', '--', '--env=uat');
    expect(dd.exitCode).toBe(2);
    expect(dd.stderr).toBe('switchyard: --: switchyard status takes flags only');
  });

  it('exits 0 when its reader goes away (--help | head)', async () => {
    const r = await execa('bash', ['-c', `${process.execPath} -r esbuild-register bin/switchyard.ts --help | head -1; exit \${PIPESTATUS[0]}`], { cwd: REPO, reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^Usage: switchyard <task> \[flags\]/);
  });
});
