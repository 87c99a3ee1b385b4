import gulplog from 'gulplog';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GulpReporter } from '../../../lib/output/reporter';

describe('GulpReporter', () => {
  afterEach(() => vi.restoreAllMocks());

  it('outside gulp (nobody listens to gulplog) writes to the console: info to stdout, warnings and errors to stderr', () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const r = new GulpReporter();
    r.addSecret('s3cret');
    // without the fallback gulplog throws "Unhandled error" on the first error line
    expect(() => r.log('error', 'boom s3cret', 'h1')).not.toThrow();
    r.log('info', 'fine');
    r.log('warn', 'careful');
    expect(out.mock.calls.map((c) => c[0])).toEqual(['fine\n']);
    expect(err.mock.calls.map((c) => c[0])).toEqual(['[h1] boom ******\n', 'careful\n']);
  });

  it('under gulp goes through gulplog', () => {
    const seen: string[] = [];
    const log = gulplog as unknown as NodeJS.EventEmitter; // glogg is an EventEmitter
    const onInfo = (line: string) => seen.push(line);
    log.on('info', onInfo);
    try {
      new GulpReporter().log('info', 'through gulp');
    } finally {
      log.off('info', onInfo);
    }
    expect(seen).toEqual(['through gulp']);
  });
});
