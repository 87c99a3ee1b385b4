import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listEnvironments, loadEnvironment } from '../../../lib/environment';
import { baseInput, makeEnv } from '../../support/env';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-env-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, body: string): void {
  fs.writeFileSync(path.join(dir, name), body);
}
const load = (name: string) => loadEnvironment({ name, envDir: dir, root: dir });

describe('loading environment files', () => {
  it('loads a TypeScript file that imports switchyard and a sibling file, from outside the project', () => {
    write('base.ts', `export const hosts = [{ name: 'a1', address: '10.0.0.1', roles: ['web', 'app'], primary: true }];`);
    write(
      'uat.ts',
      `import { defineEnvironment } from 'switchyard';\nimport { hosts } from './base';\n` +
        `export default defineEnvironment(${JSON.stringify({ ...baseInput(), hosts: undefined })
          .replace('"hosts":null,', '')
          .replace(/}$/, ', hosts })')};\n`,
    );
    const env = load('uat');
    expect(env.name).toBe('uat');
    expect(env.file).toBe('uat.ts');
    expect(env.hosts[0]).toMatchObject({ name: 'a1', primary: true });
    // defaults filled in
    expect(env.retire).toEqual({ graceSeconds: 2, drainSeconds: 30, drain: 'signal', standbySeconds: 0 });
    expect(env.app.health).toEqual({ path: '/health', timeoutSeconds: 30, expectStatus: 200 });
    expect(env.transport).toBe('ssh');
    expect(listEnvironments(dir)).toContain('uat');
  });

  it('an ESM file gets its own import.meta.url, dirname and filename (bundled as CommonJS, which has none); a file it imports that uses import.meta is refused, naming it', () => {
    const input = JSON.stringify({ ...baseInput(), deployTo: '/x' }).replace('"/x"', "path.join(path.dirname(fileURLToPath(import.meta.url)), 'app')");
    write('meta.mjs', `import path from 'node:path';\nimport { fileURLToPath } from 'node:url';\nexport default ${input.replace(/}$/, ', socketDir: path.join(import.meta.dirname, import.meta.filename === fileURLToPath(import.meta.url) ? "s" : "wrong") }')};\n`);
    const env = load('meta');
    expect(env.deployTo).toBe(path.join(dir, 'app'));
    expect(env.socketDir).toBe(path.join(dir, 's'));
    fs.mkdirSync(path.join(dir, 'lib'), { recursive: true });
    write('lib/where.mjs', `export const where = import.meta.url;`);
    write('meta2.mjs', `import { where } from './lib/where.mjs';\nexport default ${JSON.stringify(baseInput()).replace(/}$/, ', site: where ? "a.example.com" : "" }')};\n`);
    expect(() => load('meta2')).toThrow(new RegExp(`${path.join(dir, 'lib', 'where.mjs').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:1:\\d+: uses import.meta, which only the environment file itself`));
  });

  it('names the missing file and the environments that exist', () => {
    expect(() => load('nope')).toThrow(/environment "nope": no file .*nope\.\{ts,mts,cts,js,mjs,cjs,json\} \(environments there: .*uat[^;]*$/);
    expect(() => load('uta')).toThrow(/environment "uta": no file .*uta\.\{ts,.*\} \(environments there: .*uat.*\); did you mean --env=uat\?$/);
    expect(() => loadEnvironment({ name: 'x', envDir: path.join(dir, 'missing') })).toThrow(/does not exist/);
    expect(() => load('../etc/passwd')).toThrow(/^--env: "\.\.\/etc\/passwd" is not an environment's name \(--env=<name> loads env\/<name>\.ts, \.js, \.mjs, …\); did you mean --env=passwd\?$/);
    // a file's name where the environment's goes: the name it would be; and one that IS a name
    expect(() => load('uat.ts')).toThrow(/^environment "uat\.ts": no file .*uat\.ts\.\{ts,.*\} \(environments there: .*\); did you mean --env=uat\?$/);
    expect(() => load('uat.ts.mjs')).toThrow(/; did you mean --env=uat\?$/);
    write('dotted.ts.mjs', `export default ${JSON.stringify(baseInput())};`);
    expect(load('dotted.ts').name).toBe('dotted.ts');
  });

  it('names the file and the field for an unknown key, a wrong type and a missing field', () => {
    write('bad1.ts', `export default ${JSON.stringify({ ...baseInput(), keepRelease: 3 })};`);
    expect(() => load('bad1')).toThrow(/bad1\.ts: invalid environment\n\s+keepRelease: unknown key; did you mean keepReleases\?(\n|$)/);
    // a key in a list's entries, and one like no key at all
    write('bad3.ts', `export default ${JSON.stringify({ ...baseInput(), hosts: [{ ...baseInput().hosts[0], adress: 'x' }], zzqqxx: 1 })};`);
    expect(() => load('bad3')).toThrow(/\n\s+hosts\[0\]\.adress: unknown key; did you mean address\?(\n|$)/);
    expect(() => load('bad3')).toThrow(/\n\s+zzqqxx: unknown key(\n|$)/);
    write('bad2.ts', `export default ${JSON.stringify({ ...baseInput(), hosts: [{ name: 'h1', roles: 'web' }] })};`);
    expect(() => load('bad2')).toThrow(/bad2\.ts: invalid environment\n\s+hosts\[0\]\.roles: expected array, received string/);
    const { deployTo: _, ...noDeployTo } = baseInput();
    write('bad3.ts', `export default ${JSON.stringify(noDeployTo)};`);
    expect(() => load('bad3')).toThrow(/bad3\.ts: invalid environment\n\s+deployTo: missing \(set it here, or on each host: h1 have none\)/);
    // nginx.listen as nginx's config takes it, when the file is loaded: not when setup writes the config
    write('bad6.ts', `export default ${JSON.stringify({ ...baseInput(), nginx: { listen: '127.0.0.1:99999' } })};`);
    expect(() => load('bad6')).toThrow(/bad6\.ts: invalid environment\n\s+nginx\.listen: port 99999 is out of range \(1-65535\)(\n|$)/);
    write('bad7.ts', `export default ${JSON.stringify({ ...baseInput(), nginx: { listen: 'localhost 80' } })};`);
    expect(() => load('bad7')).toThrow(/bad7\.ts: invalid environment\n\s+nginx\.listen: expected "PORT" or "ADDRESS:PORT" \(e\.g\. "80", "127\.0\.0\.1:8080", "\[::1\]:8080"\)/);
    write('bad4.ts', `export default { site: 'x', `);
    expect(() => load('bad4')).toThrow(/bad4\.ts: cannot be compiled\n\s+.*bad4\.ts:1:/);
    write('bad5.ts', `const x = 1;`);
    expect(() => load('bad5')).toThrow(/bad5\.ts: has no default export/);
  });
});

describe('rules across fields', () => {
  it('rejects duplicate host names, two primaries for a role, and an app role no host has', () => {
    expect(() =>
      makeEnv({
        hosts: [
          { name: 'a', roles: ['app'], primary: true },
          { name: 'a', roles: ['app'], primary: true },
        ],
      }),
    ).toThrow(/hosts\[1\]\.name: "a" is already used by hosts\[0\][\s\S]*role "app" already has primary host "a"/);
    expect(() => makeEnv({ hosts: [{ name: 'a', roles: ['db'] }] })).toThrow(/app\.roles: no host has role "app"/);
    expect(() => makeEnv({ hosts: [{ name: 'a', roles: ['app'], primary: ['db'] }] })).toThrow(/hosts\[0\]\.primary: "db" is not one of its roles/);
  });

  it('rejects a socket dir too long for a unix socket path, and relative or hostile paths', () => {
    expect(() => makeEnv({ socketDir: '/' + 'x'.repeat(70) })).toThrow(/socketDir: .* would exceed the 107-byte unix socket limit/);
    expect(() => makeEnv({ deployTo: 'srv/app' })).toThrow(/deployTo: an absolute path/);
    expect(() => makeEnv({ shared: ['../etc'] })).toThrow(/shared\[0\]: a relative path without "\.\."/);
    expect(() => makeEnv({ site: 'a b;c' })).toThrow(/site: a host name/);
    expect(() => makeEnv({ app: { start: [] } })).toThrow(/app\.start/);
  });

  it('takes nginx.listen as PORT or ADDRESS:PORT (IPv6 in brackets, * for every address)', () => {
    for (const listen of ['80', '127.0.0.1:8080', '[::1]:8080', '*:80', 'web1.internal:443']) expect(makeEnv({ nginx: { listen } }).nginx.listen).toBe(listen);
    for (const listen of ['0', '65536', '127.0.0.1', ':80', '127.0.0.1:8080;', '[::1]80']) expect(() => makeEnv({ nginx: { listen } }), listen).toThrow(/nginx\.listen: /);
  });

  it('refuses a misspelt placeholder in app.start, which the app would get as it is; other braces pass', () => {
    expect(() => makeEnv({ app: { start: ['node', 'server.js', '--socket', '{sockte}'] } })).toThrow(/app\.start\[3\]: \{sockte\} is not replaced \(only \{socket\} and \{release\} are\); did you mean \{socket\}\?/);
    expect(() => makeEnv({ app: { start: ['node', 'server.js', '--tag=v-{RELEASE}', '--socket', '{socket}'] } })).toThrow(/app\.start\[2\]: \{RELEASE\} is not replaced .*did you mean \{release\}\?/);
    for (const typo of ['{Socket}', '{sokcet}', '{relase}', '{releases}']) expect(() => makeEnv({ app: { start: ['node', typo] } }), typo).toThrow(/app\.start\[1\]: .* is not replaced/);
    // more than one edit away: the app's own text
    const own = ['{sock}', '{lease}', '{port}', '{socket_path}', '{socketdir}', '{socket}{release}', '--log={date}', '{"a":1}'];
    expect(makeEnv({ app: { start: ['node', 'server.js', '--socket', '{socket}', ...own] } }).app.start).toHaveLength(4 + own.length);
  });
});

describe('config overrides in the environment', () => {
  it('name the config file and the unknown key plainly', () => {
    expect(() => makeEnv({ config: { 'Web.config': { appSetings: { a: 'b' } } } as never })).toThrow(
      /config\["Web\.config"\]: unknown key "appSetings" \(an XML config file takes \{ appSettings, connectionStrings, xpath, namespaces \}\)/,
    );
    expect(() => makeEnv({ hosts: [{ name: 'h1', roles: ['app'], config: { 'a.json': { json: { x: 1 }, jsn: {} } } as never }] })).toThrow(
      /hosts\[0\]\.config\["a\.json"\]: unknown key "jsn"/,
    );
  });
});
