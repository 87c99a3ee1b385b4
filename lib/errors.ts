/**
 * An error meant for the person at the terminal: gulp-cli prints `toString()` (no stack)
 * for errors with a boolean `showStack`, so the message must say everything.
 */
export class SwitchyardError extends Error {
  declare readonly showStack: boolean;
  /** The host the error is about, when there is one. */
  declare readonly host?: string;
  constructor(message: string, o: { host?: string; cause?: unknown } = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    // not enumerable: gulp-cli prints a gulpfile's load error with console.error, own fields and all
    if (o.host) Object.defineProperty(this, 'host', { value: o.host, enumerable: false });
  }
}
for (const [k, value] of [['showStack', false], ['name', 'switchyard']] as const) Object.defineProperty(SwitchyardError.prototype, k, { value, enumerable: false, writable: true });
