// docs/ENVIRONMENT.md against the schema it is generated from: up to date, every key in it with its
// description and its real default, and the sample environment file valid under the same schema.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { configOverridesSchema, zod } from '../../../lib/config/schema';
import { environmentSchema, loadEnvironment } from '../../../lib/environment';
import { environmentReference } from '../../../lib/environment/reference';

const ROOT = path.resolve(__dirname, '../../..');
const DOC = path.join(ROOT, 'docs', 'ENVIRONMENT.md');
const reference = environmentReference();

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-ref-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// The schema walked here on its own (not with lib/environment/reference.ts's walk), so a key the
// reference forgets, or a default it misstates, is seen.
type Schema = z.core.$ZodType;
interface Def {
  type: string;
  innerType?: Schema;
  in?: Schema;
  defaultValue?: unknown;
  shape?: Record<string, Schema>;
  element?: Schema;
}
interface Walked {
  path: string;
  /** The schema as written (wrappers included): parses a value of the key. */
  schema: Schema;
  description?: string;
  example?: unknown;
  fallback?: { value: unknown };
  optional: boolean;
  leaf: boolean;
}
const defOf = (s: Schema) => s._zod.def as unknown as Def;

function inspect(p: string, schema: Schema): Walked & { core: Schema } {
  const w: Walked & { core: Schema } = { path: p, schema, core: schema, optional: false, leaf: true };
  for (let s: Schema | undefined = schema; s; ) {
    w.core = s;
    const meta = zod().z.globalRegistry.get(s) as { description?: string; example?: unknown } | undefined;
    w.description ??= meta?.description;
    if (w.example === undefined) w.example = meta?.example;
    const d = defOf(s);
    if (d.type === 'optional') w.optional = true;
    if ((d.type === 'default' || d.type === 'prefault') && !w.fallback) w.fallback = { value: d.defaultValue };
    if (s === configOverridesSchema()) break;
    s = ['optional', 'default', 'prefault', 'readonly', 'nullable'].includes(d.type) ? d.innerType : d.type === 'pipe' ? d.in : undefined;
  }
  return w;
}

function walk(shape: Record<string, Schema>, prefix = ''): Walked[] {
  return Object.entries(shape).flatMap(([name, schema]) => {
    const w = inspect(prefix ? `${prefix}.${name}` : name, schema);
    const d = defOf(w.core);
    const element = d.type === 'array' ? defOf(inspect('', d.element!).core) : undefined;
    const inner = d.type === 'object' ? { shape: d.shape!, at: w.path } : element?.type === 'object' ? { shape: element.shape!, at: `${w.path}[]` } : undefined;
    return inner ? [{ ...w, leaf: false }, ...walk(inner.shape, inner.at)] : [w];
  });
}

const keys = walk(defOf(environmentSchema()).shape!);
const leaves = keys.filter((k) => k.leaf);

/** The reference's entry for a key: its bullet and the lines under it, up to the blank line. */
function entry(p: string): string {
  const lines = reference.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`- **\`${p}\`**:`));
  if (at === -1) return '';
  const end = lines.findIndex((l, i) => i > at && l === '');
  return lines.slice(at, end === -1 ? undefined : end).join('\n');
}

/** The default an entry shows, read back as a value (it is written as a TypeScript literal). */
function shownDefault(p: string): { value: unknown } | undefined {
  const m = /; default `([^`]*)`\.$/m.exec(entry(p).split('\n')[0]!);
  return m ? { value: new Function(`return (${m[1]});`)() } : undefined;
}

const KNOWN = [
  'site', 'transport', 'build.dir', 'app.start', 'app.env', 'app.roles', 'app.startTimeoutSeconds', 'app.instances',
  'app.health.path', 'app.health.timeoutSeconds', 'app.health.expectStatus',
  'hosts[].name', 'hosts[].address', 'hosts[].port', 'hosts[].user', 'hosts[].identityFile', 'hosts[].passphraseEnv', 'hosts[].proxyJump', 'hosts[].roles',
  'hosts[].primary', 'hosts[].deployTo', 'hosts[].socketDir', 'hosts[].url', 'hosts[].config',
  'ssh.user', 'ssh.port', 'ssh.identityFile', 'ssh.identitiesOnly', 'ssh.passphraseEnv', 'ssh.proxyJump', 'ssh.knownHostsFile', 'ssh.configFile', 'ssh.agent',
  'ssh.connectTimeoutSeconds', 'ssh.keepaliveIntervalSeconds', 'ssh.commandTimeoutSeconds',
  'deployTo', 'socketDir', 'socket.mode', 'socket.group', 'shared', 'keepReleases', 'retire.graceSeconds', 'retire.drainSeconds', 'retire.drain', 'retire.standbySeconds', 'supervise.enabled', 'supervise.intervalMs', 'supervise.healthEverySeconds', 'supervise.unhealthyChecks', 'supervise.maxRestarts',
  'parallel', 'nginx.listen', 'nginx.pass', 'nginx.fastcgiIndex', 'nginx.roles', 'nginx.private', 'loadtest.url', 'config',
];

describe('docs/ENVIRONMENT.md', () => {
  it('is what `npm run docs` writes from lib/environment/schema.ts', () => {
    const committed = fs.existsSync(DOC) ? fs.readFileSync(DOC, 'utf8').replace(/\r\n/g, '\n') : '(missing)';
    expect(committed, 'docs/ENVIRONMENT.md is out of date with lib/environment/schema.ts: run `npm run docs` and commit it').toBe(reference);
  });

  it('says it is generated, how to regenerate it, and links the config override syntax', () => {
    expect(reference).toContain("`defineEnvironment` from 'gulp-switchyard'");
    expect(reference).toContain('do not edit; `npm run docs` writes it');
    expect(reference).toMatch(/unknown key .*is an error naming the file and the key/s);
    expect(entry('config')).toContain('[docs/CONFIG.md](CONFIG.md)');
    expect(entry('hosts[].config')).toContain('[docs/CONFIG.md](CONFIG.md)');
    expect(entry('config')).toContain("Example: `{ 'Web.config': { appSettings: { Environment: 'uat' } } }`.");
  });
});

describe('every key of the schema', () => {
  it('is found by the walk (the known keys, and nothing inside the config overrides)', () => {
    expect(leaves.map((k) => k.path).sort()).toEqual([...KNOWN].sort());
  });

  it('has a description in the schema (.meta(doc(...)))', () => {
    const undocumented = keys.filter((k) => !k.description?.trim()).map((k) => k.path);
    expect(undocumented, 'keys without a description in lib/environment/schema.ts').toEqual([]);
  });

  it('has an entry in the reference with its description, and the reference has no other entries', () => {
    const missing = leaves.filter((k) => !entry(k.path).split('\n').includes(`  ${k.description}`)).map((k) => k.path);
    expect(missing, 'keys whose entry (with its description) is missing from the reference').toEqual([]);
    const entries = [...reference.matchAll(/^- \*\*`([^`]+)`\*\*:/gm)].map((m) => m[1]);
    expect(entries.sort()).toEqual(leaves.map((k) => k.path).sort());
    for (const s of keys.filter((k) => !k.leaf)) expect(reference).toContain(`${s.description} `);
  });

  it('shows required, optional and defaults as the schema has them', () => {
    const wrong = leaves.flatMap((k) => {
      const first = entry(k.path).split('\n')[0]!;
      if (k.fallback) return JSON.stringify(shownDefault(k.path)?.value) === JSON.stringify(k.fallback.value) ? [] : [`${k.path}: ${first}`];
      return first.endsWith(k.optional ? '; optional.' : '; **required**.') ? [] : [`${k.path}: ${first}`];
    });
    expect(wrong).toEqual([]);
    const spot = { 'ssh.commandTimeoutSeconds': 600, keepReleases: 5, 'retire.graceSeconds': 2, 'nginx.listen': '80', 'app.roles': ['app'], transport: 'ssh' };
    for (const [p, v] of Object.entries(spot)) expect(shownDefault(p), p).toEqual({ value: v });
    expect(entry('site')).toMatch(/; \*\*required\*\*\./);
    expect(entry('ssh.user')).toMatch(/; optional\./);
  });

  it('shows its type in words, from the checks', () => {
    expect(entry('keepReleases')).toMatch(/^- \*\*`keepReleases`\*\*: whole number ≥ 2;/);
    expect(entry('hosts[].port')).toContain('whole number 1–65535');
    expect(entry('transport')).toContain('one of `ssh` | `local`');
    expect(entry('deployTo')).toContain(': absolute path;');
    expect(entry('app.env')).toContain('map of environment variable name → string');
    expect(entry('shared')).toContain('list of strings');
    expect(entry('nginx.private')).toContain(': boolean;');
    expect(entry('ssh.agent')).toContain('non-empty string or `false`');
  });

  it('has examples that are valid values of the key', () => {
    const withExamples = keys.filter((k) => k.example !== undefined);
    expect(withExamples.length).toBeGreaterThan(20);
    const bad = withExamples.filter((k) => !zod().z.safeParse(k.schema, k.example).success).map((k) => `${k.path}: ${JSON.stringify(k.example)}`);
    expect(bad).toEqual([]);
    for (const k of withExamples.filter((x) => x.leaf)) expect(entry(k.path), k.path).toContain('Example: `');
  });
});

describe('environment files through the real loader', () => {
  it('env/uat.example.ts loads and validates (secrets are needed only when rendering)', () => {
    const env = loadEnvironment({ name: 'uat.example', envDir: path.join(ROOT, 'env'), root: ROOT });
    expect(env.file).toBe(path.join('env', 'uat.example.ts'));
    expect(env.site).toBe('uat.example.com');
    expect(env.hosts.map((h) => h.name)).toEqual(['web1', 'web2', 'db1']);
    expect(env.socket.group).toBe('www-data');
    expect(env.ssh.commandTimeoutSeconds).toBe(600); // a default filled in
  });

  it('a copy with misspelled keys fails, naming the file and each key', () => {
    const sample = fs.readFileSync(path.join(ROOT, 'env', 'uat.example.ts'), 'utf8');
    const typo = sample.replace('keepReleases: 5', 'keepRelease: 5').replace('graceSeconds: 2', 'graceSecond: 2');
    expect(typo).not.toBe(sample);
    fs.writeFileSync(path.join(tmp, 'uat.ts'), typo);
    const load = () => loadEnvironment({ name: 'uat', envDir: tmp, root: tmp });
    expect(load).toThrow(/^uat\.ts: invalid environment\n/);
    expect(load).toThrow(/^\s+keepRelease: unknown key; did you mean keepReleases\?$/m);
    expect(load).toThrow(/^\s+retire\.graceSecond: unknown key; did you mean graceSeconds\?$/m);
  });

  it("the reference's own example file loads", () => {
    const sample = /```ts\n([^`]*)```/.exec(reference)?.[1];
    expect(sample).toContain('defineEnvironment({');
    fs.writeFileSync(path.join(tmp, 'intro.ts'), sample!);
    const env = loadEnvironment({ name: 'intro', envDir: tmp, root: tmp });
    expect(env.hosts).toHaveLength(1);
    expect(env.app.roles).toEqual(['app']);
  });
});
