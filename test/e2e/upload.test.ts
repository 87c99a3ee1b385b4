// The upload follows the change (issue 14): through real sshd hosts, a deploy after a one-file change
// sends a small part of the build, and every host ends up with exactly the build.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { REMOTE_SCRIPTS_DIR } from '../../lib/remote/commands';
import { setup } from '../../lib/servers/setup';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnv, REPO } from '../support/lab-env';
import { filesOf, tree } from '../support/tree';
import type { Environment } from '../../lib/environment';

let lab: Lab;
let env: Environment;
let build: string;

/** The example app and 200 files of 4 KiB that do not compress: 800 KiB that gzip cannot hide. */
function makeBuild(dir: string): void {
  fs.cpSync(path.join(REPO, 'examples', 'hello'), dir, { recursive: true });
  for (let i = 0; i < 200; i++) {
    const f = path.join(dir, 'static', `d${i % 8}`, `f${i}.bin`);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, crypto.randomBytes(4096));
  }
}

beforeAll(async () => {
  lab = await startLab({ hosts: 2 });
  build = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-upload-'));
  makeBuild(build);
  env = labEnv(lab, { over: { build: { dir: build } } });
  await setup({ environment: env, reporter: new MemoryReporter() });
});
afterAll(async () => {
  await lab?.stop();
  fs.rmSync(build, { recursive: true, force: true });
});

const releaseDir = (h: LabHost, r: string) => path.join(h.deployTo, 'releases', r);

describe.sequential('upload: only what changed travels', () => {
  let full = 0;

  it('the first deploy sends the whole build to each host', async () => {
    const r = await deploy({ environment: env, reporter: new MemoryReporter() }, 'cold-deploy');
    expect(r.ok).toBe(true);
    for (const h of r.hosts) expect(h.stats.bytesUploaded).toBeGreaterThan(800 * 1024);
    full = r.hosts[0]!.stats.bytesUploaded;
    for (const h of lab.hosts) expect(tree(releaseDir(h, r.release))).toEqual(tree(build));
  });

  it('after a one-file change (and one added, one removed, one re-moded) each host gets under 3% of it, and has exactly the build; a file tampered with on h2 is sent again', async () => {
    const live = fs.readlinkSync(path.join(lab.hosts[1]!.deployTo, 'current'));
    fs.appendFileSync(path.join(lab.hosts[1]!.deployTo, live, 'static', 'd6', 'f6.bin'), 'tampered');
    fs.writeFileSync(path.join(build, 'static', 'd3', 'f3.bin'), crypto.randomBytes(4096));
    fs.writeFileSync(path.join(build, 'static', 'd3', 'added.bin'), crypto.randomBytes(4096));
    fs.rmSync(path.join(build, 'static', 'd4', 'f4.bin'));
    fs.chmodSync(path.join(build, 'static', 'd5', 'f5.bin'), 0o600);
    const rep = new MemoryReporter();
    const r = await deploy({ environment: env, reporter: rep });
    expect(r.ok).toBe(true);
    for (const h of r.hosts) expect(h.stats.bytesUploaded, h.host).toBeLessThan(full * 0.03);
    const scripts = fs.readdirSync(REMOTE_SCRIPTS_DIR).filter((f) => f.endsWith('.sh')).length;
    for (const [i, h] of lab.hosts.entries()) {
      expect(tree(releaseDir(h, r.release))).toEqual(tree(build));
      // all but the changed, the added and the re-moded file (and on h2 the tampered one), and our scripts
      const linked = filesOf(build).length - 3 - (i === 1 ? 1 : 0) + scripts;
      expect(rep.text()).toContain(`[${h.name}] upload: ${linked} unchanged files linked on the host, `);
    }
    expect(await lab.fetchSite(lab.hosts[0]!)).toMatchObject({ status: 200 });
  });
});
