#!/usr/bin/env node
// switchyard <task> [flags]: the same tasks and flags as the gulp tasks, for builds that do not use
// gulp (npm scripts, make, CI). Exit codes: 0 done; 1 the task failed; 2 a usage error (unknown
// task or flag, a bad value), before anything is loaded or any host is reached.
// First: every module loaded after it comes from V8's code cache when it can (lib/code-cache.ts).
import { enableCodeCache } from '../lib/code-cache';
enableCodeCache();
import { nearest } from '../lib/nearest';
import { CATALOG, type TaskName } from '../tasks/plumbing/catalog';
import { FLAGS, FlagError, parseFlags, type FlagName, type FlagSpec } from '../tasks/plumbing/flags';
import { commandHelp, generalHelp, packageVersion, taskHelp } from '../tasks/plumbing/help';

/** Runs one built-in task; the task modules load only now, after the command line was checked. */
async function runTask(name: TaskName, argv: string[]): Promise<void> {
  // one task a run: another word (`switchyard deploy uat`) would otherwise be ignored, and deploy local
  const stray = argv.filter((a) => !a.startsWith('-'));
  // `--env uat`: the value of a flag written as gulp takes it; switchyard takes --flag=value only
  const takesValue = (a: string | undefined) => {
    const spec = FLAGS[a as FlagName] as FlagSpec | undefined;
    return spec !== undefined && spec.type !== 'boolean';
  };
  const spaced = argv.findIndex((a, i) => !a.startsWith('-') && takesValue(argv[i - 1]));
  if (spaced > 0) throw new FlagError([`${argv[spaced - 1]} ${argv[spaced]}: write ${argv[spaced - 1]}=${argv[spaced]} (switchyard takes --flag=value)`]);
  if (stray.length) throw new FlagError([`${stray.join(' ')}: not a flag; switchyard runs one task: switchyard ${name} [--flag=value …] (--env=<name> picks the environment)`]);
  if (argv.includes('--')) throw new FlagError([`--: switchyard ${name} takes flags only`]);
  const flags = parseFlags([name, ...argv], process.env, { gulp: false });
  const { createTasks } = require('../index') as typeof import('../index');
  await createTasks(flags)[name]();
}

async function main(argv: string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h') return void process.stdout.write(generalHelp());
  if (first === '--version' || first === '-v') return void process.stdout.write(`${packageVersion()}\n`);
  if (first === 'help') {
    const topic = rest[0];
    if (topic === undefined) return void process.stdout.write(generalHelp());
    if (topic === 'init') return void process.stdout.write(commandHelp('init'));
    if (!(topic in CATALOG)) throw new FlagError([unknownTask(topic)]);
    return void process.stdout.write(taskHelp(topic as TaskName));
  }
  if (first === 'init') {
    const { init } = require('../tasks/plumbing/init') as typeof import('../tasks/plumbing/init');
    return init(rest);
  }
  if (first.startsWith('-')) throw new FlagError([`${first}: put the task first: switchyard <task> [flags] (switchyard --help lists them)`]);
  if (!(first in CATALOG)) throw new FlagError([unknownTask(first)]);
  if (rest.includes('--help') || rest.includes('-h')) return void process.stdout.write(taskHelp(first as TaskName));
  await runTask(first as TaskName, rest);
}

function unknownTask(name: string): string {
  const guess = nearest(name, [...Object.keys(CATALOG), 'init', 'help']);
  return `${name}: unknown task${guess ? `; did you mean ${guess}?` : ''} (switchyard --help lists them)`;
}

// `switchyard --help | head`: the reader went away, which is no failure of ours
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

// No process.exit on success: output to a pipe is flushed first, and a task leaves nothing open.
main(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`switchyard: ${e.message}\n`);
  process.exitCode = e instanceof FlagError ? 2 : 1;
});
