import gulplog from 'gulplog';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DryRunReporter, GulpReporter, MemoryReporter } from '../../../lib/output/reporter';

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

  it('for --json (toStderr) writes every line to stderr, debug included, and none to stdout or through gulplog: stdout holds the JSON alone', () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const seen: string[] = [];
    const log = gulplog as unknown as NodeJS.EventEmitter;
    const onInfo = (line: string) => seen.push(line);
    log.on('info', onInfo);
    try {
      const r = new GulpReporter(true, true);
      r.log('debug', 'doctor.sh --deploy-to /srv/a', 'h1');
      r.log('info', 'fine');
      r.log('error', 'boom');
    } finally {
      log.off('info', onInfo);
    }
    expect(out).not.toHaveBeenCalled();
    expect(seen).toEqual([]);
    expect(err.mock.calls.map((c) => c[0])).toEqual(['[h1] doctor.sh --deploy-to /srv/a\n', 'fine\n', 'boom\n']);
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

describe('what a reporter shows', () => {
  it('escapes control characters (an escape sequence, a carriage return) and masks secrets', () => {
    const r = new MemoryReporter();
    r.addSecret('hunter2');
    r.log('info', 'value \x1b[2Jcleared\rover\ttab hunter2', 'h1');
    expect(r.lines[0]!.line).toBe('[h1] value \\x1b[2Jcleared\\x0dover\ttab ******');
  });

  it('a dry run says so at the end of every line', () => {
    const inner = new MemoryReporter();
    const r = new DryRunReporter(inner);
    r.log('info', 'would run: switch.sh\nsecond line', 'h1');
    expect(inner.lines.map((l) => l.line)).toEqual(['[h1] would run: switch.sh  (dry run)', '[h1] second line  (dry run)']);
  });
});
