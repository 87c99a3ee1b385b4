// One environment's nginx config (lib/nginx/site.ts): the fastcgi block takes its document root from
// deployTo (a host's own, when it has one) and its index from nginx.fastcgiIndex.
import { describe, expect, it } from 'vitest';
import { forHost } from '../../../lib/environment';
import { serverBlock, serverBlocks } from '../../../lib/nginx/site';
import { makeEnv } from '../../support/env';

describe('serverBlock', () => {
  it("fastcgi: root <deployTo>/current, resolved per request; fastcgi_index Default.aspx unless the environment names another", () => {
    const text = serverBlock(makeEnv({ nginx: { pass: 'fastcgi' } }));
    expect(text).toContain('        fastcgi_pass unix:$sy_app_test;\n');
    expect(text).toContain('        root /srv/app/current;\n        fastcgi_index Default.aspx;\n');
    expect(text).toContain('        fastcgi_param SCRIPT_FILENAME   $realpath_root$fastcgi_script_name;\n');
    expect(serverBlock(makeEnv({ nginx: { pass: 'fastcgi', fastcgiIndex: 'index.php' } }))).toContain('        fastcgi_index index.php;\n');
  });

  it('fastcgi: a host with its own deployTo gets its own root', () => {
    const env = makeEnv({
      nginx: { pass: 'fastcgi' },
      hosts: [
        { name: 'h1', roles: ['web', 'app'] },
        { name: 'h2', roles: ['web', 'app'], deployTo: '/opt/shop' },
      ],
    });
    expect(serverBlock(forHost(env, env.hosts[1]!))).toContain('        root /opt/shop/current;\n');
    const both = serverBlocks(env);
    expect(both.match(/^ {8}root .*$/gm)).toEqual(['        root /srv/app/current;', '        root /opt/shop/current;']);
  });

  it('http: no root, no fastcgi lines', () => {
    expect(serverBlock(makeEnv())).not.toMatch(/root|fastcgi/);
  });

  it('a bad fastcgiIndex is refused by the schema, naming the key', () => {
    expect(() => makeEnv({ nginx: { pass: 'fastcgi', fastcgiIndex: 'index.php;' } })).toThrow(/nginx\.fastcgiIndex: a file name such as Default\.aspx or index\.php/);
  });
});
