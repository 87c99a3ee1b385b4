// OpenSSH's ProxyJump syntax: `[user@]host[:port]` or `ssh://[user@]host[:port]`, comma-separated,
// the first hop first; `none` for no jump. Pure: the schema checks environment files with it too.

export interface JumpSpec {
  user?: string;
  host: string;
  port?: number;
}

// as ssh_valid_hostname / ssh_valid_ruser (misc.c): nothing a shell or an option parser would read
const BAD_HOST = /[\s\p{Cc}'`"$\\;&<>|(){},]/u;
const BAD_USER = /[\s\p{Cc}'`"$\\;&<>|(){}*?[\]#!~]/u;

function parseHop(text: string): JumpSpec | string {
  const uri = /^ssh:\/\/(.*?)\/?$/.exec(text);
  const s = uri ? uri[1]! : text;
  const at = s.lastIndexOf('@');
  const user = at >= 0 ? s.slice(0, at) : undefined;
  const rest = at >= 0 ? s.slice(at + 1) : s;
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(rest);
  if (!m) return `"${text}" is not [user@]host[:port]`;
  const [, host, portText] = m;
  if (!host || BAD_HOST.test(host) || host.startsWith('-')) return `"${text}": invalid host name`;
  if (user !== undefined && (!user || BAD_USER.test(user) || user.startsWith('-'))) return `"${text}": invalid user name`;
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (port < 1 || port > 65535)) return `"${text}": port out of range`;
  return { ...(user !== undefined ? { user } : {}), host, ...(port !== undefined ? { port } : {}) };
}

/** The hops, first first; [] for `none`. A string is what is wrong. */
export function parseProxyJump(text: string): JumpSpec[] | string {
  const s = text.trim();
  if (s.toLowerCase() === 'none') return [];
  if (!s) return 'empty';
  const hops: JumpSpec[] = [];
  for (const part of s.split(',')) {
    const hop = parseHop(part.trim());
    if (typeof hop === 'string') return hop;
    hops.push(hop);
  }
  return hops;
}

/** What the schema says about a bad value, or undefined when it is a ProxyJump. */
export function proxyJumpProblem(text: string): string | undefined {
  const r = parseProxyJump(text);
  return typeof r === 'string' ? `a ProxyJump ([user@]host[:port], a,b or none): ${r}` : undefined;
}

/** How a hop is shown: user@host:port, [v6]:port. */
export function hopText(h: { user: string; hostname: string; port: number }): string {
  const host = h.hostname.includes(':') ? `[${h.hostname}]` : h.hostname;
  return `${h.user}@${host}:${h.port}`;
}
