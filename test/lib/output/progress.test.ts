import { describe, expect, it } from 'vitest';
import { renderProgress, type HostProgress } from '../../../lib/output/progress';

describe('progress block', () => {
  it('shows each host: waiting, running with seconds, done, failed', () => {
    const rows = new Map<string, HostProgress>([
      ['web1', { step: 'prepare', running: true, since: 1000 }],
      ['web22', { step: 'switch', running: false, ok: true, since: 0 }],
      ['db', { step: 'waiting', running: false, since: 0 }],
      ['app3', { step: 'prepare', running: false, ok: false, since: 0 }],
    ]);
    expect(renderProgress(rows, 3500)).toBe(['  web1   prepare…  2.5 s', '  web22  switched', '  db     waiting', '  app3   prepare FAILED'].join('\n'));
  });
});
