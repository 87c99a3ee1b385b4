// Helpers for test/package/consumer.test.ts: the package as a user gets it (npm pack, then npm
// install of the tarball into a project of its own outside the repository), a way to run commands
// there without this repository's npm/vitest environment leaking in, and a TCP forwarder in front
// of a lab host's sshd that counts connections (the lab's sshd logs at LogLevel ERROR, so its
// sshd.log records no logins: a forwarder is where "nothing connected" can be proven).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout + stderr, for messages that may go to either. */
  output: string;
  ms: number;
}

/**
 * This process's environment without what npm, npx and vitest put there (npm_config_*,
 * npm_package_*, INIT_CWD, VITEST_*, NODE_ENV=test, NODE_OPTIONS, NODE_PATH): a consumer's npm and
 * gulp must see their own project, not this repository.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|INIT_CWD$|VITEST|NODE_ENV$|NODE_OPTIONS$|NODE_PATH$|SWITCHYARD_|TS_NODE)/i.test(k)) continue;
    out[k] = v;
  }
  return { ...out, npm_config_update_notifier: 'false', NO_COLOR: '1', ...extra };
}

/** Runs a command to its end (or kills it after timeoutMs); never rejects on a non-zero exit. */
export function run(
  command: string,
  args: readonly string[],
  o: { cwd: string; env?: Record<string, string>; timeoutMs?: number } = { cwd: process.cwd() },
): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: o.cwd, env: cleanEnv(o.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let output = '';
    child.stdout.on('data', (d: Buffer) => ((stdout += d), (output += d)));
    child.stderr.on('data', (d: Buffer) => ((stderr += d), (output += d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    child.once('error', (e) => (clearTimeout(timer), reject(e)));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, output, ms: Date.now() - started });
    });
  });
}

/** Describes a result for an assertion message: the command's exit and its output. */
export function show(what: string, r: RunResult): string {
  return `${what}: exit ${r.code ?? r.signal} after ${r.ms} ms\n${r.output.trim()}`;
}

/** Runs fn over items with at most `limit` at once, results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Every file path under dir, relative, sorted. */
export function listFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((p) => fs.statSync(path.join(dir, p)).isFile()).sort();
}

export interface CountingForwarder {
  port: number;
  /** TCP connections accepted so far. */
  connections(): number;
  stop(): Promise<void>;
}

/** A plain TCP forwarder on 127.0.0.1 to targetPort that counts the connections it accepted. */
export async function startCountingForwarder(targetPort: number): Promise<CountingForwarder> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const server = net.createServer({ noDelay: true }, (client) => {
    count++;
    track(client);
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort, noDelay: true });
    track(upstream);
    const kill = () => (client.destroy(), upstream.destroy());
    client.on('error', kill);
    upstream.on('error', kill);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('forwarder: no port');
  return {
    port: address.port,
    connections: () => count,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * The bare module names a package's declaration files import (`from 'x'`, `import('x')`,
 * `/// <reference types="x" />`), each with the files that import it.
 */
export function declarationImports(dir: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of listFiles(dir).filter((f) => f.endsWith('.d.ts'))) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    const specs = [
      ...text.matchAll(/\bfrom\s+['"]([^'"]+)['"]/g),
      ...text.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
      ...text.matchAll(/\bimport\s+['"]([^'"]+)['"]/g),
      ...text.matchAll(/\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
      ...text.matchAll(/\/\/\/\s*<reference\s+types=['"]([^'"]+)['"]/g),
    ].map((m) => m[1]!);
    for (const s of specs) {
      if (s.startsWith('.')) continue;
      const name = s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!;
      found.set(name, [...new Set([...(found.get(name) ?? []), file])]);
    }
  }
  return found;
}
