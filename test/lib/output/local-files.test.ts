import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeDirs, unwritableProblem, writeLocalFile } from '../../../lib/output/local-files';
import { guardedRelease } from '../../../lib/release/guard';
import { MemoryReporter } from '../../../lib/output/reporter';
import type { ReleaseReport } from '../../../lib/release/flow';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-local-files-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);

describe('files written on this machine', () => {
  it('are 0644 in 0755 directories under umask 000: nothing others can write', () => {
    const old = process.umask(0);
    try {
      writeLocalFile(path.join(dir, 'a', 'b', 'report.json'), '{}\n');
    } finally {
      process.umask(old);
    }
    expect([mode(path.join(dir, 'a')), mode(path.join(dir, 'a', 'b')), mode(path.join(dir, 'a', 'b', 'report.json'))]).toEqual(['755', '755', '644']);
  });

  it('a directory that cannot be made fails at once, naming it (a recursive mkdir under /proc never returns)', () => {
    // in a child with a time limit: a regression would spin this process forever
    const file = path.join(__dirname, '..', '..', '..', 'lib', 'output', 'local-files');
    const r = spawnSync(process.execPath, ['-r', 'esbuild-register', '-e', `require(${JSON.stringify(file)}).makeDirs('/proc/sy-nope/deeper')`], { encoding: 'utf8', timeout: 10_000 });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/mkdir '\/proc\/sy-nope'/);
    expect(() => makeDirs(path.join(dir, 'x', 'y'))).not.toThrow();
  });

  it('says beforehand why a report could not be written: a directory, a file where a directory goes', () => {
    fs.writeFileSync(path.join(dir, 'plain'), '');
    expect(unwritableProblem(dir)).toBe(`${dir} is a directory`);
    expect(unwritableProblem(path.join(dir, 'plain', 'x', 'r.json'))).toBe(`${path.join(dir, 'plain')} is not a directory`);
    expect(unwritableProblem(path.join(dir, 'new', 'deeper', 'r.json'))).toBeUndefined();
    expect(unwritableProblem(path.join(dir, 'plain'))).toBeUndefined();
    // what open(2) would refuse only at the end: a name over 255 bytes, a link into nowhere
    expect(unwritableProblem(path.join(dir, `${'a'.repeat(300)}.json`))).toBe(`a name in ${path.join(dir, `${'a'.repeat(300)}.json`)} is longer than 255 bytes`);
    fs.symlinkSync('nowhere/x.json', path.join(dir, 'dangling'));
    expect(unwritableProblem(path.join(dir, 'dangling'))).toBe(`${path.join(dir, 'dangling')} is a link to ${path.join(dir, 'nowhere', 'x.json')}, whose directory does not exist`);
    fs.symlinkSync('fresh.json', path.join(dir, 'to-new'));
    expect(unwritableProblem(path.join(dir, 'to-new'))).toBeUndefined();
  });

  it('a report that was asked for and could not be written fails the run, after the release', async () => {
    const report: ReleaseReport = { kind: 'deploy', env: 'uat', site: 'a.example.com', release: 'R', ok: true, seconds: 1, switchOrder: [], hosts: [] };
    fs.writeFileSync(path.join(dir, 'file'), '');
    const reporter = new MemoryReporter();
    const file = path.join(dir, 'file', 'r.json');
    await expect(guardedRelease(reporter, { report: file }, async () => report)).rejects.toThrow(/^--report: cannot write .*file\/r\.json: .* \(the release itself went through\)$/);
    // said once (the error), and never as if it had been written
    expect(reporter.text()).not.toMatch(/cannot write|report: /);
    // and without that failure it is the release's own result
    await expect(guardedRelease(reporter, { report: path.join(dir, 'ok.json') }, async () => report)).resolves.toBe(report);
    expect(reporter.text()).toContain(`report: ${path.join(dir, 'ok.json')}`);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'ok.json'), 'utf8'))).toEqual(report);
  });
});
