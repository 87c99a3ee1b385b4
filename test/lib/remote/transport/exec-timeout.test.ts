// The client's time limit on a command (no `timeout` program on the server): TERM through the SSH
// "signal" request (or to the local bash), then KILL. Real sshd from the lab; real bash locally.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalTransport } from '../../../../lib/remote/transport/local';
import { transportsFor, type Transport } from '../../../../lib/remote/transport';
import { startLab, type Lab } from '../../../support/lab';
import { labEnv } from '../../../support/lab-env';
import { alive, waitFor } from '../../../support/scripts';

let lab: Lab;
let ssh: Transport;
const local = new LocalTransport('local');

beforeAll(async () => {
  lab = await startLab({ hosts: 1 });
  const env = labEnv(lab);
  ssh = transportsFor(env, env.hosts).get(env.hosts[0]!.name)!;
});
afterAll(async () => {
  await ssh?.close();
  await lab?.stop();
});

const pidFile = () => path.join(lab.dir, `pid-${Math.random().toString(36).slice(2)}`);
const bash = (script: string) => `exec bash -c '${script.replace(/'/g, `'\\''`)}'`;

describe.each([
  ['ssh', () => ssh],
  ['local', () => local],
])('%s transport', (_name, transport) => {
  it('TERMs a command that outlives its time limit: its trap runs, the result says 124 and timed out', async () => {
    const file = pidFile();
    const started = Date.now();
    const r = await transport().exec(bash(`trap "echo cleaned up; exit 3" TERM; echo $$ >${file}; echo started; while :; do sleep 0.1; done`), { timeoutSeconds: 1 });
    expect(r).toMatchObject({ code: 124, timedOut: true });
    expect(r.stdout).toBe('started\ncleaned up\n');
    expect(r.stderr).toContain('timed out after 1s');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await waitFor(() => !alive(Number(fs.readFileSync(file, 'utf8'))), 3000)).toBe(true);
  });

  it('KILLs one that ignores TERM, killAfterMs later', async () => {
    const file = pidFile();
    const started = Date.now();
    const r = await transport().exec(bash(`trap "" TERM; echo $$ >${file}; exec sleep 30`), { timeoutSeconds: 0.5, killAfterMs: 500 });
    expect(r).toMatchObject({ code: 124, timedOut: true });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await waitFor(() => !alive(Number(fs.readFileSync(file, 'utf8'))), 3000)).toBe(true);
  });

  it('leaves a command that ends in time alone, and its output is only its own', async () => {
    const lines: string[] = [];
    const r = await transport().exec(bash('echo quick; echo warn >&2; exit 7'), { timeoutSeconds: 5, onLine: (l, s) => lines.push(`${s}: ${l}`) });
    expect(r).toEqual({ code: 7, stdout: 'quick\n', stderr: 'warn\n' });
    expect(lines.sort()).toEqual(['stderr: warn', 'stdout: quick']);
  });
});
