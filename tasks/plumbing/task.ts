// What makes a function a task: the name, description and flags `gulp --tasks` prints, from the catalog.
import { CATALOG, type TaskName } from './catalog';
import { describeFlags, type FlagName } from './flags';

/** A gulp task with the metadata `gulp --tasks` prints. */
export type Task = (() => Promise<void>) & { displayName: string; description: string; flags: Record<string, string> };

function named(name: string, description: string, flags: Record<string, string>, run: () => Promise<void>): Task {
  return Object.assign(run, { displayName: name, description, flags });
}

/** A built-in task: its description and flags come from the catalog. */
export function task(name: TaskName, run: () => Promise<void>): Task {
  return named(name, CATALOG[name].description, describeFlags(CATALOG[name].flags), run);
}

/** A task of your own (remoteTask): the selection flags, with your name and description. */
export function ownTask(name: string, description: string, run: () => Promise<void>): Task {
  const flags: FlagName[] = ['--env', '--env-dir', '--roles', '--hosts', '--verbose'];
  return named(name, description, describeFlags(flags), run);
}
