// Wiring only: read the command line once (strictly: an unknown flag stops here), hand plain
// options to the task factories. Put flags after the task name: `gulp deploy --env=uat`.
import { task } from 'gulp';
import { createTasks, parseFlags } from './index';

const tasks = createTasks(parseFlags(process.argv.slice(2)));
for (const [name, fn] of Object.entries(tasks)) task(name, fn);
