// What makes a function a task: the name, description and flags `gulp --tasks` prints. The flag
// sets here are shared by the task files so each task says once which flags it takes.

/** A gulp task with the metadata `gulp --tasks` prints. */
export type Task = (() => Promise<void>) & { displayName: string; description: string; flags: Record<string, string> };

export function task(name: string, description: string, flags: Record<string, string>, run: () => Promise<void>): Task {
  return Object.assign(run, { displayName: name, description, flags });
}

export const COMMON_FLAGS = {
  '--env': 'environment file env/<name>.ts (default: local)',
  '--env-dir': 'directory of environment files (or SWITCHYARD_ENV_DIR)',
  '--roles': 'only hosts with these roles, e.g. --roles=app,web',
  '--hosts': 'only these hosts, e.g. --hosts=app1,app2',
  '--verbose': 'show every remote command and result line',
};

/** How the load-driving tasks shape their traffic. */
export const LOAD_FLAGS = {
  '--concurrency': 'requests in flight at once, over all web hosts (default 100)',
  '--keepalive': 'on (default) or off: a new connection per request',
  '--path': 'path to request (default /)',
  '--method': 'HTTP method (default GET)',
};

export const UNDER_LOAD_FLAG = {
  '--under-load': 'run it under load (as gulp verify does) and fail if even one request failed; --concurrency, --keepalive, --path, --method apply',
};

export const RELEASE_FLAGS = {
  ...COMMON_FLAGS,
  '--parallel': 'at most N hosts at once (default: all)',
  '--batch': 'switch N hosts (or N%) at a time, each batch checked before the next',
  '--dry-run': 'print every remote command per host, run none',
  '--report': 'write a JSON report to this file',
};
