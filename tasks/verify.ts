import { verify, type VerifyOptions } from '../lib/load/verify';
import { task, type Task } from './plumbing/task';

export function verifyTask(o: VerifyOptions): Task {
  return task('verify', async () => {
    await verify(o);
  });
}
