// npm run soak [-- --cycles=50 --hosts=2 --concurrency=100]
//
// 50 deploys, 10 rollbacks and 5 restarts in a row (a rollback after every 5th deploy, a restart
// after every 10th) through the SSH lab under continuous load (keep-alive on for the first half,
// off for the second), checking after every step that processes, sockets, descriptors and release
// directories stay bounded on every host (bench/soak-run.ts). --cycles=N: N deploys, N/5
// rollbacks, N/10 restarts (at least one each). Prints the figures; writes them to
// reports/soak-<date>.json. Exit 1 when a check failed, a step failed or any request failed.
// Ctrl-C stops after the current step (again: at once).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO } from '../test/support/lab-env';
import { formatSoak, runSoak, SoakFailedError, type SoakResult } from './soak-run';

const usage = (msg: string): never => {
  process.stderr.write(`soak: ${msg}\nnpm run soak -- [--cycles=50] [--hosts=2] [--concurrency=100]\n`);
  process.exit(2);
};
const options = {
  cycles: { type: 'string', default: '50' },
  hosts: { type: 'string', default: '2' },
  concurrency: { type: 'string', default: '100' },
  help: { type: 'boolean', default: false },
} as const;
let flags: ReturnType<typeof parseArgs<{ options: typeof options; strict: true }>>['values'];
try {
  flags = parseArgs({ options, strict: true }).values;
} catch (e) {
  flags = usage(e instanceof Error ? e.message : String(e));
}
if (flags.help) {
  process.stdout.write('npm run soak -- [--cycles=50] [--hosts=2] [--concurrency=100]\n  --cycles  deploys (rollbacks: cycles/5, restarts: cycles/10, at least one each)\n');
  process.exit(0);
}
const int = (name: string, v: string | undefined, min: number) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) usage(`--${name}: a whole number ≥ ${min}, got ${v}`);
  return n;
};
const cycles = int('cycles', flags.cycles, 1);
const hosts = int('hosts', flags.hosts, 1);
const concurrency = int('concurrency', flags.concurrency, hosts);

const ac = new AbortController();
const onSignal = (sig: NodeJS.Signals) => {
  if (ac.signal.aborted) process.exit(130);
  process.stderr.write(`\nsoak: ${sig}: stopping after the current step (again to quit at once)\n`);
  ac.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

function write(r: SoakResult): string {
  const file = path.join(REPO, 'reports', `soak-${r.startedAt.replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ options: { cycles, hosts, concurrency }, ...r }, null, 2) + '\n');
  return path.relative(process.cwd(), file);
}

async function main(): Promise<number> {
  let r: SoakResult;
  try {
    r = await runSoak({ cycles, hosts, concurrency, signal: ac.signal, log: (l) => process.stderr.write(`${l}\n`) });
  } catch (e) {
    if (!(e instanceof SoakFailedError)) throw e;
    process.stderr.write(`\n${e.message}\n\n`);
    r = e.result;
  }
  process.stdout.write(`${formatSoak(r)}\nfigures: ${write(r)}\n`);
  return r.ok && r.failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`soak: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
