// Wiring only: read the command line once, hand plain options to the task factories.
// Put flags after the task name: `gulp deploy --env=uat` (`gulp --dry-run deploy` would make
// `deploy` the value of --dry-run).
import { task } from 'gulp';
import { createTasks, parseFlags } from './index';

const tasks = createTasks(parseFlags(process.argv.slice(2)));
for (const [name, fn] of Object.entries(tasks)) task(name, fn);
