// The servers' init, as on a real server: an app that retire stops has been an orphan since its
// prepare ended (`nohup setsid app &`), so its zombie waits for whoever adopted it. On a server
// that is systemd (PID 1, or the user's systemd, a subreaper), which reaps at once. In the lab it
// is the nearest subreaper above the bench, else this machine's PID 1, which may not be an init
// at all: on the 2-core VMs here it reaps every ~1.8 s. Until then retire sees a zombie leader
// whose group `kill -0` still finds, and lists the group from every /proc/N/stat (lib.sh
// sy_group_scan: right, but ~10 ms a host with two 64-host labs on one machine, which no fleet's
// server pays). So the bench runs under `tini -s` (apt: tini), a subreaper that reaps at once,
// when it is there (SWITCHYARD_BENCH_REAPER=off: not), and prints how long an orphan's zombie
// lasted either way.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

const MARK = 'SWITCHYARD_BENCH_REAPER';

/**
 * Runs this process again under `tini -s` (its exit code passed on) unless it already is, or
 * tini is not on PATH; returns true when the caller is the process to go on.
 */
export function underReaper(): boolean {
  if (process.env[MARK] || spawnSync('tini', ['--version'], { stdio: 'ignore' }).status !== 0) return true; // `=off`: as it is
  const child = spawn('tini', ['-s', '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [MARK]: '1' },
  });
  // Ctrl-C reaches the whole foreground group (the bench too); a TERM to this process is passed on.
  for (const sig of ['SIGINT', 'SIGHUP'] as const) process.on(sig, () => undefined);
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code, sig) => process.exit(code ?? 128 + (sig ? os.constants.signals[sig] : 0)));
  return false;
}

/** How long an orphan's zombie lasts here: ms from its SIGKILL until its /proc entry is gone. */
export async function orphanReapMs(): Promise<number> {
  const r = spawnSync('bash', ['-c', 'setsid sleep 30 </dev/null >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' });
  const pid = Number(r.stdout.trim());
  if (!Number.isInteger(pid) || pid <= 1) return NaN;
  process.kill(pid, 'SIGKILL');
  const t = Date.now();
  while (fs.existsSync(`/proc/${pid}`) && Date.now() - t < 5000) await new Promise((res) => setTimeout(res, 5));
  return Date.now() - t;
}

/** The line the benches print about it. */
export async function reaperLine(): Promise<string> {
  const ms = await orphanReapMs();
  const who = process.env[MARK] === '1' ? 'under tini -s' : process.env[MARK] ? `no subreaper: ${MARK}=${process.env[MARK]}` : 'no subreaper: tini is not on PATH';
  return `orphans reaped in ${Number.isNaN(ms) ? '?' : ms} ms (${who}; a server's systemd: at once)`;
}
