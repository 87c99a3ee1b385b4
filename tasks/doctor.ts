import { SwitchyardError } from '../lib/errors';
import { doctor, doctorSummary, type DoctorOptions } from '../lib/servers/doctor';
import { task, type Task } from './plumbing/task';

export function doctorTask(o: DoctorOptions): Task {
  return task('doctor', async () => {
    const r = await doctor(o);
    if (!r.ok) throw new SwitchyardError(doctorSummary(r));
  });
}
