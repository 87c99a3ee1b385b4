// The SSH wire encoding (RFC 4251 section 5) that certificates and the key exchange are made of.
import crypto from 'node:crypto';

export class WireError extends Error {}

/** Reads one value after another from a buffer; running past the end is a WireError. */
export class WireReader {
  constructor(
    private readonly buf: Buffer,
    public offset = 0,
  ) {}

  private take(n: number): Buffer {
    if (n < 0 || this.offset + n > this.buf.length) throw new WireError('truncated');
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  byte(): number {
    return this.take(1)[0]!;
  }

  u32(): number {
    return this.take(4).readUInt32BE(0);
  }

  u64(): bigint {
    return this.take(8).readBigUInt64BE(0);
  }

  /** A length-prefixed string, as bytes. */
  bytes(): Buffer {
    return this.take(this.u32());
  }

  string(): string {
    return this.bytes().toString('latin1');
  }

  /** A comma-separated name-list. */
  names(): string[] {
    const s = this.string();
    return s ? s.split(',') : [];
  }

  get done(): boolean {
    return this.offset === this.buf.length;
  }
}

/** Length-prefixed strings, concatenated. */
export function wireStrings(...values: (string | Buffer)[]): Buffer {
  return Buffer.concat(
    values.flatMap((v) => {
      const b = typeof v === 'string' ? Buffer.from(v, 'latin1') : v;
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      return [len, b];
    }),
  );
}

/** Every string packed in a buffer (a certificate's principals). */
export function unpackStrings(buf: Buffer): string[] {
  const r = new WireReader(buf);
  const out: string[] = [];
  while (!r.done) out.push(r.string());
  return out;
}

/** An mpint's magnitude without the sign byte OpenSSH adds when the top bit is set. */
export function unsignedMpint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/** OpenSSH's SHA256 fingerprint of a public key blob. */
export function fingerprintOf(blob: Buffer): string {
  return 'SHA256:' + crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** The key type named inside an SSH public key blob (its first length-prefixed string). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString('latin1');
}
