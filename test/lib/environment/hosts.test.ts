import { describe, expect, it } from 'vitest';
import { primaryHost, runsApp, selectHosts } from '../../../lib/environment/hosts';
import { makeEnv } from '../../support/env';

const env = makeEnv({
  hosts: [
    { name: 'web1', roles: ['web', 'app'] },
    { name: 'web2', roles: ['web', 'app'], primary: ['app'] },
    { name: 'db1', roles: ['db'] },
    { name: 'db2', roles: ['db'], primary: true },
  ],
});

describe('host selection', () => {
  it('selects by role and by name, in file order', () => {
    expect(selectHosts(env).map((h) => h.name)).toEqual(['web1', 'web2', 'db1', 'db2']);
    expect(selectHosts(env, { roles: ['db'] }).map((h) => h.name)).toEqual(['db1', 'db2']);
    expect(selectHosts(env, { hosts: ['db2', 'web1'] }).map((h) => h.name)).toEqual(['web1', 'db2']);
    expect(selectHosts(env, { roles: ['web'], hosts: ['web2', 'db1'] }).map((h) => h.name)).toEqual(['web2']);
  });

  it('refuses unknown roles and hosts, and an empty intersection', () => {
    expect(() => selectHosts(env, { roles: ['cache'] })).toThrow(/--roles: unknown role "cache" in env\/test\.ts \(roles: web, app, db\)/);
    expect(() => selectHosts(env, { hosts: ['web3'] })).toThrow(/--hosts: unknown host "web3"/);
    expect(() => selectHosts(env, { roles: ['db'], hosts: ['web1'] })).toThrow(/no host of env\/test\.ts matches/);
  });

  it('finds the primary: the marked one, else the first with the role', () => {
    expect(primaryHost(env, 'db').name).toBe('db2');
    expect(primaryHost(env, 'app').name).toBe('web2');
    expect(primaryHost(env, 'web').name).toBe('web1');
  });

  it('runsApp: a host of app.roles runs the app; the others get a release\'s files only', () => {
    expect(env.hosts.map((h) => runsApp(env, h))).toEqual([true, true, false, false]);
    const dbApp = makeEnv({ ...{ hosts: env.hosts }, app: { start: ['x'], roles: ['db'] } });
    expect(dbApp.hosts.map((h) => runsApp(dbApp, h))).toEqual([false, false, true, true]);
  });
});
