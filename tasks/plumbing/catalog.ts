// Every built-in task: its name, what it does and the flags it takes, in one table that loads
// nothing else, so `gulp --tasks`, `switchyard help` and the flag check cost no start-up time.
import type { FlagName } from './flags';

export interface TaskEntry {
  description: string;
  flags: readonly FlagName[];
}

const SELECT: FlagName[] = ['--env', '--env-dir', '--roles', '--hosts', '--verbose'];
const LOAD: FlagName[] = ['--concurrency', '--keepalive', '--path', '--method'];
const RELEASE: FlagName[] = [...SELECT, '--parallel', '--dry-run', '--report', '--lock-wait'];

export const CATALOG = {
  setup: { description: 'Prepare the servers: directories, tool checks (curl, ss, GNU tar and find, …), private nginx if configured', flags: SELECT },
  'cold-deploy': { description: 'First release where nothing runs yet (refuses if a release is live)', flags: [...RELEASE, '--batch'] },
  deploy: { description: 'Package, upload and release atomically on every host (one transaction)', flags: [...RELEASE, '--batch', '--under-load', ...LOAD] },
  rollback: {
    description: 'Go back to the release before the live one on every host (never one rolled back from; --to names one): started again, health-checked, switched atomically',
    flags: [...RELEASE, '--to', '--under-load', ...LOAD],
  },
  releases: { description: 'Per host: every release kept, newest first, with its state (current, standby, previous, good, bad, failed), who deployed it, when it went live, build time, git revision', flags: [...SELECT, '--json'] },
  restart: {
    description: 'Graceful restart of the running release: a new process on its own socket, switched in, the old one drained',
    flags: [...RELEASE, '--under-load', ...LOAD],
  },
  status: { description: 'Per host: current release, pid, uptime, socket, health, lock, supervisor (errored, and why)', flags: SELECT },
  supervise: {
    description: "The site's supervisor on every app host (respawns the live release, no root): --action=start|stop|status; --boot adds a crontab @reboot line",
    flags: [...SELECT, '--action', '--boot', '--json'],
  },
  doctor: {
    description:
      "Per host, read-only: how it is reached (address, user, port, jump, identity, host key), the tools the scripts need, the login shell's start-up time, whether nginx's workers can reach the socket and nginx routes the site to it; exits non-zero naming every problem",
    flags: [...SELECT, '--json'],
  },
  unlock: { description: 'Remove the deploy lock after a killed deploy (a release that never went live is cleaned up)', flags: SELECT },
  'nginx-config': { description: 'Print the nginx server block for the environment ($host allow-list, 421 otherwise)', flags: ['--env', '--env-dir'] },
  config: { description: 'Render every config file for every host variant and print a unified diff against the build (secrets masked)', flags: SELECT },
  'config-check': {
    description: 'Render the config of every environment in the env dir without secrets (placeholders); fail listing every error',
    flags: ['--env-dir', '--verbose'],
  },
  loadtest: {
    description:
      "Load every web host's nginx (Host: the site) or loadtest.url; print requests, failed by code, req/s, latency p50/p90/p99/max; write a JSON + HTML report",
    flags: ['--env', '--env-dir', '--hosts', '--verbose', ...LOAD, '--duration', '--requests', '--max-failures'],
  },
  verify: {
    description: 'Zero-downtime proof: deploy under load on every web host, mark each step, fail (listing them) if even one request failed; writes a JSON + HTML report',
    flags: [...SELECT, '--cycles', '--rollback', ...LOAD, '--report'],
  },
  demo: {
    description: 'On this machine (env local unless --env): setup, cold-deploy, then verify with two deploys under 100 concurrent connections; prints the summary and report',
    flags: [...SELECT, '--cycles', '--concurrency'],
  },
} as const satisfies Record<string, TaskEntry>;

export type TaskName = keyof typeof CATALOG;
