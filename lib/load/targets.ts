// Where load goes (`gulp loadtest`, `gulp verify`, `--under-load`): nginx on every web host of the
// environment, with the site's Host header, or one URL in front of them all (`loadtest.url`, a
// load balancer). Pure: reads the environment, touches nothing.
//
// A web host's URL is, in order: its own `url` (hosts[i].url); else http://<address>:<port> from
// `nginx.listen` — the address it names, unless that is a wildcard (0.0.0.0, *, [::]), in which
// case the host's `address ?? name`. A loopback listen address on a remote (ssh) host cannot be
// reached from here: that is an error asking for `url` rather than load sent to this machine.
import type { Environment, HostConfig } from '../environment';
import { SwitchyardError } from '../errors';
import { hasRole } from '../environment/hosts';
import type { LoadTarget } from './engine';

export interface Listen {
  /** The address nginx binds; undefined for a wildcard (every address). */
  address?: string;
  port: number;
}

const WILDCARDS = new Set(['0.0.0.0', '*', '::', '::0', '0:0:0:0:0:0:0:0']);

function port(text: string | undefined, listen: string): number {
  if (text === undefined) return 80;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new SwitchyardError(`nginx.listen: "${listen}": port ${text} is out of range`);
  return n;
}

/** nginx's `listen` forms: `8080`, `127.0.0.1`, `127.0.0.1:8080`, `*:80`, `[::1]:8080`, `web1.internal:80`. */
export function parseListen(listen: string): Listen {
  const s = listen.trim();
  let address: string | undefined;
  let portText: string | undefined;
  let m: RegExpExecArray | null;
  if (/^\d+$/.test(s)) portText = s;
  else if ((m = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(s))) [address, portText] = [m[1], m[2]];
  else if ((m = /^([A-Za-z0-9.*-]+)(?::(\d+))?$/.exec(s))) [address, portText] = [m[1], m[2]];
  else throw new SwitchyardError(`nginx.listen: "${listen}" is not an address:port nginx's listen takes (e.g. 80, 127.0.0.1:8080, [::1]:8080)`);
  const p = port(portText, listen);
  return address === undefined || WILDCARDS.has(address) ? { port: p } : { address, port: p };
}

export function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || address.toLowerCase() === 'localhost';
}

/** An address as the host part of a URL: IPv6 in brackets. */
function urlHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/** Where a host's nginx answers, seen from here. */
export function hostUrl(env: Environment, h: HostConfig): string {
  if (h.url) return h.url;
  const listen = parseListen(env.nginx.listen);
  const own = h.address ?? h.name;
  if (listen.address !== undefined && isLoopback(listen.address) && env.transport === 'ssh' && !isLoopback(own)) {
    throw new SwitchyardError(
      `${h.name}: nginx listens on ${env.nginx.listen}, which is that host's own loopback: load cannot reach it from here. ` +
        `Set hosts[].url (where this host's nginx is reached) or loadtest.url (a load balancer) in ${env.file}`,
    );
  }
  return `http://${urlHost(listen.address ?? own)}:${listen.port}`;
}

export interface TargetSelection {
  /** Only these web hosts, by name (ignored when loadtest.url is set). */
  hosts?: string[];
}

/** The load targets of an environment: loadtest.url, or every web host (nginx.roles), each with `Host: <site>`. */
export function loadTargets(env: Environment, sel: TargetSelection = {}): LoadTarget[] {
  if (env.loadtest?.url) return [{ url: env.loadtest.url, host: env.site, label: env.loadtest.url }];
  let web = env.hosts.filter((h) => hasRole(h, env.nginx.roles));
  if (sel.hosts?.length) {
    const bad = sel.hosts.filter((n) => !web.some((h) => h.name === n));
    if (bad.length) {
      throw new SwitchyardError(
        `--hosts: ${bad.map((n) => `"${n}"`).join(', ')} ${bad.length === 1 ? 'is not a web host' : 'are not web hosts'} of ${env.file} ` +
          `(hosts with role ${env.nginx.roles.join(' or ')}: ${web.map((h) => h.name).join(', ') || 'none'})`,
      );
    }
    web = web.filter((h) => sel.hosts!.includes(h.name));
  }
  if (!web.length) {
    throw new SwitchyardError(`${env.file}: no host has an nginx role (${env.nginx.roles.join(', ')}) to send load to; set loadtest.url to load a load balancer instead`);
  }
  return web.map((h) => ({ url: hostUrl(env, h), host: env.site, label: h.name }));
}
