// Real keys and certificates made by OpenSSH's ssh-keygen in a temp dir, for unit tests of the
// host key logic (no hand-made blobs: what these tests read is what servers serve).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Key {
  file: string;
  /** "ssh-ed25519 AAAA…" */
  line: string;
  type: string;
  /** base64 of the public key blob, as in known_hosts */
  base64: string;
  blob: Buffer;
}

export class KeyDir {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-keys-'));

  key(name: string, type: 'ed25519' | 'rsa' | 'ecdsa' = 'ed25519', bits?: number): Key {
    const file = path.join(this.dir, name);
    execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', name, '-f', file]);
    return readPublic(file, `${file}.pub`);
  }

  /** `ssh-keygen -s ca.file -I id [args…] key.pub` (args: -h, -n, -V, -O …); the certificate blob. */
  sign(ca: Key, key: Key, args: string[]): Buffer {
    execFileSync('ssh-keygen', ['-q', '-s', ca.file, '-I', `id-${path.basename(key.file)}`, ...args, `${key.file}.pub`]);
    return readPublic(key.file, `${key.file}-cert.pub`).blob;
  }

  /** A known_hosts file in the dir with these lines. */
  file(name: string, lines: string[]): string {
    const p = path.join(this.dir, name);
    fs.writeFileSync(p, lines.map((l) => `${l}\n`).join(''));
    return p;
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function readPublic(file: string, pub: string): Key {
  const [type, base64] = fs.readFileSync(pub, 'utf8').trim().split(/\s+/);
  return { file, line: `${type} ${base64}`, type: type!, base64: base64!, blob: Buffer.from(base64!, 'base64') };
}
