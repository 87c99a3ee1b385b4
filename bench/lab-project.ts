// What bench/execs.ts and bench/cpu-split.ts share: a project of its own (examples/hello as its
// build, an env/bench.ts naming the lab) deployed with the built command, and a process's CPU.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Lab } from '../test/support/lab';
import { labEnvInput, REPO } from '../test/support/lab-env';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

export function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stderr}${r.stdout}`);
}

/** utime + stime + cutime + cstime of pid, in clock ticks (/proc/PID/stat). */
export function cpuTicks(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
}

/**
 * The package in the project's node_modules, as an install leaves it (here a link to this
 * checkout, as `npm link` makes one): a user's project has a node_modules, and the compiled
 * environment file is cached there (lib/environment/compile-cache.ts), so a bench project
 * without one would pay esbuild's ~50 ms on every run that no user pays.
 */
export function linkPackage(project: string): void {
  fs.mkdirSync(path.join(project, 'node_modules'), { recursive: true });
  fs.symlinkSync(REPO, path.join(project, 'node_modules', 'gulp-switchyard'));
}

/**
 * <tmp>/project: examples/hello as `app`, env/bench.ts on the lab; set up, cold-deployed and
 * deployed once (a previous release, as every later deploy has). Returns the project and `sy`,
 * which runs the command `bin` there with --env=bench.
 */
export function labProject(lab: Lab, tmp: string, name: string, bin: string): { project: string; sy: (...args: string[]) => void } {
  const project = path.join(tmp, 'project');
  fs.mkdirSync(path.join(project, 'env'), { recursive: true });
  fs.cpSync(path.join(REPO, 'examples', 'hello'), path.join(project, 'app'), { recursive: true, filter: (s) => path.basename(s) !== '.switchyard' });
  fs.writeFileSync(path.join(project, 'package.json'), `{"name":${JSON.stringify(name)},"private":true}\n`);
  linkPackage(project);
  const env = { ...labEnvInput(lab), build: { dir: 'app' } };
  fs.writeFileSync(path.join(project, 'env', 'bench.ts'), `import { defineEnvironment } from 'gulp-switchyard';\nexport default defineEnvironment(${JSON.stringify(env)});\n`);
  const sy = (...a: string[]) => run(process.execPath, [bin, ...a, '--env=bench'], project);
  sy('setup');
  sy('cold-deploy');
  sy('deploy');
  return { project, sy };
}
