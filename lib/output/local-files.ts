// The files switchyard writes on this machine (a --report, the load reports): never writable by
// others whatever the umask (0755 directories, 0644 files), and directories made one at a time, so
// one that cannot be made fails at once with its name (Node's recursive mkdir spins forever on a
// path under /proc, for one).
import fs from 'node:fs';
import path from 'node:path';

/** Makes dir and its missing parents, 0755 (less under a stricter umask). */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) {
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing) fs.mkdirSync(d, { mode: 0o755 });
}

/** Writes a file (its directory made first), 0644 when it is new. */
export function writeLocalFile(file: string, text: string): void {
  makeDirs(path.dirname(path.resolve(file)));
  fs.writeFileSync(file, text, { mode: 0o644 });
}

/**
 * Why `file` could not be written later, or undefined: it is a directory, or not writable, or
 * the nearest directory that exists above it is not (where its missing directories would go).
 */
export function unwritableProblem(file: string): string | undefined {
  const abs = path.resolve(file);
  if (fs.existsSync(abs)) {
    if (fs.statSync(abs).isDirectory()) return `${abs} is a directory`;
    return writable(abs) ? undefined : `${abs} is not writable`;
  }
  let d = path.dirname(abs);
  while (!fs.existsSync(d) && path.dirname(d) !== d) d = path.dirname(d);
  if (!fs.statSync(d).isDirectory()) return `${d} is not a directory`;
  return writable(d) ? undefined : `${d} is not writable${d === path.dirname(abs) ? '' : ` (to make ${path.relative(d, path.dirname(abs))} in)`}`;
}

function writable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
