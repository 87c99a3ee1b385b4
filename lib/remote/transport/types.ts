import type { Readable } from 'node:stream';

export interface ExecOptions {
  /** Sent to the command's stdin, then closed. */
  stdin?: string | Buffer | (() => Readable);
  /** Called with each complete line of output as it arrives. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /**
   * Ends the command after this long: SIGTERM to it (the remote scripts clean up on TERM), SIGKILL
   * KILL_AFTER_MS later; the result then has code 124 and `timedOut`, as with coreutils `timeout`.
   */
  timeoutSeconds?: number;
  /** After the TERM of timeoutSeconds, KILL this much later (default KILL_AFTER_MS). */
  killAfterMs?: number;
  /** Ends the command as a timeout does when this aborts (a step's own time limit, say). */
  stop?: AbortSignal;
}

export const KILL_AFTER_MS = 10_000;

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The command ran out of ExecOptions.timeoutSeconds and was signalled. */
  timedOut?: boolean;
}

/** What a timed-out command reports: coreutils `timeout`'s code. */
export const TIMED_OUT = 124;

/** What the release steps count per host: the cost of a deploy over a WAN is its round trips. */
export interface TransportStats {
  connections: number;
  executions: number;
  bytesUploaded: number;
  /**
   * SSH connections to jump hosts opened to reach this host (ProxyJump; a chain counts each hop).
   * A jump shared with other hosts counts once, for the host that opened it. Absent when none.
   */
  jumpConnections?: number;
}

/** A jump host on the way to a server. */
export interface SshHop {
  /** As written in ProxyJump (an ssh_config alias, say). */
  name: string;
  user: string;
  hostname: string;
  port: number;
  /** The identity the jump host accepted (a file path or `agent key SHA256:…`), once connected. */
  identity?: string;
}

/** How a server is reached (for `gulp doctor` and messages): the route as planned, the identity once connected. */
export interface SshReach {
  host: string;
  user: string;
  hostname: string;
  port: number;
  /** Jump hosts, first first; [] when reached directly or through a ProxyCommand. */
  jumps: SshHop[];
  /** The ProxyCommand (as the shell gets it), when the server is reached through one. */
  proxyCommand?: string;
  /** The identity the server accepted: a file path, or `agent key SHA256:…` (with the file it stands for); once connected. */
  identity?: string;
}

/** One host's way to run commands: ssh for servers, local for this machine. Same strings either way. */
export interface Transport {
  readonly host: string;
  readonly stats: TransportStats;
  connect(): Promise<void>;
  exec(command: string, o?: ExecOptions): Promise<ExecResult>;
  close(): Promise<void>;
}

/** Splits a byte stream into lines, keeping the unfinished tail for the next chunk. */
export function lineSplitter(emit: (line: string) => void): { push(chunk: Buffer | string): void; end(): void } {
  let tail = '';
  return {
    push(chunk) {
      const text = tail + chunk.toString();
      const lines = text.split('\n');
      tail = lines.pop() ?? '';
      for (const l of lines) emit(l.replace(/\r$/, ''));
    },
    end() {
      if (tail) emit(tail);
      tail = '';
    },
  };
}
