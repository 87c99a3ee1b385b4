// A directory as data, to compare a release on a host with the build it came from.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Every file, directory and symlink under dir but .switchyard/: a file as `file MODE SHA256`, its
 * mode as prepare.sh unpacks it (umask 027), a symlink as `link TARGET`, a directory as `dir`.
 */
export function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (r === '.switchyard') continue;
      const abs = path.join(dir, r);
      const st = fs.lstatSync(abs);
      if (st.isSymbolicLink()) out[r] = `link ${fs.readlinkSync(abs)}`;
      else if (st.isDirectory()) {
        out[r] = 'dir';
        walk(r);
      } else {
        const mode = (st.mode & 0o7777 & ~0o027).toString(8);
        out[r] = `file ${mode} ${crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex')}`;
      }
    }
  };
  walk('');
  return out;
}

/** The regular files of tree(dir), sorted. */
export function filesOf(dir: string): string[] {
  return Object.entries(tree(dir))
    .filter(([, v]) => v.startsWith('file'))
    .map(([f]) => f)
    .sort();
}
