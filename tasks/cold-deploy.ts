import { deploy, type DeployOptions } from '../lib/release/deploy';
import { RELEASE_FLAGS, task, type Task } from './plumbing/task';

export function coldDeployTask(o: DeployOptions): Task {
  return task('cold-deploy', 'First release where nothing runs yet (refuses if a release is live)', RELEASE_FLAGS, async () => {
    await deploy(o, 'cold-deploy');
  });
}
