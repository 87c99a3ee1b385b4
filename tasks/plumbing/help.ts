// What `switchyard --help` and `switchyard help <task>` print, from the catalog and the flags table.
import fs from 'node:fs';
import path from 'node:path';
import { CATALOG, type TaskName } from './catalog';
import { FLAGS, type FlagName } from './flags';

/** The version in the package.json above this file, wherever the package is installed. */
export function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
    if (path.dirname(dir) === dir) return 'unknown';
  }
}

const COMMANDS = {
  init: {
    usage: 'switchyard init [--env=uat] [--env-dir=env] [--site=app.example.com]',
    description: 'Write a commented environment file env/<name>.ts to start from, and print the nginx server block to add',
    flags: {
      '--env': 'name of the environment file to write (default: uat)',
      '--env-dir': 'where to write it (default: $SWITCHYARD_ENV_DIR, then ./env)',
      '--site': 'the host name nginx sees (default: uat.example.com)',
    },
  },
} as const;

function columns(rows: [string, string][], indent = '  '): string {
  const width = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${indent}${a.padEnd(width)}  ${b}`).join('\n');
}

export function generalHelp(): string {
  const tasks = Object.entries(CATALOG).map(([n, t]) => [n, t.description] as [string, string]);
  tasks.push(['init', COMMANDS.init.description]);
  return [
    'Usage: switchyard <task> [flags]        (or, in a gulpfile: gulp <task> [flags])',
    '',
    'Tasks:',
    columns(tasks),
    '',
    'switchyard help <task>   every flag of a task, with its meaning and default',
    'switchyard --version     the installed version',
    '',
    'Exit codes: 0 done; 1 the task failed; 2 a usage error (nothing was loaded or changed).',
    '',
  ].join('\n');
}

export function taskHelp(name: TaskName): string {
  const t = CATALOG[name];
  const rows = t.flags.map((f: FlagName) => [flagUsage(f), `${FLAGS[f].help}${FLAGS[f].default ? ` (default: ${FLAGS[f].default})` : ''}`] as [string, string]);
  return [`Usage: switchyard ${name} [flags]`, '', t.description, '', 'Flags:', columns(rows), ''].join('\n');
}

export function commandHelp(name: keyof typeof COMMANDS): string {
  const c = COMMANDS[name];
  return [`Usage: ${c.usage}`, '', c.description, '', 'Flags:', columns(Object.entries(c.flags)), ''].join('\n');
}

function flagUsage(f: FlagName): string {
  const t = FLAGS[f].type;
  if (t === 'boolean') return `${f}, --no-${f.slice(2)}`;
  return `${f}=<${t === 'list' ? 'a,b' : t === 'string' ? 'value' : t === 'batch' ? 'n|n%' : 'n'}>`;
}
