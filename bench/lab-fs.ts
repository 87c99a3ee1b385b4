// The labs' filesystem, as the benches see it: every lab lives under os.tmpdir() (TMPDIR), and a
// deploy creates some 30 files and directories a host (the lock's, the release's records, the
// state files). On a journaled ext4 or xfs, or a tmpfs, a file costs ~20 µs to create. On an ext4
// WITHOUT a journal (the root filesystem of the 2-core VMs here) the kernel's inode allocator
// steps over every inode freed in the last minute or more (fs/ext4/ialloc.c, recently_deleted(),
// checked only when there is no journal), and a bench deletes thousands: ~450 µs a file, and
// more as the churn grows, on both sides. So each bench prints what a file costs where its labs
// are; `TMPDIR=DIR` moves them (docs/BENCHMARK.md, "The labs' filesystem").
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The mount that holds dir: its type and device (the last mountinfo line that is a prefix). */
function mountOf(dir: string): { fstype: string; source: string; point: string } | undefined {
  const real = fs.realpathSync(dir);
  let best: { fstype: string; source: string; point: string } | undefined;
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const point = left.split(' ')[4]!.replace(/\\040/g, ' ');
    const [fstype, source] = right.split(' ');
    const inside = real === point || real.startsWith(point === '/' ? '/' : `${point}/`);
    if (inside && (!best || point.length >= best.point.length)) best = { fstype: fstype!, source: source!, point };
  }
  return best;
}

/** "ext4, no journal" or "ext4, journaled" (/sys/fs/ext4/DEV/journal_task is <none> without one). */
function describe(m: { fstype: string; source: string } | undefined): string {
  if (!m) return 'unknown filesystem';
  if (m.fstype !== 'ext4') return m.fstype;
  try {
    const task = fs.readFileSync(`/sys/fs/ext4/${path.basename(m.source)}/journal_task`, 'utf8').trim();
    return task === '<none>' ? 'ext4, no journal' : 'ext4, journaled';
  } catch {
    return 'ext4';
  }
}

/** µs to create one empty file under dir (200 of them, removed afterwards). */
export function fileCreateMicros(dir = os.tmpdir(), n = 200): number {
  const d = fs.mkdtempSync(path.join(dir, 'sy-fsprobe-'));
  try {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fs.closeSync(fs.openSync(path.join(d, `f${i}`), 'wx'));
    return Number(process.hrtime.bigint() - t) / 1000 / n;
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}

/** The line the benches print: where the labs are, and what a file costs there. */
export function labFsLine(dir = os.tmpdir()): string {
  const us = fileCreateMicros(dir);
  return `labs in ${dir} (${describe(mountOf(dir))}): ${us < 100 ? us.toFixed(0) : Math.round(us / 10) * 10} µs to create a file (a journaled ext4 or a tmpfs: ~20)`;
}
