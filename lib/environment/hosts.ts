// Which hosts a task works on: roles, names, primaries.
import { SwitchyardError } from '../errors';
import { primaryRolesOf, type Environment, type HostConfig } from './index';

export interface Selection {
  /** Only hosts with at least one of these roles. */
  roles?: string[];
  /** Only these hosts, by name. */
  hosts?: string[];
}

/** Selects hosts in file order; an unknown role or host name is an error, never an empty selection. */
export function selectHosts(env: Environment, sel: Selection = {}): HostConfig[] {
  const allRoles = new Set(env.hosts.flatMap((h) => h.roles));
  const allNames = new Set(env.hosts.map((h) => h.name));
  const badRoles = (sel.roles ?? []).filter((r) => !allRoles.has(r));
  if (badRoles.length) {
    throw new SwitchyardError(`--roles: unknown role ${badRoles.map((r) => `"${r}"`).join(', ')} in ${env.file} (roles: ${[...allRoles].join(', ')})`);
  }
  const badHosts = (sel.hosts ?? []).filter((h) => !allNames.has(h));
  if (badHosts.length) {
    throw new SwitchyardError(`--hosts: unknown host ${badHosts.map((h) => `"${h}"`).join(', ')} in ${env.file} (hosts: ${[...allNames].join(', ')})`);
  }
  const picked = env.hosts.filter(
    (h) => (!sel.roles?.length || h.roles.some((r) => sel.roles!.includes(r))) && (!sel.hosts?.length || sel.hosts.includes(h.name)),
  );
  if (!picked.length) throw new SwitchyardError(`no host of ${env.file} matches both --roles=${sel.roles?.join(',')} and --hosts=${sel.hosts?.join(',')}`);
  return picked;
}

/** The primary host of a role: the one marked primary, else the first host with the role (as Capistrano does). */
export function primaryHost(env: Environment, role: string): HostConfig {
  const marked = env.hosts.find((h) => primaryRolesOf(h).includes(role));
  const first = marked ?? env.hosts.find((h) => h.roles.includes(role));
  if (!first) throw new SwitchyardError(`${env.file}: no host has role "${role}"`);
  return first;
}

export function hasRole(h: HostConfig, roles: readonly string[]): boolean {
  return h.roles.some((r) => roles.includes(r));
}

/** The host runs the app (one of app.roles); a release gives the others its files only. */
export function runsApp(env: Environment, h: HostConfig): boolean {
  return hasRole(h, env.app.roles);
}
