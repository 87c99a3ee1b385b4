// Where a deploy's seconds go INSIDE the remote steps: a diagnostic for docs/BENCHMARK.md.
//
//   node -r esbuild-register bench/profile-steps.ts [--hosts=16] [--rtt=50] [--runs=2] [--grace=2]
//
// Runs deploys of examples/hello through a lab (in this process) with the remote scripts marked
// at their phase boundaries: every mark prints `T <label> <epoch> <cpu ticks>` on stderr, the
// ticks being the script's own plus its reaped children's CPU (/proc/$$/stat utime..cstime,
// read with builtins only, so the marks themselves fork nothing). The marks are inserted IN
// MEMORY (fs.readFileSync of remote-scripts/*.sh is wrapped): nothing on disk changes. When a
// script changes shape, the insertion fails loudly: update PATCHES below.
//
// Prints per step and segment the wall milliseconds and CPU milliseconds (median over hosts and
// runs), the segment named by the mark that ends it; "(start)" is from the client starting the
// step (prepare: the exec: channel, bash start; switch, retire: its word on release.sh's stdin) to
// the step's first line, "(to client)" from the last mark to the client seeing the step end.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { labFsLine } from './lab-fs';
import { reaperLine, underReaper } from './reaper';

const SCRIPTS = path.resolve(__dirname, '..', 'remote-scripts');
const MARK = [
  'sy_mark() {',
  '  local l r; local -a w',
  '  { IFS= read -r l </proc/$BASHPID/stat; } 2>/dev/null || l=""',
  '  r=${l##*") "}; read -ra w <<<"$r"',
  '  printf "T %s %s %s\\n" "$1" "$EPOCHREALTIME" "$(( ${w[11]:-0} + ${w[12]:-0} + ${w[13]:-0} + ${w[14]:-0} ))" >&2',
  '}',
].join('\n');

// [script, pattern, replacement]: '$&' is the matched text.
const PATCHES: [string, RegExp, string][] = [
  ['lib.sh', /^set -euo pipefail$/m, `$&\n${MARK}`],
  ['lib.sh', /^  if \[\[ -n \$\{4:-\} \]\] && sy_owns_socket[^\n]*\n[^\n]*\n  fi\n/m, '  sy_mark stop-begin\n$&  sy_mark owns-socket-checked\n'],
  ['lib.sh', /^  SY_SIGNAL=TERM\n/m, '$&  sy_mark term-sent\n'],
  ['prepare.sh', /^sy_init prepare$/m, 'sy_mark begin\n$&'],
  ['prepare.sh', /^  if \[\[ -n \$DELTA \]\]; then prepare_delta; fi$/m, '  sy_mark locked\n$&\n  sy_mark have+linked'],
  ['prepare.sh', /^  if \(\(LINK_BYTES > 0\)\); then$/m, '  sy_mark package-read\n$&'],
  ['prepare.sh', /^  tar -xf "\$pkg" /m, '  sy_mark checked+linked\n$&'],
  ['prepare.sh', /^if \[\[ -z \$REUSE \]\]; then prepare_manifest; fi$/m, 'sy_mark unpacked\n$&\nsy_mark manifest'],
  ['prepare.sh', /^SY_STEP=shared$/m, 'sy_mark pidfile\n$&'],
  ['prepare.sh', /^  p=\$!$/m, '$&\n  sy_mark app-spawned'],
  ['prepare.sh', /^  SY_STEP=health$/m, '  sy_mark socket-up\n$&'],
  ['prepare.sh', /^prepare_record$/m, 'sy_mark healthy\n$&'],
  ['prepare.sh', /^prepare_done "\$\{PIDS\[0\]\}" "\$\{PIDS\[1\]\}"$/m, '$&\nsy_mark end'],
  ['switch.sh', /^sy_init switch$/m, 'sy_mark begin\n$&'],
  ['switch.sh', /^if \[\[ -z \$FILES_ONLY \]\]; then\n  \(\(\$\{#PID_W/m, 'sy_mark validated\n$&'],
  ['switch.sh', /^sy_emit switched "release=\$RELEASE" "previous=\$\{LIVE_R:-none\}"$/m, '$&\nsy_mark end'],
  ['retire.sh', /^sy_init retire$/m, 'sy_mark begin\n$&'],
  ['retire.sh', /^SY_STEP=retire$/m, 'sy_mark validated\n$&'],
  ['retire.sh', /^    sy_old_listener_wait "\$PREV_R"\n/m, '$&    sy_mark queue-empty\n'],
  ['retire.sh', /^SY_STEP=prune$/m, 'sy_mark old-gone\n$&'],
  ['retire.sh', /^SY_STEP=unlock$/m, 'sy_mark pruned\n$&'],
  ['retire.sh', /^sy_emit unlocked$/m, '$&\nsy_mark end'],
];

const readFileSync = fs.readFileSync;
const patched = new Set<string>();
(fs as { readFileSync: unknown }).readFileSync = function (this: unknown, file: unknown, ...rest: unknown[]) {
  const out = (readFileSync as (...a: unknown[]) => string | Buffer).call(fs, file, ...rest);
  if (typeof file !== 'string' || path.dirname(file) !== SCRIPTS) return out;
  const name = path.basename(file);
  let text = typeof out === 'string' ? out : out.toString('utf8');
  for (const [script, re, rep] of PATCHES) {
    if (script !== name) continue;
    const next = text.replace(re, (m) => rep.split('$&').join(m)); // no other $ patterns: the scripts are full of $
    if (next === text) throw new Error(`profile-steps: ${name} no longer matches ${re}: update PATCHES`);
    text = next;
  }
  patched.add(name);
  return typeof out === 'string' ? text : Buffer.from(text);
};

async function main(): Promise<void> {
  process.stderr.write(`${await reaperLine()}; ${labFsLine()}\n`);
  // Loaded after the wrapper (require, not import: imports would be hoisted above it), so the
  // scripts they read are the marked ones.
  const { validateEnvironment } = require('../lib/environment') as typeof import('../lib/environment');
  const { MemoryReporter } = require('../lib/output/reporter') as typeof import('../lib/output/reporter');
  const { setup } = require('../lib/servers/setup') as typeof import('../lib/servers/setup');
  const { deploy } = require('../lib/release/deploy') as typeof import('../lib/release/deploy');
  const { startLab } = require('../test/support/lab') as typeof import('../test/support/lab');
  const { labEnvInput, REPO } = require('../test/support/lab-env') as typeof import('../test/support/lab-env');
  type ReleaseEvent = import('../lib/release/flow').ReleaseEvent;

  const { values } = parseArgs({ options: { hosts: { type: 'string', default: '16' }, rtt: { type: 'string', default: '50' }, runs: { type: 'string', default: '2' }, grace: { type: 'string', default: '2' } } });
  const n = Number(values.hosts), rtt = Number(values.rtt), runs = Number(values.runs), grace = Number(values.grace);
  const lab = await startLab({ hosts: n });
  const stop = () => void lab.stop().finally(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const input = labEnvInput(lab, { over: { retire: { graceSeconds: grace, drainSeconds: 5 } } });
    await setup({ environment: validateEnvironment(input, { name: 'lab', file: 'env/lab.ts', root: REPO }), reporter: new MemoryReporter() });
    if (rtt > 0) for (const [i, h] of input.hosts.entries()) h.port = await lab.addDelayProxy(lab.hosts[i]!, rtt / 2);
    const env = validateEnvironment(input, { name: 'lab', file: 'env/lab.ts', root: REPO });
    await deploy({ environment: env, reporter: new MemoryReporter() }, 'cold-deploy');
    // step → segment → samples
    const wall = new Map<string, Map<string, number[]>>();
    const cpu = new Map<string, Map<string, number[]>>();
    const add = (m: Map<string, Map<string, number[]>>, step: string, seg: string, v: number) => {
      const s = m.get(step) ?? new Map<string, number[]>();
      m.set(step, s);
      s.set(seg, [...(s.get(seg) ?? []), v]);
    };
    const totals: number[] = [];
    for (let run = 0; run < runs; run++) {
      const rep = new MemoryReporter(true);
      const events: ReleaseEvent[] = [];
      const r = await deploy({ environment: env, reporter: rep, onEvent: (e) => events.push(e) });
      totals.push(r.seconds);
      for (const h of lab.hosts) {
        const marks = rep.lines
          .map((l) => /^\[(\S+)\] T (\S+) (\d+)\.(\d+) (\d+)$/.exec(l.line))
          .filter((m): m is RegExpExecArray => m !== null && m[1] === h.name)
          .map((m) => ({ label: m[2]!, t: Number(m[3]) * 1000 + Number(m[4]!.slice(0, 3)), ticks: Number(m[5]) }));
        let i = 0;
        for (const step of ['prepare', 'switch', 'retire'] as const) {
          const start = events.find((e) => e.host === h.name && e.step === step && e.at === 'start')?.time;
          const end = events.find((e) => e.host === h.name && e.step === step && e.at === 'end')?.time;
          if (start === undefined || end === undefined) continue;
          let lastT = start;
          let lastTicks: number | undefined;
          for (; i < marks.length; i++) {
            const m = marks[i]!;
            if (m.label === 'begin' && lastTicks !== undefined) break; // the next step's
            add(wall, step, m.label === 'begin' ? '(start)' : m.label, m.t - lastT);
            if (lastTicks !== undefined) add(cpu, step, m.label, (m.ticks - lastTicks) * 10);
            lastT = m.t;
            lastTicks = m.ticks;
          }
          add(wall, step, '(to client)', end - lastT);
          add(wall, step, 'TOTAL', end - start);
        }
      }
    }
    const med = (xs: number[] | undefined) => {
      if (!xs?.length) return '-';
      const s = [...xs].sort((a, b) => a - b);
      return String(Math.round(s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2));
    };
    const rows = [['step', 'segment (ends at)', 'wall ms', 'CPU ms']];
    for (const [step, segs] of wall) for (const [seg, xs] of segs) rows.push([step, seg, med(xs), med(cpu.get(step)?.get(seg))]);
    const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    process.stdout.write(
      `${n} host(s), RTT ${rtt} ms, grace ${grace} s, ${runs} run(s): deploy ${totals.map((t) => t.toFixed(2)).join(', ')} s; medians over hosts and runs; CPU = script + its children, 10 ms ticks\n` +
        rows.map((r) => r.map((c, j) => (j < 2 ? c.padEnd(w[j]!) : c.padStart(w[j]!))).join('  ')).join('\n') +
        `\n(scripts marked: ${[...patched].sort().join(', ')})\n`,
    );
  } finally {
    await lab.stop();
  }
}

if (underReaper()) {
  main().catch((e) => {
    process.stderr.write(`profile-steps: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
