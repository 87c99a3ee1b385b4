// Usage: node scripts/checks.mjs   (the first half of `npm test`, before vitest)
//
// The type check (tsc --noEmit), shellcheck of the remote scripts and the package build, run at
// the same time: they read the same sources and write nothing the others read, and one after
// another they cost ~32 s of CI's 10-minute budget, ~17 s together on 2 cores. Each one's output
// is printed whole when it ends, under its name. Exit codes: 0 all passed; 1 any failed (each
// failure is named).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const scripts = fs
  .readdirSync(path.join(root, 'remote-scripts'))
  .filter((f) => f.endsWith('.sh'))
  .map((f) => path.join('remote-scripts', f));
const checks = [
  ['tsc --noEmit', process.execPath, [tsc, '--noEmit']],
  ['shellcheck -S style remote-scripts/*.sh', 'shellcheck', ['-S', 'style', '--', ...scripts]],
  ['npm run build', process.execPath, [path.join(root, 'scripts', 'build.mjs')]],
];

/** Runs one check; resolves with its name, exit code and everything it printed. */
function run([name, cmd, args]) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', (e) => resolve({ name, code: 127, out: `${out}${e.message}\n` }));
    p.on('close', (code, signal) => resolve({ name, code: code ?? 128, out: signal ? `${out}killed by ${signal}\n` : out }));
  });
}

const results = await Promise.all(checks.map(run));
for (const r of results) {
  process.stdout.write(`${r.code === 0 ? 'ok' : 'FAILED'}: ${r.name}\n${r.out}`);
}
const failed = results.filter((r) => r.code !== 0);
if (failed.length) {
  process.stderr.write(`checks failed: ${failed.map((r) => `${r.name} (exit ${r.code})`).join(', ')}\n`);
  process.exit(1);
}
