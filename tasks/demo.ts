import { demo } from '../lib/demo';
import type { VerifyOptions } from '../lib/load/verify';
import { task, type Task } from './plumbing/task';

export function demoTask(o: VerifyOptions): Task {
  return task('demo', async () => {
    await demo(o);
  });
}
