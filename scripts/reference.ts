// Usage: npm run docs               (node -r esbuild-register scripts/reference.ts)
//        npm run docs -- --check    (CI: is the committed file up to date?)
//
// Writes docs/ENVIRONMENT.md, the reference of every environment file key, from the schema in
// lib/environment/schema.ts (lib/environment/reference.ts renders it). With --check nothing is
// written: the committed file is compared with what the schema gives.
// Exit codes: 0 written, or (--check) up to date; 1 (--check) docs/ENVIRONMENT.md is missing or
// differs from the schema; 2 usage error.
import fs from 'node:fs';
import path from 'node:path';
import { environmentReference } from '../lib/environment/reference';

const FILE = path.resolve(__dirname, '..', 'docs', 'ENVIRONMENT.md');
const SHOWN = path.relative(process.cwd(), FILE) || FILE;

/** The first line where the committed file and the rendered reference part, for the message. */
function firstDifference(committed: string, wanted: string): string {
  const a = committed.split('\n');
  const b = wanted.split('\n');
  const i = a.findIndex((line, n) => line !== b[n]);
  const at = i === -1 ? a.length : i;
  return `line ${at + 1}: committed ${JSON.stringify(a[at] ?? '(end of file)')}, schema gives ${JSON.stringify(b[at] ?? '(end of file)')}`;
}

function check(wanted: string): number {
  if (!fs.existsSync(FILE)) {
    console.error(`${SHOWN} does not exist: run \`npm run docs\` and commit it`);
    return 1;
  }
  const committed = fs.readFileSync(FILE, 'utf8').replace(/\r\n/g, '\n');
  if (committed === wanted) {
    console.log(`${SHOWN} is up to date`);
    return 0;
  }
  console.error(`${SHOWN} is out of date with lib/environment/schema.ts (${firstDifference(committed, wanted)}): run \`npm run docs\` and commit it`);
  return 1;
}

function main(args: string[]): number {
  const unknown = args.filter((a) => a !== '--check');
  if (unknown.length) {
    console.error(`usage: npm run docs [-- --check]  (unknown argument ${unknown[0]})`);
    return 2;
  }
  const wanted = environmentReference();
  if (args.includes('--check')) return check(wanted);
  fs.writeFileSync(FILE, wanted);
  console.log(`${SHOWN}: written (${wanted.split('\n').length - 1} lines)`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
