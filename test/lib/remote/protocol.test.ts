import { describe, expect, it } from 'vitest';
import { parseResultLine, parseResultLines } from '../../../lib/remote/protocol';

describe('parseResultLines', () => {
  it('reads event, fields and msg; skips human lines', () => {
    const text = [
      'starting the app…',
      '::sy prepared release=20261123T154219.123Z-abc1234 pid=42 starttime=9001 socket=/tmp/s/SOCK-a-b status=200',
      'some stderr-ish text ::sy not at the start',
      '::sy error code=4 step=lock msg=deploy lock held: release=R1 since=2026-11-23T15:00:00Z alice@laptop',
      '',
    ].join('\n');
    expect(parseResultLines(text)).toEqual([
      {
        event: 'prepared',
        fields: { release: '20261123T154219.123Z-abc1234', pid: '42', starttime: '9001', socket: '/tmp/s/SOCK-a-b', status: '200' },
      },
      {
        event: 'error',
        fields: { code: '4', step: 'lock' },
        msg: 'deploy lock held: release=R1 since=2026-11-23T15:00:00Z alice@laptop',
      },
    ]);
  });

  it('keeps = inside values and text after msg= verbatim, even key=value-looking text', () => {
    expect(parseResultLine('::sy x a=b=c msg=k=v and  two  spaces')).toEqual({
      event: 'x',
      fields: { a: 'b=c' },
      msg: 'k=v and  two  spaces',
    });
  });

  it('handles CRLF, an empty msg, a bare event, and repeated spaces', () => {
    expect(parseResultLines('::sy unlocked\r\n::sy lock msg=\r\n::sy  status  release=none   lock=free \r\n')).toEqual([
      { event: 'unlocked', fields: {} },
      { event: 'lock', fields: {}, msg: '' },
      { event: 'status', fields: { release: 'none', lock: 'free' } },
    ]);
  });

  it('an empty value stays an empty string', () => {
    expect(parseResultLine('::sy check tool= ok=no')?.fields).toEqual({ tool: '', ok: 'no' });
  });

  it('rejects non-result lines', () => {
    expect(parseResultLine('::sy')).toBeUndefined();
    expect(parseResultLine('::sy ')).toBeUndefined();
    expect(parseResultLine('::sy key=value')).toBeUndefined();
    expect(parseResultLine(' ::sy x a=b')).toBeUndefined();
    expect(parseResultLine('::syx a=b')).toBeUndefined();
    expect(parseResultLines('')).toEqual([]);
  });

  it('ignores words without =, and a later msg= is still the message', () => {
    expect(parseResultLine('::sy e stray k=v msg=m')).toEqual({ event: 'e', fields: { k: 'v' }, msg: 'm' });
  });
});
