// A tiny FastCGI responder on a unix socket, for tests of the FastCGI health check: it records
// the params of every request as the FastCGI spec lays them out (records, name-value pairs) and
// answers each with the CGI text it is given. Only what one request per connection needs
// (cgi-fcgi's way): BEGIN_REQUEST, PARAMS, STDIN in; STDOUT and END_REQUEST out.
import fs from 'node:fs';
import net from 'node:net';

const BEGIN_REQUEST = 1;
const END_REQUEST = 3;
const PARAMS = 4;
const STDIN = 5;
const STDOUT = 6;

export interface FcgiResponder {
  /** The params of each request, in order of arrival. */
  requests: Record<string, string>[];
  /** What the next requests are answered: CGI headers, a blank line, a body; '' closes with no output. */
  answer: string;
  close(): Promise<void>;
}

function record(type: number, id: number, content: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt8(1, 0);
  head.writeUInt8(type, 1);
  head.writeUInt16BE(id, 2);
  head.writeUInt16BE(content.length, 4);
  return Buffer.concat([head, content]);
}

/** FastCGI name-value pairs: each length one byte, or four with the high bit set. */
export function parsePairs(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const len = () => {
    const b = buf.readUInt8(i);
    if (b < 128) return (i += 1), b;
    const n = buf.readUInt32BE(i) & 0x7fffffff;
    i += 4;
    return n;
  };
  while (i < buf.length) {
    const n = len();
    const v = len();
    const name = buf.subarray(i, i + n).toString('utf8');
    out[name] = buf.subarray(i + n, i + n + v).toString('utf8');
    i += n + v;
  }
  return out;
}

function serve(r: FcgiResponder, sock: net.Socket): void {
  let data = Buffer.alloc(0);
  let params = Buffer.alloc(0);
  sock.on('error', () => undefined);
  sock.on('data', (chunk: Buffer) => {
    data = Buffer.concat([data, chunk]);
    while (data.length >= 8) {
      const type = data.readUInt8(1);
      const id = data.readUInt16BE(2);
      const size = data.readUInt16BE(4);
      const total = 8 + size + data.readUInt8(6);
      if (data.length < total) return;
      const content = data.subarray(8, 8 + size);
      data = data.subarray(total);
      if (type === PARAMS) params = Buffer.concat([params, content]);
      if (type === BEGIN_REQUEST) params = Buffer.alloc(0);
      if (type === STDIN && size === 0) {
        r.requests.push(parsePairs(params));
        if (r.answer === '') return void sock.destroy();
        const end = Buffer.alloc(8); // appStatus 0, FCGI_REQUEST_COMPLETE
        sock.end(Buffer.concat([record(STDOUT, id, Buffer.from(r.answer)), record(STDOUT, id, Buffer.alloc(0)), record(END_REQUEST, id, end)]));
      }
    }
  });
}

/** Listens on path (mode 0660) until close(). */
export async function startFcgiResponder(path: string, answer = 'Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok'): Promise<FcgiResponder> {
  const sockets = new Set<net.Socket>();
  const r: FcgiResponder = {
    requests: [],
    answer,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    serve(r, s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  fs.chmodSync(path, 0o660);
  return r;
}
