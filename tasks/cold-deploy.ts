import { deploy, type DeployOptions } from '../lib/release/deploy';
import { task, type Task } from './plumbing/task';

export function coldDeployTask(o: DeployOptions): Task {
  return task('cold-deploy', async () => {
    await deploy(o, 'cold-deploy');
  });
}
