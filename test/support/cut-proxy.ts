/**
 * A link that can break, for the fault tests: a TCP proxy on 127.0.0.1 in front of one port
 * (a lab host's sshd), no delay, that can
 * - cut(): reset every connection through it at once (the client sees the link drop);
 * - cutWhenUp(n): cut as soon as n bytes (in total, over every connection since the call) have
 *   gone up (client → target): checked on every chunk, before it is forwarded;
 * - refuse: while true, every new connection is reset as soon as it is accepted (unreachable);
 *   set it back to false and the link is healed.
 */
import net from 'node:net';

export interface CutProxy {
  port: number;
  /** Bytes forwarded so far: up = client → target, down = target → client. */
  bytes: { up: number; down: number };
  /** Connections accepted so far (refused ones included) and cuts made. */
  connections: number;
  cuts: number;
  /** While true, new connections are reset at once. */
  refuse: boolean;
  cut(): void;
  /** Cut once `n` more bytes have gone up; then calls onCut (synchronously, after the cut). */
  cutWhenUp(n: number, onCut?: () => void): void;
  /** Closes the listener and every connection. */
  stop(): Promise<void>;
}

function reset(s: net.Socket): void {
  if (s.destroyed) return;
  // RST, not FIN: a broken link, not a polite close (resetAndDestroy: Node ≥ 16.17)
  if (typeof s.resetAndDestroy === 'function' && !s.connecting) s.resetAndDestroy();
  else s.destroy();
}

export async function startCutProxy(o: { targetPort: number }): Promise<CutProxy> {
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  };
  let trigger: { at: number; onCut?: () => void } | undefined;

  const proxy: CutProxy = {
    port: 0,
    bytes: { up: 0, down: 0 },
    connections: 0,
    cuts: 0,
    refuse: false,
    cut() {
      proxy.cuts++;
      for (const s of [...sockets]) reset(s);
    },
    cutWhenUp(n, onCut) {
      trigger = { at: proxy.bytes.up + n, ...(onCut ? { onCut } : {}) };
    },
    stop: () => Promise.resolve(),
  };

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    proxy.connections++;
    track(client);
    if (proxy.refuse) {
      reset(client);
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port: o.targetPort, allowHalfOpen: true, noDelay: true });
    track(upstream);
    const kill = () => {
      reset(client);
      reset(upstream);
    };
    client.on('data', (chunk: Buffer) => {
      proxy.bytes.up += chunk.length;
      if (trigger && proxy.bytes.up >= trigger.at) {
        const t = trigger;
        trigger = undefined;
        proxy.cut();
        t.onCut?.();
        return;
      }
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      proxy.bytes.down += chunk.length;
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('error', kill);
    upstream.on('error', kill);
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
  if (address === null || typeof address === 'string') throw new Error('startCutProxy: no TCP address');
  proxy.port = address.port;
  let stopping: Promise<void> | undefined;
  proxy.stop = () => {
    stopping ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
    return stopping;
  };
  return proxy;
}
