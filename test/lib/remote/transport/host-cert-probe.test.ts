// The certificate probe against real sshds (the lab signs one host's key), cross-checked with
// OpenSSH's `ssh-keyscan -c`, and against peers on loopback that do not speak SSH properly.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certAlgorithmsFor, fetchHostCertificate } from '../../../../lib/remote/transport/host-cert-probe';
import { parseCertificate } from '../../../../lib/remote/transport/host-cert';
import { startLab, type Lab, type LabHost } from '../../../support/lab';

let lab: Lab;
beforeAll(async () => {
  lab = await startLab({ hosts: 2, nginx: false, certificates: [{}, null] });
});
afterAll(async () => {
  await lab?.stop();
});

const dial = (port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
const probe = async (h: LabHost, keyType = 'ssh-ed25519') => fetchHostCertificate(await dial(h.sshPort), certAlgorithmsFor(keyType), 5000);

/** A loopback server that treats each connection with `serve`; closed by the caller. */
async function peer(serve: (s: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    serve(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('the host certificate probe', () => {
  it('brings the certificate sshd serves, the same one ssh-keyscan -c brings', async () => {
    const h1 = lab.hosts[0]!;
    const offer = await probe(h1);
    expect(offer.serverHostKeyAlgorithms).toContain('ssh-ed25519-cert-v01@openssh.com');
    const served = fs.readFileSync(path.join(h1.root, 'ssh_host_ed25519_key-cert.pub'), 'utf8').split(' ')[1]!;
    expect(offer.certificate!.toString('base64')).toBe(served);
    const keyscan = execFileSync('ssh-keyscan', ['-c', '-p', String(h1.sshPort), '127.0.0.1'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    expect(keyscan).toContain(` ${served}`);
    expect(parseCertificate(offer.certificate!).publicKey.toString('base64')).toBe(h1.hostKey.split(' ')[1]);
  });

  it('says what the server has when it has no certificate of the wanted type', async () => {
    expect(await probe(lab.hosts[1]!)).toEqual({ serverHostKeyAlgorithms: expect.arrayContaining(['ssh-ed25519']) });
    expect((await probe(lab.hosts[1]!)).serverHostKeyAlgorithms.some((a) => a.includes('-cert-'))).toBe(false);
    expect(await probe(lab.hosts[0]!, 'ssh-rsa')).toEqual({ serverHostKeyAlgorithms: expect.arrayContaining(['ssh-ed25519-cert-v01@openssh.com']) });
  });

  it('fails clearly on a peer that closes, babbles, sends a bad packet or says nothing', async () => {
    const cases: [string, (s: net.Socket) => void, RegExp, number][] = [
      ['closes', (s) => s.end(), /the server closed the connection/, 5000],
      ['babbles', (s) => s.write(Buffer.alloc(70 * 1024, 0x41)), /no SSH identification string/, 5000],
      ['bad packet', (s) => s.write(Buffer.concat([Buffer.from('SSH-2.0-x\r\n'), Buffer.from([0xff, 0xff, 0xff, 0xff, 0])])), /bad packet length/, 5000],
      ['silent', () => undefined, /no answer in 300 ms/, 300],
    ];
    for (const [what, serve, error, timeoutMs] of cases) {
      const p = await peer(serve);
      try {
        await expect(fetchHostCertificate(await dial(p.port), certAlgorithmsFor('ssh-ed25519'), timeoutMs), what).rejects.toThrow(error);
      } finally {
        await p.close();
      }
    }
  });
});
