// ssh_config ProxyCommand: a command whose stdin and stdout are the connection, run as OpenSSH
// runs it (sshconnect.c): `$SHELL -c "exec <command>"`, with %h %p %r %n %% expanded. Unlike
// OpenSSH, each value goes in as one quoted shell word, so no host or user name is ever read as
// shell syntax. Its stderr is kept (the last lines) for the error when the connection fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { Duplex } from 'node:stream';
import { SwitchyardError } from '../../errors';
import { q } from '../commands';

export interface ProxyCommandTarget {
  name: string;
  alias: string;
  hostname: string;
  port: number;
  user: string;
}

/** The first %-token of command that is not one of %h %p %r %n %%, if any (OpenSSH refuses those too). */
export function unknownProxyToken(command: string): string | undefined {
  return [...command.matchAll(/%(.?)/g)].map((m) => m[1]!).find((t) => !'hprn%'.includes(t) || t === '');
}

/** The command line the shell gets; an unknown %-token is an error (resolveSshTarget checks first). */
export function expandProxyCommand(command: string, t: ProxyCommandTarget): string {
  const values: Record<string, string> = { h: t.hostname, p: String(t.port), r: t.user, n: t.alias, '%': '%' };
  const bad = unknownProxyToken(command);
  if (bad !== undefined) throw new SwitchyardError(`host ${t.name}: ssh config ProxyCommand: unsupported token %${bad} (known: %h %p %r %n %%)`, { host: t.name });
  return `exec ${command.replace(/%(.)/g, (_all, token: string) => (token === '%' ? '%' : q(values[token]!)))}`;
}

export interface ProxyCommandSocket {
  sock: Duplex;
  /** The last of what the command wrote to stderr. */
  stderr(): string;
  child: ChildProcess;
}

/** Starts the command; the stream ends the process (TERM, by its pid) when it is destroyed. */
export function proxyCommandSocket(command: string, t: ProxyCommandTarget): ProxyCommandSocket {
  const line = expandProxyCommand(command, t);
  const child = spawn(process.env.SHELL || '/bin/sh', ['-c', line], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-2000)));
  const out = child.stdout!;
  const inp = child.stdin!;
  inp.on('error', () => undefined); // EPIPE once the command is gone: the read side says so
  const sock = new Duplex({
    read: () => out.resume(),
    write: (chunk: Buffer, _enc, cb) => (inp.writable ? inp.write(chunk, cb) : cb(new Error('the ProxyCommand exited'))),
    final: (cb) => {
      inp.end();
      cb();
    },
    destroy: (e, cb) => {
      inp.destroy();
      out.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      cb(e);
    },
  });
  out.on('data', (c: Buffer) => {
    if (!sock.push(c)) out.pause();
  });
  out.on('end', () => sock.push(null));
  child.on('error', (e) => sock.destroy(e));
  return { sock, stderr: () => err.trim().split('\n').slice(-3).join(' / '), child };
}
