/**
 * Secrets in config overrides.
 *
 * In an environment file, `secret('DB_PASSWORD')` stands for a value that is not in any
 * repository. It is resolved on the deploying machine, at render time, from
 *   1. the environment variable of that name (`process.env.DB_PASSWORD`), else
 *   2. a secrets file: the `file` given to `secret(name, { file })`, else the file named by
 *      `SWITCHYARD_SECRETS_FILE` (or `resolveSecrets`' `secretsFile` option).
 * An empty value counts as missing.
 *
 * Secrets file format (dotenv-like, UTF-8, keep it outside the repository, mode 0600):
 *
 *   # comment lines and blank lines are ignored; there are no inline comments
 *   DB_PASSWORD=s3cr3t with spaces #too     (unquoted: the rest of the line, blanks around trimmed)
 *   export API_KEY=abc                      (an optional `export ` prefix)
 *   QUOTED="line1\nline2 \"q\""             (double quotes: one JSON string literal)
 *   RAW='#no $expansion\n here'             (single quotes: taken literally)
 *
 * Names are `[A-Za-z_][A-Za-z0-9_]*`; a name defined twice is an error; there is no variable
 * expansion and no inline comment (`#` is part of an unquoted value). Errors about the file name
 * the line, never its content.
 *
 * Secret values are masked (`******`) by {@link Masker} in logs, dry runs, diffs and reports.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { writtenForms } from './escape';
import { SwitchyardError } from '../errors';
import type { ConfigOverrides, JsonOverrideValue } from './schema';

const BRAND = Symbol.for('switchyard.secret');
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A reference to a secret value. Holds only the name (and optional file), never the value.
 * `instanceof Secret` (and so `z.instanceof(Secret)`) recognises secrets made by any copy of
 * this module, e.g. when an environment repository resolves its own switchyard install.
 */
export class Secret {
  readonly [BRAND] = true;
  readonly name: string;
  readonly file: string | undefined;
  constructor(name: string, file?: string) {
    if (!NAME.test(name)) throw new TypeError(`secret(${JSON.stringify(name)}): a secret name must match ${NAME}`);
    if (file !== undefined && file.trim() === '') throw new TypeError(`secret(${JSON.stringify(name)}): file must not be empty`);
    this.name = name;
    this.file = file;
  }
  static [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as { [BRAND]?: unknown })[BRAND] === true;
  }
  toString(): string {
    return `secret(${this.name})`;
  }
  toJSON(): string {
    return this.toString();
  }
}

/** `secret('DB_PASSWORD')`, or `secret('DB_PASSWORD', { file: '~/.config/acme/uat.env' })`. */
export function secret(name: string, o?: { file?: string }): Secret {
  return new Secret(name, o?.file);
}

const MASK = '******';

/**
 * Replaces every occurrence of every secret value with `******` — in the raw form and in every
 * escaped form switchyard writes (XML attribute and text, JSON string). Empty values are ignored.
 * Longer values are replaced first, so a secret that contains another is masked whole.
 */
export class Masker {
  private readonly re: RegExp | undefined;
  constructor(values: Iterable<string>) {
    const forms = new Set<string>();
    for (const v of values) if (v !== '') for (const f of writtenForms(v)) forms.add(f);
    const sorted = [...forms].sort((a, b) => b.length - a.length);
    this.re = sorted.length ? new RegExp(sorted.map(escapeRegExp).join('|'), 'g') : undefined;
  }
  mask(text: string): string {
    return this.re ? text.replace(this.re, MASK) : text;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Where a secret is used: `configFile` and the override (`appSettings "DbPassword"`, …). */
export interface SecretUse {
  secret: Secret;
  configFile: string;
  where: string;
}

/** How an override is named in messages. */
export function describeOverride(section: string, key: string): string {
  return `${section} ${JSON.stringify(key)}`;
}

/** Every secret in the overrides, with where it is used. */
export function collectSecrets(overrides: ConfigOverrides): SecretUse[] {
  const uses: SecretUse[] = [];
  for (const [configFile, file] of Object.entries(overrides)) {
    for (const [section, entries] of Object.entries(file as Record<string, unknown>)) {
      if (section === 'namespaces' || typeof entries !== 'object' || entries === null) continue;
      for (const [key, v] of Object.entries(entries as Record<string, unknown>)) {
        const where = describeOverride(section, key);
        walk(v as JsonOverrideValue, (s) => uses.push({ secret: s, configFile, where }));
      }
    }
  }
  return uses;
}

function walk(v: JsonOverrideValue, found: (s: Secret) => void): void {
  if (v instanceof Secret) found(v);
  else if (Array.isArray(v)) v.forEach((x) => walk(x, found));
  else if (typeof v === 'object' && v !== null) Object.values(v).forEach((x) => walk(x, found));
}

function secretId(s: Secret): string {
  return `${s.name}\u0000${s.file ?? ''}`;
}

/** The resolved values of the secrets of one or more sets of overrides. */
export class ResolvedSecrets {
  readonly masker: Masker;
  private readonly values: ReadonlyMap<string, string>;
  constructor(values: ReadonlyMap<string, string>) {
    this.values = values;
    this.masker = new Masker(values.values());
  }
  /** The value of a secret; throws if it was not among the resolved ones (a programming error). */
  value(s: Secret): string {
    const v = this.values.get(secretId(s));
    if (v === undefined) throw new Error(`${s} was not resolved: call resolveSecrets() on the overrides being rendered`);
    return v;
  }
  get size(): number {
    return this.values.size;
  }
  /**
   * Every string a log line must not show: each value in each escaped form it can take in a
   * rendered file. Feed these to `Reporter.addSecret`.
   */
  formsToMask(): string[] {
    const out = new Set<string>();
    for (const v of this.values.values()) for (const f of writtenForms(v)) out.add(f);
    return [...out];
  }
  /** No secrets (for overrides that use none). */
  static readonly none = new ResolvedSecrets(new Map());
}

/**
 * Stand-in values (`<secret NAME>`) for every secret of the overrides: lets `config-check` render
 * an environment where the secrets are not available (e.g. the CI of the systems team's
 * repository) and still find every other error.
 */
export function placeholderSecrets(overrides: ConfigOverrides | readonly ConfigOverrides[]): ResolvedSecrets {
  const sets = (Array.isArray(overrides) ? overrides : [overrides]) as readonly ConfigOverrides[];
  const values = new Map<string, string>();
  for (const set of sets) for (const u of collectSecrets(set)) values.set(secretId(u.secret), `<secret ${u.secret.name}>`);
  return new ResolvedSecrets(values);
}

export interface MissingSecret {
  name: string;
  /** Why it could not be resolved (which sources were tried). */
  reason: string;
  usedBy: { configFile: string; where: string }[];
}

export class MissingSecretsError extends SwitchyardError {
  override name = 'MissingSecretsError';
  constructor(readonly missing: readonly MissingSecret[], envFile?: string) {
    const lines = missing.map(
      (m) => `${m.name}: ${m.reason}; used by ${m.usedBy.map((u) => `${u.configFile} ${u.where}`).join(', ')}`,
    );
    super(
      `${missing.length} secret${missing.length === 1 ? ' is' : 's are'} missing${envFile ? ` for ${envFile}` : ''}` +
        ` (nothing is uploaded until they are set):\n  ${lines.join('\n  ')}`,
    );
  }
}

export interface ResolveSecretsOptions {
  /** Defaults to process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Defaults to env.SWITCHYARD_SECRETS_FILE. Relative paths resolve against `cwd`. */
  secretsFile?: string;
  /** For relative secrets-file paths; defaults to process.cwd(). */
  cwd?: string;
  /** Named in the error message. */
  envFile?: string;
}

/**
 * Resolves every secret used by the overrides (one set, or several — e.g. every host of an
 * environment, so that one call checks all before anything is uploaded). Throws ONE
 * {@link MissingSecretsError} that lists every missing secret and where each is used.
 */
export function resolveSecrets(overrides: ConfigOverrides | readonly ConfigOverrides[], o: ResolveSecretsOptions = {}): ResolvedSecrets {
  const env = o.env ?? process.env;
  const cwd = o.cwd ?? process.cwd();
  const defaultFile = o.secretsFile ?? (env.SWITCHYARD_SECRETS_FILE || undefined);
  const sets = (Array.isArray(overrides) ? overrides : [overrides]) as readonly ConfigOverrides[];

  const uses = new Map<string, { secret: Secret; usedBy: { configFile: string; where: string }[] }>();
  for (const set of sets) {
    for (const u of collectSecrets(set)) {
      const id = secretId(u.secret);
      const entry = uses.get(id) ?? { secret: u.secret, usedBy: [] };
      if (!entry.usedBy.some((x) => x.configFile === u.configFile && x.where === u.where)) {
        entry.usedBy.push({ configFile: u.configFile, where: u.where });
      }
      uses.set(id, entry);
    }
  }

  const files = new Map<string, SecretsFile>();
  const fileFor = (f: string): SecretsFile => {
    const abs = resolvePath(cwd, f.startsWith('~/') ? homedir() + f.slice(1) : f);
    let sf = files.get(abs);
    if (!sf) files.set(abs, (sf = loadSecretsFile(abs)));
    return sf;
  };

  const values = new Map<string, string>();
  const missing: MissingSecret[] = [];
  const problems: string[] = [];
  for (const [id, { secret: s, usedBy }] of uses) {
    const fromEnv = env[s.name];
    if (fromEnv !== undefined && fromEnv !== '') {
      values.set(id, fromEnv);
      continue;
    }
    const fileName = s.file ?? defaultFile;
    let reason = `not set in the environment`;
    if (fileName === undefined) {
      reason += ' and no secrets file (set SWITCHYARD_SECRETS_FILE or use secret(name, { file }))';
    } else {
      const sf = fileFor(fileName);
      if (sf.error) {
        reason += ` and the secrets file ${sf.path} ${sf.error}`;
        if (sf.fatal) problems.push(`secrets file ${sf.path}: ${sf.error}`);
      } else {
        const v = sf.values.get(s.name);
        if (v !== undefined && v !== '') {
          values.set(id, v);
          continue;
        }
        reason += v === '' ? ` and empty in ${sf.path}` : ` nor in ${sf.path}`;
      }
    }
    missing.push({ name: s.name, reason, usedBy });
  }
  if (problems.length) throw new Error([...new Set(problems)].join('\n'));
  if (missing.length) throw new MissingSecretsError(missing, o.envFile);
  return new ResolvedSecrets(values);
}

interface SecretsFile {
  path: string;
  values: Map<string, string>;
  error?: string;
  /** A malformed file is an error on its own; a missing one is reported with the secrets. */
  fatal?: boolean;
}

function loadSecretsFile(path: string): SecretsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { path, values: new Map(), error: code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(e)})` };
  }
  try {
    return { path, values: parseSecretsFile(text) };
  } catch (e) {
    return { path, values: new Map(), error: (e as Error).message, fatal: true };
  }
}

/** Parses the secrets file format described at the top of this module. */
export function parseSecretsFile(text: string): Map<string, string> {
  const values = new Map<string, string>();
  const definedAt = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((line, i) => {
    const n = i + 1;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(trimmed);
    if (!m) throw new Error(`line ${n} is not NAME=value`);
    const name = m[1]!;
    const raw = m[2]!;
    let value: string;
    if (raw.startsWith('"')) {
      try {
        const parsed: unknown = JSON.parse(raw);
        if (typeof parsed !== 'string') throw new Error();
        value = parsed;
      } catch {
        throw new Error(`line ${n}: a double-quoted value must be one JSON string literal`);
      }
    } else if (raw.startsWith("'")) {
      if (raw.length < 2 || !raw.endsWith("'")) throw new Error(`line ${n}: unterminated single-quoted value`);
      value = raw.slice(1, -1);
    } else {
      value = raw;
    }
    const prev = definedAt.get(name);
    if (prev !== undefined) throw new Error(`${name} is defined twice (lines ${prev} and ${n})`);
    definedAt.set(name, n);
    values.set(name, value);
  });
  return values;
}

// ---- app.env: the app's variables, secrets among them ------------------------------------------

/**
 * A plain (not secret) app.env value shorter than this is not masked: masking `1` or `on` would
 * blank out every pid, port and release id in the log. A secret is masked whatever its length.
 */
export const APP_ENV_MASK_MIN = 4;

export interface ResolveAppEnvOptions extends ResolveSecretsOptions {
  /** Gets every string to mask (`addSecret`), as renderForHosts registers the config secrets. */
  reporter?: { addSecret(value: string): void };
}

export interface ResolvedAppEnv {
  /** Name → value, every secret resolved. */
  values: Record<string, string>;
  /**
   * What no output may show: each secret's value and each plain value of APP_ENV_MASK_MIN
   * characters or more, in every form switchyard writes, and each line of a multi-line one (an
   * app's log comes back line by line). For `Reporter.addSecret` and a {@link Masker}.
   */
  toMask: string[];
}

/**
 * app.env (lib/environment/schema.ts) with every `secret('NAME')` resolved exactly as config
 * secrets are ({@link resolveSecrets}: the environment variable, else the secrets file), on the
 * deploying machine, before anything is uploaded. Throws ONE {@link MissingSecretsError} naming
 * every missing secret and its variable (`used by app.env "API_KEY"`), or an error when a value
 * holds a NUL byte (no environment variable can). With `o.reporter`, registers `toMask` there.
 */
export function resolveAppEnv(appEnv: Readonly<Record<string, string | Secret>>, o: ResolveAppEnvOptions = {}): ResolvedAppEnv {
  const secrets = Object.fromEntries(Object.entries(appEnv).filter(([, v]) => v instanceof Secret));
  let resolved = ResolvedSecrets.none;
  if (Object.keys(secrets).length) {
    try {
      // one stand-in config file, so that the same rules and messages apply; a use there is `json "KEY"`
      resolved = resolveSecrets({ 'app.env': { json: secrets } }, o);
    } catch (e) {
      if (!(e instanceof MissingSecretsError)) throw e;
      const missing = e.missing.map((m) => ({ ...m, usedBy: m.usedBy.map((u) => ({ configFile: 'app.env', where: u.where.replace(/^json /, '') })) }));
      throw new MissingSecretsError(missing, o.envFile);
    }
  }
  const values: Record<string, string> = {};
  const toMask = new Set<string>();
  for (const [name, v] of Object.entries(appEnv)) {
    const value = v instanceof Secret ? resolved.value(v) : v;
    if (value.includes('\0')) throw new SwitchyardError(`app.env.${name}: the value${v instanceof Secret ? ` of ${v}` : ''} holds a NUL byte, which no environment variable can`);
    values[name] = value;
    if (!(v instanceof Secret) && value.length < APP_ENV_MASK_MIN) continue;
    for (const f of writtenForms(value)) toMask.add(f);
    const lines = value.split(/\r?\n/).filter((l) => l.length >= APP_ENV_MASK_MIN);
    if (lines.length > 1) for (const l of lines) toMask.add(l);
  }
  const r = { values, toMask: [...toMask] };
  if (o.reporter) for (const f of r.toMask) o.reporter.addSecret(f);
  return r;
}

/** A copy of a JSON-like value (a release report) with every string in it masked. */
export function maskStrings<T>(value: T, masker: Masker): T {
  if (typeof value === 'string') return masker.mask(value) as T;
  if (Array.isArray(value)) return value.map((x: unknown) => maskStrings(x, masker)) as T;
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, maskStrings(x, masker)])) as T;
  return value;
}
