// Asks an sshd for its host certificate, as `ssh-keyscan -c` does: the start of a key exchange
// that offers only certificate algorithms, read up to the server's KEX_ECDH_REPLY, whose host key
// field is the certificate; then disconnect. Nothing here is trusted: the certificate is checked
// against the CA (host-cert.ts) and must certify the key the real connection proved (see
// docs/HOST-KEYS.md). It runs over any byte stream, so a jump host can carry it like the connection.
import crypto from 'node:crypto';
import type { Duplex } from 'node:stream';
import { WireError, WireReader, wireStrings } from './ssh-wire';

const MSG = { DISCONNECT: 1, IGNORE: 2, DEBUG: 4, KEXINIT: 20, KEX_ECDH_INIT: 30, KEX_ECDH_REPLY: 31 } as const;
/** ECDH key exchanges (the ones OpenSSH has offered since 6.5): message 30 carries Q_C, 31 the host key. */
const KEX: ReadonlyArray<[name: string, curve: string]> = [
  ['curve25519-sha256', 'x25519'],
  ['curve25519-sha256@libssh.org', 'x25519'],
  ['ecdh-sha2-nistp256', 'prime256v1'],
  ['ecdh-sha2-nistp384', 'secp384r1'],
  ['ecdh-sha2-nistp521', 'secp521r1'],
];
const MAX_PACKET = 256 * 1024;
const MAX_BANNER = 64 * 1024;

/** The certificate algorithms that certify a plain key of this type, best first. */
export function certAlgorithmsFor(keyType: string): string[] {
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512-cert-v01@openssh.com', 'rsa-sha2-256-cert-v01@openssh.com', 'ssh-rsa-cert-v01@openssh.com'];
  return [`${keyType}-cert-v01@openssh.com`];
}

export interface CertificateOffer {
  /** The server's host key algorithms (its KEXINIT): which certificates it has at all. */
  serverHostKeyAlgorithms: string[];
  /** The certificate blob, when the server has one of the wanted algorithms. */
  certificate?: Buffer;
}

function packet(payload: Buffer): Buffer {
  let pad = 8 - ((5 + payload.length) % 8);
  if (pad < 4) pad += 8;
  const head = Buffer.alloc(5);
  head.writeUInt32BE(1 + payload.length + pad);
  head[4] = pad;
  return Buffer.concat([head, payload, crypto.randomBytes(pad)]);
}

function ephemeralPublicKey(curve: string): Buffer {
  if (curve === 'x25519') {
    const jwk = crypto.generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
    return Buffer.from(jwk.x!, 'base64url');
  }
  return crypto.createECDH(curve).generateKeys();
}

/** Our KEXINIT: one key exchange, the wanted host key algorithm, and the server's own lists for the rest. */
function kexinit(kex: string, hostKeyAlg: string, server: string[][]): Buffer {
  const lists = [kex, hostKeyAlg, ...server.slice(2, 8).map((l) => l.join(',')), '', ''];
  const tail = Buffer.alloc(5); // first_kex_packet_follows false, reserved 0
  return Buffer.concat([Buffer.from([MSG.KEXINIT]), crypto.randomBytes(16), wireStrings(...lists), tail]);
}

/** Reads the banner lines, then unencrypted binary packets, from a stream. */
class PacketReader {
  private buf = Buffer.alloc(0);
  private bannerSeen = false;
  private waiting?: () => void;
  private failed?: Error;

  constructor(stream: Duplex) {
    stream.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.waiting?.();
    });
    const end = (e?: Error) => {
      this.failed ??= e ?? new Error('the server closed the connection');
      this.waiting?.();
    };
    stream.on('error', end);
    stream.on('close', () => end());
  }

  private async more(): Promise<void> {
    if (this.failed) throw this.failed;
    await new Promise<void>((resolve) => (this.waiting = resolve));
    this.waiting = undefined;
  }

  /** Skips the lines a server may send before its identification string. */
  async banner(): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl >= 0) {
        const line = this.buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
        this.buf = this.buf.subarray(nl + 1);
        if (line.startsWith('SSH-')) {
          this.bannerSeen = true;
          return line;
        }
        continue;
      }
      if (this.buf.length > MAX_BANNER) throw new WireError('no SSH identification string');
      await this.more();
    }
  }

  async packet(): Promise<Buffer> {
    if (!this.bannerSeen) throw new WireError('packet before banner');
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readUInt32BE(0);
        if (len > MAX_PACKET || len < 5) throw new WireError(`bad packet length ${len}`);
        if (this.buf.length >= 4 + len) {
          const pad = this.buf[4]!;
          const payload = this.buf.subarray(5, 4 + len - pad);
          this.buf = this.buf.subarray(4 + len);
          if (payload[0] === MSG.IGNORE || payload[0] === MSG.DEBUG) continue;
          if (payload[0] === MSG.DISCONNECT) {
            const r = new WireReader(payload, 1);
            r.u32();
            throw new Error(`the server disconnected: ${r.string()}`);
          }
          return payload;
        }
      }
      await this.more();
    }
  }
}

async function exchange(stream: Duplex, wanted: string[]): Promise<CertificateOffer> {
  const reader = new PacketReader(stream);
  stream.write('SSH-2.0-switchyard_certprobe\r\n');
  await reader.banner();
  const init = await reader.packet();
  if (init[0] !== MSG.KEXINIT) throw new WireError(`expected KEXINIT, got message ${init[0]}`);
  const r = new WireReader(init, 17);
  const server = Array.from({ length: 10 }, () => r.names());
  const serverHostKeyAlgorithms = server[1]!;
  const alg = wanted.find((a) => serverHostKeyAlgorithms.includes(a));
  if (!alg) return { serverHostKeyAlgorithms };
  const kex = KEX.find(([name]) => server[0]!.includes(name));
  if (!kex) throw new WireError(`no key exchange in common (the server offers ${server[0]!.join(',')})`);
  stream.write(packet(kexinit(kex[0], alg, server)));
  stream.write(packet(Buffer.concat([Buffer.from([MSG.KEX_ECDH_INIT]), wireStrings(ephemeralPublicKey(kex[1]))])));
  const reply = await reader.packet();
  if (reply[0] !== MSG.KEX_ECDH_REPLY) throw new WireError(`expected KEX_ECDH_REPLY, got message ${reply[0]}`);
  return { serverHostKeyAlgorithms, certificate: Buffer.from(new WireReader(reply, 1).bytes()) };
}

/**
 * Fetches the server's certificate for one of `wanted` (certificate algorithms) over `stream`,
 * a fresh connection to its sshd, and closes the stream. Rejects on a protocol error or timeout.
 */
export async function fetchHostCertificate(stream: Duplex, wanted: string[], timeoutMs: number): Promise<CertificateOffer> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([exchange(stream, wanted), timeout]);
  } finally {
    clearTimeout(timer);
    stream.destroy();
  }
}
