// The files switchyard writes on this machine (a --report, the load reports): never writable by
// others whatever the umask (0755 directories, 0644 files), and directories made one at a time, so
// one that cannot be made fails at once with its name (Node's recursive mkdir spins forever on a
// path under /proc, for one).
import fs from 'node:fs';
import path from 'node:path';

/** The nearest directory of dir's that exists (dir itself, a parent, at worst /), and those below it that do not. */
function existingAbove(dir: string): { existing: string; missing: string[] } {
  const missing: string[] = [];
  let d = path.resolve(dir);
  for (; !fs.existsSync(d) && path.dirname(d) !== d; d = path.dirname(d)) missing.unshift(d);
  return { existing: d, missing };
}

/** Makes dir and its missing parents, 0755 (less under a stricter umask). */
export function makeDirs(dir: string): void {
  for (const d of existingAbove(dir).missing) fs.mkdirSync(d, { mode: 0o755 });
}

/** Writes a file (its directory made first), 0644 when it is new. */
export function writeLocalFile(file: string, text: string): void {
  makeDirs(path.dirname(path.resolve(file)));
  fs.writeFileSync(file, text, { mode: 0o644 });
}

/** Linux's limits on a name and a path: a longer one fails the write with ENAMETOOLONG. */
const NAME_MAX = 255;
const PATH_MAX = 4095;

/**
 * Why `file` could not be written later, or undefined: a name too long, a directory, not
 * writable, a link whose target's directory is missing, or the nearest directory that exists
 * above it is not one we may create in (write and search).
 */
export function unwritableProblem(file: string, links = 0): string | undefined {
  const abs = path.resolve(file);
  if (abs.split('/').some((c) => Buffer.byteLength(c) > NAME_MAX)) return `a name in ${abs} is longer than ${NAME_MAX} bytes`;
  if (Buffer.byteLength(abs) > PATH_MAX) return `${abs} is longer than ${PATH_MAX} bytes`;
  const st = lstat(abs);
  if (st?.isSymbolicLink() && !fs.existsSync(abs)) {
    // written through the link: its target is what must be creatable
    const target = path.resolve(path.dirname(abs), fs.readlinkSync(abs));
    if (links >= 8) return `${abs}: too many links`;
    if (!fs.existsSync(path.dirname(target))) return `${abs} is a link to ${target}, whose directory does not exist`;
    return unwritableProblem(target, links + 1);
  }
  if (st) {
    if (fs.statSync(abs).isDirectory()) return `${abs} is a directory`;
    return writable(abs, fs.constants.W_OK) ? undefined : `${abs} is not writable`;
  }
  const d = existingAbove(path.dirname(abs)).existing;
  if (!fs.statSync(d).isDirectory()) return `${d} is not a directory`;
  const within = d === path.dirname(abs) ? '' : ` (to make ${path.relative(d, path.dirname(abs))} in)`;
  return writable(d, fs.constants.W_OK | fs.constants.X_OK) ? undefined : `${d} is not writable${within}`;
}

function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

function writable(p: string, mode: number): boolean {
  try {
    fs.accessSync(p, mode);
    return true;
  } catch {
    return false;
  }
}
