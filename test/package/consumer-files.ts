// The files of the consumer project test/package/consumer.test.ts installs the packed package into:
// what a user of gulp-switchyard writes. Three gulpfiles (CommonJS, ESM, TypeScript through
// esbuild-register), each with the user's own build step chained before switchyard's deploy.
import type { EnvironmentInput } from '../../lib/environment';

/** The user's build, the same in each gulpfile: the app into dist-app/, or a failure with FAIL_BUILD=1. */
const BUILD_BODY = `
  if (process.env.FAIL_BUILD === '1') throw new Error('the build failed (FAIL_BUILD=1)');
  fs.rmSync('dist-app', { recursive: true, force: true });
  fs.mkdirSync('dist-app');
  fs.copyFileSync('app-src/server.js', 'dist-app/server.js');
  fs.writeFileSync('dist-app/build.txt', process.env.BUILD_ID || 'dev');`;

export const GULPFILE_CJS = `// A CommonJS gulpfile: the user's build, then switchyard's deploy.
const fs = require('node:fs');
const { series } = require('gulp');
const { deployTask, parseFlags } = require('gulp-switchyard');

const flags = parseFlags(process.argv.slice(2));

async function build() {${BUILD_BODY}
}
build.description = 'Build the app into dist-app/';

exports.build = build;
exports.deploy = deployTask(flags);
exports.release = series(build, exports.deploy);
`;

export const GULPFILE_ESM = `// An ESM gulpfile: every switchyard task, and the user's release = build, then deploy.
import fs from 'node:fs';
import gulp from 'gulp';
import { createTasks, parseFlags } from 'gulp-switchyard';

const tasks = createTasks(parseFlags(process.argv.slice(2)));
for (const [name, fn] of Object.entries(tasks)) gulp.task(name, fn);

export async function build() {${BUILD_BODY}
}

export const release = gulp.series(build, tasks.deploy);
`;

export const GULPFILE_TS = `// A TypeScript gulpfile (gulp loads it through esbuild-register), type-checked by tsc --strict.
import fs from 'node:fs';
import { series } from 'gulp';
import { deployTask, parseFlags, remoteTask, statusTask, type Flags, type StepResult, type Task } from 'gulp-switchyard';

const flags: Flags = parseFlags(process.argv.slice(2));

export async function build(): Promise<void> {${BUILD_BODY}
}

export const deploy: Task = deployTask(flags);
export const status: Task = statusTask(flags);
export const whoami: Task = remoteTask('whoami', 'Print the live release of each app host', flags, async (s) => {
  const results: StepResult[] = await s.run({ role: 'app' }, ['cat', '.switchyard/live'], { cwd: (h) => h.deployTo ?? '.' });
  for (const r of results) console.log(\`live on \${r.host}: \${r.stdout.split(' ')[0]}\`);
});
export const release = series(build, deploy);
`;

/** gulp 5 ships no types; a consumer states the little it uses, so no @types package from switchyard's devDependencies is present. */
export const GULP_TYPES = `declare module 'gulp' {
  type Done = (error?: unknown) => void;
  type TaskFunction = (done: Done) => void | Promise<unknown>;
  export function series(...tasks: TaskFunction[]): TaskFunction;
  export function parallel(...tasks: TaskFunction[]): TaskFunction;
  export function task(name: string, fn: TaskFunction): void;
}
`;

export const TSCONFIG = JSON.stringify(
  {
    compilerOptions: {
      target: 'ES2022',
      module: 'nodenext',
      moduleResolution: 'nodenext',
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      types: ['node'],
    },
    files: ['gulpfile.ts', 'env/lab.ts', 'types/gulp.d.ts'],
  },
  null,
  2,
);

export function envFile(input: EnvironmentInput): string {
  return [
    '// A lab host (test/package/consumer.test.ts): the environment file as a user writes it.',
    "import { defineEnvironment } from 'gulp-switchyard';",
    '',
    `export default defineEnvironment(${JSON.stringify(input, null, 2)});`,
    '',
  ].join('\n');
}

export function packageJson(tarball: string, devDependencies: Record<string, string>): string {
  return JSON.stringify(
    {
      name: 'consumer-app',
      version: '1.0.0',
      private: true,
      description: 'A project that uses gulp-switchyard from its tarball',
      scripts: { ship: 'switchyard deploy --env=lab' },
      dependencies: { 'gulp-switchyard': `file:${tarball}` },
      devDependencies,
    },
    null,
    2,
  );
}
