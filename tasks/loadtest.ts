import type { LoadTaskOptions } from '../lib/context';
import { loadtest } from '../lib/load/loadtest';
import { COMMON_FLAGS, LOAD_FLAGS, task, type Task } from './plumbing/task';

export function loadtestTask(o: LoadTaskOptions): Task {
  return task(
    'loadtest',
    "Load every web host's nginx (Host: the site) or loadtest.url; print requests, failed by code, req/s, latency p50/p90/p99/max; write a JSON + HTML report",
    {
      '--env': COMMON_FLAGS['--env'],
      '--env-dir': COMMON_FLAGS['--env-dir'],
      '--hosts': 'only these web hosts (ignored with loadtest.url)',
      ...LOAD_FLAGS,
      '--duration': 'seconds to run (default 10)',
      '--requests': 'stop after this many requests',
    },
    async () => {
      await loadtest(o);
    },
  );
}
