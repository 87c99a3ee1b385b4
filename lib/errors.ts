/**
 * An error meant for the person at the terminal: gulp-cli prints `toString()` (no stack)
 * for errors with a boolean `showStack`, so the message must say everything.
 */
export class SwitchyardError extends Error {
  readonly showStack = false;
  /** The host the error is about, when there is one. */
  readonly host?: string;
  constructor(message: string, o: { host?: string; cause?: unknown } = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = 'switchyard';
    if (o.host) this.host = o.host;
  }
}
