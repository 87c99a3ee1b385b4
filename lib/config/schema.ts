/**
 * The `config` field of an environment file and of a host entry: for each config file of the
 * build (path relative to the build, POSIX separators), the overrides to apply. See
 * docs/CONFIG.md for the user-facing syntax.
 */
import { posix } from 'node:path';
import type { z } from 'zod';
import { lazy } from '../lazy';
import { Secret } from './secrets';
import { formatJsonPath, JsonPathSyntaxError, parseJsonPath } from './jsonpath';

/** A value written into an XML config file: numbers and booleans are written with String(). */
export type Value = string | number | boolean | Secret;
/** `appSettings` / `connectionStrings` entry; `add: true` creates the `<add>` element if missing. */
export interface KeyOverride {
  value: Value;
  add?: boolean;
}
/** `xpath` entry; `all: true` allows the expression to select more than one node (all are set). */
export interface XpathOverride {
  value: Value;
  all?: boolean;
}
export interface XmlFileOverrides {
  appSettings?: Record<string, Value | KeyOverride>;
  connectionStrings?: Record<string, Value | KeyOverride>;
  xpath?: Record<string, Value | XpathOverride>;
  /** Prefix → namespace URI, for the `xpath` expressions of this file. */
  namespaces?: Record<string, string>;
}
/** A JSON value, where any string may instead be a secret (it is written as a JSON string). */
export type JsonOverrideValue =
  | string
  | number
  | boolean
  | null
  | Secret
  | JsonOverrideValue[]
  | { [key: string]: JsonOverrideValue };
export interface JsonFileOverrides {
  /** Key path → value; the path must exist in the file. */
  json?: Record<string, JsonOverrideValue>;
  /** Key path → value; created if missing (missing parent objects too), set if present. */
  add?: Record<string, JsonOverrideValue>;
}
export type FileOverrides = XmlFileOverrides | JsonFileOverrides;
/** Config file path (relative to the build) → overrides. */
export type ConfigOverrides = Record<string, FileOverrides>;

/** JSON files are recognised by their extension; every other config file is XML. */
export function isJsonConfigFile(path: string): boolean {
  return /\.json$/i.test(path);
}

/** zod (what switchyard uses of it: lib/vendor/zod.ts), loaded on first use (start-up: listing tasks or printing help never validates). */
export const zod = lazy(() => require('../vendor/zod') as typeof import('../vendor/zod'));

function jsonPathProblem(p: string): string | undefined {
  try {
    parseJsonPath(p);
    return undefined;
  } catch (e) {
    if (!(e instanceof JsonPathSyntaxError)) throw e;
    return e.message;
  }
}

/** The schemas of the `config` field, built on first use. */
function buildConfigSchemas() {
  const { z } = zod();
  /** A record whose keys are checked by `keyProblem` (zod's own key errors lose the message). */
  const recordOf = <T extends z.ZodType>(value: T, keyProblem: (key: string) => string | undefined) => {
    return z.record(z.string(), value).superRefine((rec, ctx) => {
      for (const key of Object.keys(rec)) {
        const problem = keyProblem(key);
        if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [key], input: key });
      }
    });
  }

  const secretSchema = z.instanceof(Secret, { message: 'expected a secret(...)' });
  const valueSchema = z.union([secretSchema, z.string(), z.number(), z.boolean()], {
    message: 'expected a string, number, boolean or secret(...)',
  });

  const keyOverrideSchema = z.union([valueSchema, z.strictObject({ value: valueSchema, add: z.boolean().optional() })], {
    message: 'expected a value (string, number, boolean, secret(...)) or { value, add?: boolean }',
  });
  const xpathOverrideSchema = z.union([valueSchema, z.strictObject({ value: valueSchema, all: z.boolean().optional() })], {
    message: 'expected a value (string, number, boolean, secret(...)) or { value, all?: boolean }',
  });

  const notEmpty = (what: string) => (k: string) => (k === '' ? `${what} must not be empty` : undefined);

  const xmlFileOverridesSchema = z.strictObject({
    appSettings: recordOf(keyOverrideSchema, notEmpty('an appSettings key')).optional(),
    connectionStrings: recordOf(keyOverrideSchema, notEmpty('a connectionStrings name')).optional(),
    xpath: recordOf(xpathOverrideSchema, notEmpty('an XPath expression')).optional(),
    namespaces: recordOf(z.string().min(1, 'a namespace URI must not be empty'), (k) =>
      /^[A-Za-z_][\w.-]*$/.test(k) ? undefined : `namespace prefix ${JSON.stringify(k)} must be an XML NCName (e.g. "asm")`,
    ).optional(),
  });

  const jsonOverrideValueSchema: z.ZodType<JsonOverrideValue> = z.lazy(() =>
    z.union([
      secretSchema,
      z.string(),
      z.number(),
      z.boolean(),
      z.null(),
      z.array(jsonOverrideValueSchema),
      z.record(z.string(), jsonOverrideValueSchema),
    ]),
  );

  const jsonFileOverridesSchema = z.strictObject({
    json: recordOf(jsonOverrideValueSchema, jsonPathProblem).optional(),
    add: recordOf(jsonOverrideValueSchema, jsonPathProblem).optional(),
  });

  /**
   * Validates the `config` value of an environment file or host entry. Each file's overrides are
   * checked against the XML or the JSON shape, chosen by the file's extension. Unknown keys are
   * errors.
   */
  const configOverridesSchema = z.record(z.string(), z.unknown()).transform((rec, ctx): ConfigOverrides => {
    const out: ConfigOverrides = {};
    for (const [file, value] of Object.entries(rec)) {
      const bad = configPathProblem(file);
      if (bad) {
        ctx.addIssue({ code: 'custom', message: `${bad}: ${JSON.stringify(file)}`, path: [file], input: value });
        continue;
      }
      const schema = isJsonConfigFile(file) ? jsonFileOverridesSchema : xmlFileOverridesSchema;
      const r = schema.safeParse(value);
      if (!r.success) {
        for (const issue of r.error.issues) {
          let message = issue.message;
          if (issue.code === 'unrecognized_keys') {
            const section = issue.path[0];
            message +=
              issue.path.length === 0
                ? isJsonConfigFile(file)
                  ? ' (a .json config file takes { json, add })'
                  : ' (an XML config file takes { appSettings, connectionStrings, xpath, namespaces })'
                : section === 'xpath'
                  ? ' (an xpath entry takes { value, all })'
                  : ' (an entry takes { value, add })';
          }
          ctx.addIssue({ code: 'custom', message, path: [file, ...issue.path], input: value });
        }
        continue;
      }
      out[file] = r.data as FileOverrides;
    }
    return out;
  });
  return { xmlFileOverridesSchema, jsonOverrideValueSchema, jsonFileOverridesSchema, configOverridesSchema };
}

export const configSchemas = lazy(buildConfigSchemas);

/**
 * Validates the `config` value of an environment file or host entry. Each file's overrides are
 * checked against the XML or the JSON shape, chosen by the file's extension. Unknown keys are
 * errors.
 */
export const configOverridesSchema = () => configSchemas().configOverridesSchema;

/** Why `path` is not acceptable as a config file path, or undefined if it is. */
export function configPathProblem(path: string): string | undefined {
  if (path === '') return 'config file path must not be empty';
  if (path.includes('\\')) return 'config file path must use "/" separators';
  if (path.startsWith('/')) return 'config file path must be relative to the build';
  if (path.split('/').includes('..')) return 'config file path must not contain ".."';
  if (posix.normalize(path) !== path || path.endsWith('/')) return `config file path must be normalised (${posix.normalize(path)})`;
  return undefined;
}

function isPlainRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Secret);
}

/**
 * Host-level overrides on top of environment-level ones: per file and per key, the host wins.
 * `namespaces` merge per prefix. For JSON files a path set by the host in `json` or `add`
 * replaces the environment's setting of that path in either.
 */
export function mergeOverrides(envLevel?: ConfigOverrides, hostLevel?: ConfigOverrides): ConfigOverrides {
  const out: ConfigOverrides = {};
  for (const [file, o] of Object.entries(envLevel ?? {})) out[file] = cloneFile(o);
  for (const [file, host] of Object.entries(hostLevel ?? {})) {
    const base = out[file];
    if (!base) {
      out[file] = cloneFile(host);
      continue;
    }
    const merged: Record<string, Record<string, unknown>> = {};
    const b = base as Record<string, Record<string, unknown> | undefined>;
    const h = host as Record<string, Record<string, unknown> | undefined>;
    for (const section of new Set([...Object.keys(b), ...Object.keys(h)])) {
      merged[section] = { ...(b[section] ?? {}), ...(h[section] ?? {}) };
    }
    if (isJsonConfigFile(file)) {
      // a path the host sets (in `json` or `add`, however spelled) replaces the environment's setting of it
      const canon = (p: string) => formatJsonPath(parseJsonPath(p));
      const hostPaths = new Set([...Object.keys(h.json ?? {}), ...Object.keys(h.add ?? {})].map(canon));
      for (const section of ['json', 'add'] as const) {
        for (const p of Object.keys(b[section] ?? {})) {
          if (merged[section] && !(p in (h[section] ?? {})) && hostPaths.has(canon(p))) delete merged[section][p];
        }
      }
    }
    out[file] = merged as FileOverrides;
  }
  return out;
}

function cloneFile(o: FileOverrides): FileOverrides {
  const r: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) r[k] = isPlainRecord(v) ? { ...v } : v;
  return r as FileOverrides;
}
