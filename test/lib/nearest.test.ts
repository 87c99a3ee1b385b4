// "did you mean": the nearest known name, only when it is near enough to be a typo.
import { describe, expect, it } from 'vitest';
import { nearest } from '../../lib/nearest';

describe('nearest', () => {
  it('finds a misspelling: a letter left out, added, changed, or two swapped', () => {
    expect(nearest('keepRelease', ['keepReleases', 'site'])).toBe('keepReleases');
    expect(nearest('--lock-wiat', ['--lock-wait', '--lock'])).toBe('--lock-wait');
    expect(nearest('uta', ['base', 'meta', 'uat'])).toBe('uat'); // a swap is one edit, so uat beats meta
    expect(nearest('privat', ['private', 'listen'])).toBe('private');
  });

  it('suggests nothing for a word like none of the names, or when there are none', () => {
    expect(nearest('zzqqxx', ['site', 'hosts', 'app'])).toBeUndefined();
    expect(nearest('staging', ['uat', 'prod'])).toBeUndefined();
    expect(nearest('x', [])).toBeUndefined();
  });
});
