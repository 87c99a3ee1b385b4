/**
 * A slow link for tests: a TCP proxy on 127.0.0.1 that holds every chunk for
 * `oneWayDelayMs` in each direction, in order (a 50 ms round trip = 25 ms each way).
 * Stands in for netem, which this kernel lacks. Latency only: no bandwidth limit, no loss.
 */
import net from 'node:net';

export interface DelayProxy {
  port: number;
  /** Closes the listener and every connection through it; resolves when all are closed. */
  stop(): Promise<void>;
  /** Bytes forwarded so far: up = client → target, down = target → client. */
  bytes: { up: number; down: number };
}

type Item = { due: number; data: Buffer | null /* null = end of stream */ };

/**
 * Forwards `from` to `to`, each chunk (and the end of the stream) delivered `delayMs` after
 * it arrived. One queue and one timer per direction keep the order.
 */
function delayedPipe(from: net.Socket, to: net.Socket, delayMs: number, count: (n: number) => void): void {
  const queue: Item[] = [];
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now + 0.5) {
      const item = queue.shift()!;
      if (to.destroyed || to.writableEnded) return;
      if (item.data === null) to.end();
      else {
        count(item.data.length);
        to.write(item.data);
      }
    }
    schedule();
  };
  const schedule = () => {
    if (timer !== undefined || queue.length === 0) return;
    timer = setTimeout(flush, Math.max(0, queue[0]!.due - performance.now()));
  };

  from.on('data', (data: Buffer) => {
    queue.push({ due: performance.now() + delayMs, data });
    schedule();
  });
  from.on('end', () => {
    queue.push({ due: performance.now() + delayMs, data: null });
    schedule();
  });
}

export async function startDelayProxy(o: { targetPort: number; oneWayDelayMs: number }): Promise<DelayProxy> {
  if (!Number.isInteger(o.targetPort) || o.targetPort < 1 || o.targetPort > 65535) {
    throw new Error(`startDelayProxy: bad targetPort ${o.targetPort}`);
  }
  if (!(o.oneWayDelayMs >= 0) || !Number.isFinite(o.oneWayDelayMs)) {
    throw new Error(`startDelayProxy: bad oneWayDelayMs ${o.oneWayDelayMs}`);
  }
  const bytes = { up: 0, down: 0 };
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    track(client);
    const upstream = net.connect({ host: '127.0.0.1', port: o.targetPort, allowHalfOpen: true, noDelay: true });
    track(upstream);
    // Data from the client is queued while the upstream connection is being made.
    delayedPipe(client, upstream, o.oneWayDelayMs, (n) => (bytes.up += n));
    delayedPipe(upstream, client, o.oneWayDelayMs, (n) => (bytes.down += n));
    const kill = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', kill);
    upstream.on('error', kill);
    // A clean end travels through the queue (see delayedPipe) and, once both directions
    // have ended, each socket closes itself. A side that closes without a clean end (reset,
    // error) takes the other side down at once, like a broken link.
    client.on('close', () => client.readableEnded || kill());
    upstream.on('close', () => upstream.readableEnded || kill());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('startDelayProxy: no TCP address');

  let stopping: Promise<void> | undefined;
  return {
    port: address.port,
    bytes,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return stopping;
    },
  };
}
