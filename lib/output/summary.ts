// The end-of-run table: one line per host, what it reached, what it cost.
import type { ReleaseReport } from '../release/flow';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export function formatBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatReleaseSummary(r: ReleaseReport): string {
  const rows = [['host', 'roles', 'phase', 'seconds', 'ssh conns', 'execs', 'uploaded']];
  for (const h of r.hosts) {
    const conns = `${h.stats.connections}${h.stats.jumpConnections ? ` (+${h.stats.jumpConnections} jump)` : ''}`;
    rows.push([h.host, h.roles.join(','), h.phase, h.seconds.toFixed(1), conns, String(h.stats.executions), formatBytes(h.stats.bytesUploaded)]);
  }
  const outcome = r.dryRun ? 'DRY RUN, nothing was changed' : r.ok ? 'OK' : 'FAILED';
  const head = `${r.kind} ${r.release} to ${r.env} (${r.site}): ${outcome} in ${r.seconds.toFixed(1)} s`;
  return `${head}\n${table(rows)}`;
}
