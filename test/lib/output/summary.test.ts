import { describe, expect, it } from 'vitest';
import { formatReleaseSummary } from '../../../lib/output/summary';
import type { ReleaseReport } from '../../../lib/release/flow';

describe('the end-of-run table', () => {
  it('counts the jump connections a host needed next to its own', () => {
    const host = (name: string, jumpConnections?: number) => ({
      host: name, roles: ['app'], release: 'R', phase: 'finished' as const, seconds: 1.2,
      stats: { connections: 1, executions: 1, bytesUploaded: 2048, ...(jumpConnections ? { jumpConnections } : {}) },
    });
    const r = { kind: 'deploy', env: 'uat', site: 'app.test', release: 'R', ok: true, dryRun: false, seconds: 2, hosts: [host('web1', 1), host('web2')] } as unknown as ReleaseReport;
    expect(formatReleaseSummary(r).split('\n').slice(1)).toEqual([
      'host  roles  phase     seconds  ssh conns    execs  uploaded',
      'web1  app    finished  1.2      1 (+1 jump)  1      2.0 KiB',
      'web2  app    finished  1.2      1            1      2.0 KiB',
    ]);
  });
});
