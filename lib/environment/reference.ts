// The environment reference (docs/ENVIRONMENT.md), rendered from the one schema: every key with its
// full path, its type in words, whether it is required, optional or defaulted, its description and
// an example. Pure: scripts/reference.ts writes the file, a test holds the committed copy to it.
import type { z } from 'zod';
import { configOverridesSchema, zod } from '../config/schema';
import { environmentSchema, wrapped } from './schema';

type Schema = z.core.$ZodType;
/** What a check (min, regex, refine…) says about itself: the parts of zod's check defs read here. */
interface CheckDef {
  check: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  value?: number;
  inclusive?: boolean;
  pattern?: RegExp;
  error?: (issue: unknown) => unknown;
}
/** zod's schema defs, loosened to the one shape the walk reads. */
interface Def extends Omit<CheckDef, 'check'> {
  type: string;
  defaultValue?: unknown;
  shape?: Record<string, Schema>;
  element?: Schema;
  keyType?: Schema;
  valueType?: Schema;
  options?: Schema[];
  entries?: Record<string, string | number>;
  values?: unknown[];
  checks?: { _zod: { def: CheckDef } }[];
}
interface Meta {
  description?: string;
  example?: unknown;
}
/** A key's schema seen through its wrappers. */
export interface Field {
  /** The schema as written in its object (wrappers included). */
  outer: Schema;
  /** The type under optional / default / prefault / readonly / pipe. */
  core: Schema;
  optional: boolean;
  /** The default (from .default() or .prefault()), when there is one. */
  fallback?: { value: unknown };
  meta: Meta;
  /** The config-file overrides (a transform): described in docs/CONFIG.md, not walked. */
  config: boolean;
}
interface Key {
  path: string;
  field: Field;
}
interface Section {
  title: string;
  /** The key holding the object ('' for the top level). */
  path: string;
  field?: Field;
  list: boolean;
  keys: Key[];
}
interface Words {
  one: string;
  many: string;
}

const CONFIG_README = 'CONFIG.md';
const defOf = (s: Schema) => s._zod.def as unknown as Def;
const checksOf = (d: Def) => (d.checks ?? []).map((c) => c._zod.def);

/** Unwraps optional / default / prefault / readonly / pipe (its input side) / lazy; meta of an outer layer wins. */
export function unwrap(outer: Schema): Field {
  const field: Field = { outer, core: outer, optional: false, meta: {}, config: false };
  for (let s: Schema | undefined = outer; s; ) {
    field.core = s;
    field.meta = { ...(zod().z.globalRegistry.get(s) as Meta | undefined), ...field.meta };
    const d = defOf(s);
    if (s === configOverridesSchema()) field.config = true;
    if (d.type === 'optional') field.optional = true;
    if ((d.type === 'default' || d.type === 'prefault') && !field.fallback) field.fallback = { value: d.defaultValue };
    if (field.config) break;
    s = wrapped(s);
  }
  return field;
}

/** The message a check or a format gives, when it was given one ('an absolute path'). */
function messageOf(d: { error?: (issue: unknown) => unknown }): string | undefined {
  const said = d.error?.({ code: 'custom', input: undefined });
  if (typeof said === 'string') return said;
  const m = (said as { message?: unknown } | undefined)?.message;
  return typeof m === 'string' ? m : undefined;
}

const ARTICLE = /^an? /;

function stringWords(d: Def): Words {
  const checks = checksOf(d);
  const said = [d.format ? messageOf(d) : undefined, ...checks.map(messageOf)].filter((m) => m !== undefined).pop();
  const noun = d.format === 'url' ? 'URL' : d.format ? `${d.format} string` : 'string';
  if (said && ARTICLE.test(said)) return { one: said.replace(ARTICLE, ''), many: `${noun}s (each ${said})` };
  if (said) return { one: `${noun} (${said})`, many: `${noun}s (${said})` };
  const regex = checks.find((c) => c.format === 'regex')?.pattern;
  if (regex) return { one: `${noun} matching ${String(regex)}`, many: `${noun}s matching ${String(regex)}` };
  const min = checks.find((c) => c.check === 'min_length')?.minimum ?? 0;
  if (min === 1) return { one: `non-empty ${noun}`, many: `non-empty ${noun}s` };
  if (min > 1) return { one: `${noun} of at least ${min} characters`, many: `${noun}s of at least ${min} characters` };
  return { one: noun, many: `${noun}s` };
}

function numberWords(d: Def): Words {
  const checks = checksOf(d);
  const noun = checks.some((c) => c.check === 'number_format' && /int/.test(c.format ?? '')) ? 'whole number' : 'number';
  const lo = checks.find((c) => c.check === 'greater_than');
  const hi = checks.find((c) => c.check === 'less_than');
  let range = '';
  if (lo?.inclusive && hi?.inclusive) range = ` ${lo.value}–${hi.value}`;
  else {
    const bounds = [lo && `${lo.inclusive ? '≥' : '>'} ${lo.value}`, hi && `${hi.inclusive ? '≤' : '<'} ${hi.value}`];
    range = bounds.filter(Boolean).map((b) => ` ${b}`).join(' and');
  }
  return { one: noun + range, many: `${noun}s${range}` };
}

function oneOf(values: unknown[]): Words {
  const shown = values.map((v) => code(typeof v === 'string' ? v : literal(v)));
  const one = shown.length === 1 ? shown[0]! : `one of ${shown.join(' | ')}`;
  return { one, many: `values, each ${one}` };
}

function arrayWords(d: Def): Words {
  const of = words(unwrap(d.element!).core).many;
  const min = checksOf(d).find((c) => c.check === 'min_length')?.minimum ?? 0;
  const list = min === 1 ? 'non-empty list' : min > 1 ? `list of at least ${min}` : 'list';
  return { one: `${list} of ${of}`, many: `${list}s of ${of}` };
}

/** A type in words: 'whole number ≥ 2', 'one of `ssh` | `local`', 'map of environment variable name → string'. */
export function words(s: Schema): Words {
  const d = defOf(s);
  switch (d.type) {
    case 'string':
      return stringWords(d);
    case 'number':
      return numberWords(d);
    case 'boolean':
      return { one: 'boolean', many: 'booleans' };
    case 'enum':
      return oneOf(Object.values(d.entries ?? {}));
    case 'literal':
      return oneOf(d.values ?? []);
    case 'array':
      return arrayWords(d);
    case 'record': {
      const map = `${words(unwrap(d.keyType!).core).one} → ${words(unwrap(d.valueType!).core).one}`;
      return { one: `map of ${map}`, many: `maps of ${map}` };
    }
    case 'union': {
      const options = (d.options ?? []).map(words);
      return { one: options.map((w) => w.one).join(' or '), many: options.map((w) => w.many).join(' or ') };
    }
    case 'object':
      return { one: 'object', many: 'objects' };
    case 'custom': // the one custom check of the schema: z.instanceof(Secret)
      return { one: "`secret('NAME')`", many: "`secret('NAME')` values" };
  }
  const inner = unwrap(s).core;
  return inner === s ? { one: `${d.type} value`, many: `${d.type} values` } : words(inner);
}

/** A value as it is written in an environment file: a TypeScript literal. */
export function literal(v: unknown): string {
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(v)) return `[${v.map(literal).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v).map(([k, x]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : literal(k)}: ${literal(x)}`);
    return entries.length ? `{ ${entries.join(', ')} }` : '{}';
  }
  return String(v);
}

/** An inline code span that survives backticks inside it. */
function code(text: string): string {
  const fence = text.includes('`') ? '``' : '`';
  return fence.length > 1 ? `${fence} ${text} ${fence}` : `${fence}${text}${fence}`;
}

/** Description text, with `<` outside code spans escaped (GitHub would take `<socketDir>` for HTML). */
function prose(text: string): string {
  return text
    .split(/(`[^`]*`)/)
    .map((part, i) => (i % 2 ? part : part.replace(/</g, '\\<')))
    .join('');
}

function childShape(field: Field): { shape: Record<string, Schema>; list: boolean } | undefined {
  if (field.config) return undefined;
  const d = defOf(field.core);
  if (d.type === 'object') return { shape: d.shape!, list: false };
  const element = d.type === 'array' ? defOf(unwrap(d.element!).core) : undefined;
  return element?.type === 'object' ? { shape: element.shape!, list: true } : undefined;
}

/** A section per object (and per list of objects), its own keys in it, the nested sections after it. */
function sectionsOf(shape: Record<string, Schema>, prefix: string, head: Omit<Section, 'keys'>): Section[] {
  const keys: Key[] = [];
  const nested: Section[] = [];
  for (const [name, schema] of Object.entries(shape)) {
    const path = prefix ? `${prefix}.${name}` : name;
    const field = unwrap(schema);
    const child = childShape(field);
    if (!child) keys.push({ path, field });
    else {
      const title = child.list ? `${path}[]` : path;
      nested.push(...sectionsOf(child.shape, title, { title: code(title), path, field, list: child.list }));
    }
  }
  return [{ ...head, keys }, ...nested];
}

function presence(field: Field): string {
  if (field.fallback) return `default ${code(literal(field.fallback.value))}`;
  return field.optional ? 'optional' : '**required**';
}

function renderKey({ path, field }: Key): string[] {
  const type = field.config
    ? `map of config file path → overrides (the syntax: [docs/CONFIG.md](${CONFIG_README}))`
    : words(field.core).one;
  const lines = [`- **${code(path)}**: ${type}; ${presence(field)}.`];
  if (field.meta.description) lines.push(`  ${prose(field.meta.description)}`);
  if (field.meta.example !== undefined) lines.push(`  Example: ${code(literal(field.meta.example))}.`);
  return [...lines, ''];
}

function sectionStatus(field: Field, list: boolean): string {
  if (list) {
    const min = checksOf(defOf(field.core)).find((c) => c.check === 'min_length')?.minimum ?? 0;
    const what = `a list${min ? ` of at least ${min} ${min === 1 ? 'entry' : 'entries'}` : ''}, each an object with the keys below`;
    return `${field.optional || field.fallback ? 'Optional' : '**Required**'}: ${what}.`;
  }
  const fallback = field.fallback?.value;
  if (fallback !== undefined && literal(fallback) === '{}') return 'Optional: left out, every key below takes its default.';
  if (field.fallback) return `Optional; default ${code(literal(fallback))}.`;
  return field.optional ? 'Optional.' : '**Required**.';
}

function renderSection(s: Section, objectKeys: string[]): string[] {
  const out = [`## ${s.title}`, ''];
  if (s.field) {
    const about = [s.field.meta.description && prose(s.field.meta.description), sectionStatus(s.field, s.list)];
    out.push(about.filter(Boolean).join(' '), '');
    if (s.field.meta.example !== undefined) out.push(`Example: ${code(literal(s.field.meta.example))}.`, '');
  } else {
    const list = objectKeys.map(code);
    const named = list.length > 1 ? `${list.slice(0, -1).join(', ')} and ${list.at(-1)}` : list.join('');
    out.push(`The object's own keys; ${named} hold objects and have sections of their own below.`, '');
  }
  return [...out, ...s.keys.flatMap(renderKey)];
}

function intro(): string[] {
  return [
    '# Environment file reference',
    '',
    '*Generated from the schema (lib/environment/schema.ts): do not edit; `npm run docs` writes it.*',
    '',
    'An environment file says where and how a site is deployed: its servers, how they are reached over',
    'SSH, where releases and sockets live on them, how the app starts and how its health is checked. It',
    'is `env/<name>.ts` (or `.js`, `.mjs`, `.json`) in the project, or in the directory given by',
    '`--env-dir` / `SWITCHYARD_ENV_DIR`, chosen with `--env=<name>`. It default-exports one object,',
    "wrapped in `defineEnvironment` from 'gulp-switchyard' for types and completion in the editor:",
    '',
    '```ts',
    "import { defineEnvironment } from 'gulp-switchyard';",
    '',
    'export default defineEnvironment({',
    "  site: 'uat.example.com',",
    "  build: { dir: 'dist' },",
    "  app: { start: ['node', 'server.js', '--socket', '{socket}'] },",
    "  hosts: [{ name: 'web1', address: 'web1.uat.internal', roles: ['web', 'app'], primary: true }],",
    "  deployTo: '/srv/uat.example.com',",
    "  socketDir: '/run/switchyard',",
    '});',
    '```',
    '',
    'The file is checked when it is loaded, before any connection is made. Every object is strict: an',
    'unknown key (a misspelling) is an error naming the file and the key, and the key it is near',
    '(`env/uat.ts: invalid environment` / `keepRelease: unknown key; did you mean keepReleases?`),',
    'and so is a wrong type or a missing required key.',
    '[env/uat.example.ts](../env/uat.example.ts) is a complete, commented sample.',
    '',
    'Each key below is shown by its full path (`hosts[].name` is the `name` of every entry of `hosts`),',
    'then its type, whether it is **required**, optional or has a default, what it means, and an example.',
    '',
  ];
}

/** docs/ENVIRONMENT.md: the intro, then every key of the environment schema, by section. */
export function environmentReference(): string {
  const sections = sectionsOf(defOf(environmentSchema()).shape!, '', { title: 'Top-level keys', path: '', list: false });
  const objectKeys = sections.map((s) => s.path).filter((p) => p && !p.includes('.'));
  return [...intro(), ...sections.flatMap((s) => renderSection(s, objectKeys))].join('\n').replace(/\n+$/, '\n');
}
