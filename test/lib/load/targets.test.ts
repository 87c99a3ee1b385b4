// Where load goes: every web host's nginx (its url, or nginx.listen on its address), or loadtest.url.
import { describe, expect, it } from 'vitest';
import type { EnvironmentInput } from '../../../lib/environment';
import { hostUrl, isLoopback, loadTargets, parseListen } from '../../../lib/load/targets';
import { baseInput, makeEnv } from '../../support/env';

const three: EnvironmentInput['hosts'] = [
  { name: 'web1', address: '10.0.0.1', roles: ['web', 'app'] },
  { name: 'web2', roles: ['web'] },
  { name: 'db1', address: '10.0.0.9', roles: ['db'] },
];

describe('parseListen', () => {
  it.each([
    ['80', { port: 80 }],
    ['8080', { port: 8080 }],
    ['127.0.0.1', { address: '127.0.0.1', port: 80 }],
    ['127.0.0.1:8080', { address: '127.0.0.1', port: 8080 }],
    ['0.0.0.0:8080', { port: 8080 }],
    ['*:81', { port: 81 }],
    ['[::]:8080', { port: 8080 }],
    ['[::]', { port: 80 }],
    ['[::1]:8080', { address: '::1', port: 8080 }],
    ['localhost:3000', { address: 'localhost', port: 3000 }],
    ['web1.internal', { address: 'web1.internal', port: 80 }],
  ])('%s', (listen, expected) => {
    expect(parseListen(listen)).toEqual(expected);
  });

  it.each(['127.0.0.1:0', '80:80:80', '[::1', 'unix:/tmp/x', '127.0.0.1:70000', ''])('rejects %j', (listen) => {
    expect(() => parseListen(listen)).toThrow(/nginx\.listen/);
  });

  it('knows loopback addresses', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', 'LOCALHOST'].every(isLoopback)).toBe(true);
    expect(['10.0.0.1', '128.0.0.1', 'web1', '::'].some(isLoopback)).toBe(false);
  });
});

describe('loadTargets', () => {
  it('every web host, at address ?? name and the listen port, with Host: <site>; other roles get none', () => {
    const env = makeEnv({ hosts: three, nginx: { listen: '8080' } });
    expect(loadTargets(env)).toEqual([
      { url: 'http://10.0.0.1:8080', host: 'app.test', label: 'web1' },
      { url: 'http://web2:8080', host: 'app.test', label: 'web2' },
    ]);
  });

  it('the default listen is port 80; a wildcard address means the host address', () => {
    expect(loadTargets(makeEnv({ hosts: three }))[0]!.url).toBe('http://10.0.0.1:80');
    expect(loadTargets(makeEnv({ hosts: three, nginx: { listen: '0.0.0.0:81' } }))[1]!.url).toBe('http://web2:81');
    expect(loadTargets(makeEnv({ hosts: three, nginx: { listen: '[::]:82' } }))[0]!.url).toBe('http://10.0.0.1:82');
  });

  it('an IPv6 host address is bracketed', () => {
    const env = makeEnv({ hosts: [{ name: 'v6', address: 'fd00::5', roles: ['web', 'app'] }], nginx: { listen: '8080' } });
    expect(loadTargets(env)[0]!.url).toBe('http://[fd00::5]:8080');
  });

  it('a host url wins over everything but loadtest.url', () => {
    const hosts = three.map((h) => (h.name === 'web2' ? { ...h, url: 'https://web2.example.net:8443' } : h));
    const env = makeEnv({ hosts, nginx: { listen: '127.0.0.1:8080' }, transport: 'ssh' });
    expect(hostUrl(env, env.hosts[1]!)).toBe('https://web2.example.net:8443');
    expect(loadTargets(makeEnv({ hosts })).map((t) => t.url)).toEqual(['http://10.0.0.1:80', 'https://web2.example.net:8443']);
  });

  it('loadtest.url (a load balancer) replaces the hosts: one target, still with Host: <site>', () => {
    const env = makeEnv({ hosts: three, loadtest: { url: 'http://lb.internal:8000/' } });
    expect(loadTargets(env)).toEqual([{ url: 'http://lb.internal:8000/', host: 'app.test', label: 'http://lb.internal:8000/' }]);
    expect(loadTargets(env, { hosts: ['nope'] })).toHaveLength(1);
  });

  it('an address in listen is used as is: the local transport on 127.0.0.1:8080', () => {
    const env = makeEnv({ transport: 'local', hosts: [{ name: 'local', roles: ['web', 'app'] }], nginx: { listen: '127.0.0.1:8080', private: true } });
    expect(loadTargets(env)).toEqual([{ url: 'http://127.0.0.1:8080', host: 'app.test', label: 'local' }]);
    // a non-loopback listen address over ssh is that host's own address: reachable, used
    expect(loadTargets(makeEnv({ hosts: three, nginx: { listen: '10.0.0.7:80' } }))[0]!.url).toBe('http://10.0.0.7:80');
  });

  it('a loopback listen on a remote host is an error naming the way out; on a loopback host it is fine', () => {
    const env = makeEnv({ hosts: three, nginx: { listen: '127.0.0.1:8080' } });
    expect(() => loadTargets(env)).toThrow(/web1: nginx listens on 127\.0\.0\.1:8080, which is that host's own loopback.*Set hosts\[\]\.url .* or loadtest\.url .* in env\/test\.ts/);
    const lab = makeEnv({ hosts: [{ name: 'h1', address: '127.0.0.1', roles: ['web', 'app'] }], nginx: { listen: '127.0.0.1:8080' } });
    expect(loadTargets(lab)[0]!.url).toBe('http://127.0.0.1:8080');
  });

  it('--hosts narrows the web hosts; a name that is not a web host is an error', () => {
    const env = makeEnv({ hosts: three });
    expect(loadTargets(env, { hosts: ['web2'] }).map((t) => t.label)).toEqual(['web2']);
    expect(() => loadTargets(env, { hosts: ['db1', 'web9'] })).toThrow(/--hosts: "db1", "web9" are not web hosts of env\/test\.ts \(hosts with role web: web1, web2\)/);
  });

  it('nginx.roles decides which hosts are web hosts; none is an error', () => {
    expect(loadTargets(makeEnv({ hosts: three, nginx: { roles: ['db'] } })).map((t) => t.label)).toEqual(['db1']);
    expect(() => loadTargets(makeEnv({ hosts: three, nginx: { roles: ['edge'] } }))).toThrow(/no host has an nginx role \(edge\).*loadtest\.url/);
  });

  it('the schema takes an http(s) host url and refuses others', () => {
    expect(() => makeEnv({ hosts: [{ name: 'h1', roles: ['web', 'app'], url: 'ftp://h1/' }] })).toThrow(/hosts\[0\]\.url: an http:\/\/ or https:\/\/ URL/);
    expect(makeEnv({ hosts: [{ name: 'h1', roles: ['web', 'app'], url: 'http://127.0.0.1:9000' }] }).hosts[0]!.url).toBe('http://127.0.0.1:9000');
    expect(baseInput().hosts[0]).not.toHaveProperty('url');
  });
});
