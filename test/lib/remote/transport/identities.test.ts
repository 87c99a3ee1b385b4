// The identities a connection offers and their order (OpenSSH's pubkey_prepare), with a real
// ssh-agent started and stopped (by its pid) here, and real keys from ssh-keygen.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatherIdentities, publicOfEncrypted } from '../../../../lib/remote/transport/identities';
import type { SshTarget } from '../../../../lib/remote/transport/ssh-options';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-ids-'));
const sock = path.join(dir, 'agent.sock');
let agent: ChildProcess;
const key = (name: string, passphrase = '') => {
  const f = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', name, '-f', f]);
  return f;
};
const fp = (pub: string) => execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', pub], { encoding: 'utf8' }).split(' ')[1]!;
const blob = (pub: string) => Buffer.from(fs.readFileSync(pub, 'utf8').split(' ')[1]!, 'base64');
const target = (o: Partial<SshTarget>): SshTarget => ({
  name: 'h1', alias: 'h1', hostname: '127.0.0.1', port: 22, user: 'u', identityFiles: [], identitiesOnly: false, knownHostsFiles: [], globalKnownHostsFiles: [], connectTimeoutMs: 1000, keepaliveIntervalMs: 1000, ...o,
});

let plain: string, inAgent: string, agentOnly: string, locked: string, inAgentFp: string;
beforeAll(async () => {
  agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  plain = key('plain');
  inAgent = key('in_agent', 'secret one');
  agentOnly = key('agent_only');
  locked = key('locked', 'secret two');
  for (let i = 0; !fs.existsSync(sock) && i < 500; i++) await new Promise((r) => setTimeout(r, 20));
  const add = (f: string, pass = '') => execFileSync('ssh-add', [f], { env: { ...process.env, SSH_AUTH_SOCK: sock, SSH_ASKPASS: '', DISPLAY: '' }, input: pass, stdio: ['pipe', 'pipe', 'pipe'] });
  // ssh-add cannot be given a passphrase but by a terminal: the agent gets in_agent unencrypted
  const copy = path.join(dir, 'in_agent_clear');
  fs.copyFileSync(inAgent, copy);
  fs.chmodSync(copy, 0o600);
  execFileSync('ssh-keygen', ['-q', '-p', '-P', 'secret one', '-N', '', '-f', copy]);
  add(copy);
  add(agentOnly);
  inAgentFp = fp(`${inAgent}.pub`);
  fs.rmSync(`${inAgent}.pub`); // matched by the public key inside the encrypted file
});
afterAll(async () => {
  if (agent.exitCode === null) {
    const gone = new Promise((r) => agent.once('exit', r));
    process.kill(agent.pid!, 'SIGTERM');
    await gone;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('identities, in the order OpenSSH offers them', () => {
  it("reads the public key of an encrypted OpenSSH key file without its passphrase", () => {
    expect(publicOfEncrypted(fs.readFileSync(locked, 'utf8'))).toEqual(blob(`${locked}.pub`));
  });

  it('agent keys first (one that is a listed file\'s key stands for it, encrypted or not), then the other files; a missing file is noted', async () => {
    const ids = await gatherIdentities(target({ identityFiles: [plain, path.join(dir, 'missing'), inAgent], agent: sock }));
    expect(ids.list.map((i) => i.label)).toEqual([`agent key ${inAgentFp} (${inAgent})`, `agent key ${fp(`${agentOnly}.pub`)}`, plain]);
    expect(ids.unusable).toEqual([`${path.join(dir, 'missing')} (no such file)`]);
  });

  it('IdentitiesOnly: an agent key only when it is a listed file\'s', async () => {
    const ids = await gatherIdentities(target({ identityFiles: [plain, inAgent], agent: sock, identitiesOnly: true }));
    expect(ids.list.map((i) => i.label)).toEqual([`agent key ${inAgentFp} (${inAgent})`, plain]);
  });

  it('an encrypted file the agent does not hold: decrypted with the named variable, else noted (never the passphrase)', async () => {
    process.env.SY_IDS_PASS = 'secret two';
    try {
      expect((await gatherIdentities(target({ identityFiles: [locked], passphraseEnv: 'SY_IDS_PASS' }))).list.map((i) => i.label)).toEqual([locked]);
      process.env.SY_IDS_PASS = 'wrong';
      const bad = await gatherIdentities(target({ identityFiles: [locked], passphraseEnv: 'SY_IDS_PASS' }));
      expect(bad).toEqual({ list: [], unusable: [`${locked} (the passphrase in $SY_IDS_PASS does not decrypt it)`] });
      expect((await gatherIdentities(target({ identityFiles: [locked] }))).unusable).toEqual([`${locked} (encrypted, and no ssh.passphraseEnv is set for it)`]);
    } finally {
      delete process.env.SY_IDS_PASS;
    }
  });

  it('an agent that is not there is noted, and the files are still offered', async () => {
    const ids = await gatherIdentities(target({ identityFiles: [plain], agent: path.join(dir, 'no-agent.sock') }));
    expect(ids.list.map((i) => i.label)).toEqual([plain]);
    expect(ids.unusable).toEqual([`agent ${path.join(dir, 'no-agent.sock')} (Failed to connect to agent)`]);
  });
});
