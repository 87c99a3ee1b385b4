import { verify, type VerifyOptions } from '../lib/load/verify';
import { COMMON_FLAGS, LOAD_FLAGS, task, type Task } from './plumbing/task';

export function verifyTask(o: VerifyOptions): Task {
  return task(
    'verify',
    'Zero-downtime proof: deploy under load on every web host, mark each step, fail (listing them) if even one request failed; writes a JSON + HTML report',
    {
      ...COMMON_FLAGS,
      '--cycles': 'deploys in a row under the same load (default 1)',
      '--rollback': 'roll back after each deploy, under load too',
      ...LOAD_FLAGS,
      '--report': 'write the JSON report of the last deploy (or rollback) to this file',
    },
    async () => {
      await verify(o);
    },
  );
}
