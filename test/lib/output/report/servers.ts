/**
 * Real HTTP servers on 127.0.0.1 for the load and report tests (a helper, not a test file).
 * Every server counts what it saw, so the tests compare the client's figures with the server's.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServerStats {
  /** requests received (including those answered by destroying the socket) */
  requests: number;
  /** TCP connections accepted */
  connections: number;
  openConnections: number;
  maxOpenConnections: number;
  /** requests being handled right now (received, response not finished) */
  inFlight: number;
  maxInFlight: number;
  /** responses sent, by status */
  byStatus: Record<number, number>;
  /** sockets destroyed instead of answering */
  destroyed: number;
  hosts: Set<string>;
  connectionHeaders: Set<string>;
  paths: Set<string>;
  methods: Set<string>;
  userAgents: Set<string>;
}

/** What to do with one request: a status (after `delayMs`), 'destroy' the socket, or 'hang'. */
export type Action = { status: number; delayMs?: number } | 'destroy' | 'hang';

export interface TestServer {
  url: string;
  port: number;
  stats: ServerStats;
  close(): Promise<void>;
}

export async function startServer(decide: (req: http.IncomingMessage, n: number) => Action = () => ({ status: 200 })): Promise<TestServer> {
  const stats: ServerStats = {
    requests: 0,
    connections: 0,
    openConnections: 0,
    maxOpenConnections: 0,
    inFlight: 0,
    maxInFlight: 0,
    byStatus: {},
    destroyed: 0,
    hosts: new Set(),
    connectionHeaders: new Set(),
    paths: new Set(),
    methods: new Set(),
    userAgents: new Set(),
  };
  const server = http.createServer((req, res) => {
    const n = ++stats.requests;
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    stats.hosts.add(req.headers.host ?? '');
    stats.connectionHeaders.add(req.headers.connection ?? '');
    stats.paths.add(req.url ?? '');
    stats.methods.add(req.method ?? '');
    stats.userAgents.add(req.headers['user-agent'] ?? '');
    let counted = false;
    const finished = (): void => {
      if (!counted) {
        counted = true;
        stats.inFlight--;
      }
    };
    res.on('close', finished);
    const action = decide(req, n);
    if (action === 'hang') return;
    if (action === 'destroy') {
      stats.destroyed++;
      req.socket.destroy();
      return;
    }
    const send = (): void => {
      stats.byStatus[action.status] = (stats.byStatus[action.status] ?? 0) + 1;
      res.statusCode = action.status;
      if (action.status >= 300 && action.status < 400) res.setHeader('location', '/elsewhere');
      res.end(action.status === 204 || action.status === 304 || req.method === 'HEAD' ? undefined : `status ${action.status}\n`);
    };
    if (action.delayMs) setTimeout(send, action.delayMs);
    else send();
  });
  server.keepAliveTimeout = 60_000; // a leaked client connection stays visible for the whole test
  server.on('connection', (socket) => {
    stats.connections++;
    stats.openConnections++;
    stats.maxOpenConnections = Math.max(stats.maxOpenConnections, stats.openConnections);
    socket.on('close', () => stats.openConnections--);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    stats,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** A port nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll until `cond` holds or `ms` pass; returns whether it held. */
export async function eventually(cond: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}

/** Active handles of the kinds a load run opens (sockets, timers), by kind. */
export function handleCounts(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of process.getActiveResourcesInfo()) if (k === 'TCPSocketWrap' || k === 'Timeout') out[k] = (out[k] ?? 0) + 1;
  return out;
}
