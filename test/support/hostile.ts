// Hostile input for the property tests (test/remote-scripts/hostile.test.ts): a deterministic,
// seeded generator of strings built from the things that break shell commands and paths, and a
// way to run many remote commands in ONE bash (each in a subshell, as an SSH exec would run it)
// and read back, byte for byte, the argv each one delivered.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** mulberry32: a small seeded PRNG, the same sequence on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The pieces hostile strings are made of; every command payload touches MARKER. */
export function atoms(marker: string): string[] {
  return [
    `'`, `"`, `\\`, `$(touch ${marker})`, `\`touch ${marker}\``, `; touch ${marker}`, `&& touch ${marker}`, `| touch ${marker}`,
    `$'\\x41'`, '$HOME', '${IFS}', '$1', '$@', '!!', '#', '>', '<', '&', '%s', '%n', '=', 'A=B',
    '\n', '\r', '\t', ' ', '\v', '\f',
    '*', '?', '[a]', '{a,b}', '~',
    '-x', '--help', '--', '-rf', '-g', '-', '--reuse',
    '..', '/..', '.', '/', '//', './', 'a/../b',
    '\u202e', '\u200f', '\u200b', '\ufeff', '\u00a0', '\u2028', '😀', 'e\u0301', '日本', '\u0085',
    '\0', '\x01', '\x1b[31m', '\x7f',
    '{socket}', '{release}', '.switchyard', 'SWITCHYARD_X',
    'a', 'web1', 'app.example.com', 'logs', '0660', '755', '80', '127.0.0.1:8080', '[::1]:80',
  ];
}

/**
 * n hostile strings: first every atom alone (and with a leading `/`, a leading `-`), the empty
 * string and an 8 KB one, then seeded combinations of 2–5 atoms (sometimes with a prefix such as
 * `/` or `-`, sometimes made very long) until there are n.
 */
export function hostileStrings(marker: string, n = 1000, seed = 12): string[] {
  const a = atoms(marker);
  const out = new Set<string>(['', 'x'.repeat(8192), `/${'y'.repeat(8191)}`, `${'z'.repeat(300)}`, `/${'w'.repeat(300)}`]);
  for (const s of a) {
    out.add(s);
    out.add(`/${s}`);
    out.add(`-${s}`);
    out.add(`a${s}b`);
  }
  const r = rng(seed);
  const pick = () => a[Math.floor(r() * a.length)]!;
  const prefixes = ['', '', '', '/', '-', '--', 'a', './', '/srv/'];
  while (out.size < n) {
    let s = prefixes[Math.floor(r() * prefixes.length)]!;
    const k = 2 + Math.floor(r() * 4);
    for (let i = 0; i < k; i++) s += pick();
    if (r() < 0.02) s = s.repeat(Math.ceil(8192 / Math.max(1, s.length))).slice(0, 8192);
    out.add(s);
  }
  return [...out].slice(0, n);
}

/** A value that can name a file in one directory (no `/`, no NUL, not `.`/`..`, ≤ 255 bytes). */
export function fileNameOk(v: string): boolean {
  return v !== '' && v !== '.' && v !== '..' && !v.includes('/') && !v.includes('\0') && Buffer.byteLength(v) <= 255;
}

/** The script that replaces a remote script's text: prints $0 and every "$@" word, NUL-ended. */
export const ARGV_PRINTER = `printf '%s\\0' "$0" "$@" >"$SY_OUT/$SY_N"\n`;

export interface Batched {
  /** The exact string an SSH exec would hand the login shell. */
  command: string;
}

/**
 * Runs every command in one `bash FILE` (the login shell of an SSH exec: `bash -c COMMAND`), each
 * in a subshell with SY_N=its index and SY_OUT=outDir, stdin from /dev/null. Returns each one's
 * exit status. A command holding a NUL byte cannot reach a shell at all (execve ends the string
 * there): it is cut there, as the server would see it.
 */
export function runBatch(cmds: readonly Batched[], o: { root: string; outDir: string; cwd: string; env?: NodeJS.ProcessEnv; shell?: string }): number[] {
  fs.mkdirSync(o.outDir, { recursive: true });
  const parts: string[] = [];
  cmds.forEach((c, i) => {
    const cut = c.command.includes('\0') ? c.command.slice(0, c.command.indexOf('\0')) : c.command;
    // The command's text as the login shell's own script (as `bash -c COMMAND` parses it, one fork
    // less); a command cut by a NUL (unbalanced quotes) in a `bash -c` of its own, so it fails alone.
    const body = cut === c.command ? `\n${c.command}\n` : `exec bash -c ${shq(cut)}`;
    parts.push(`(export SY_N=${i}; ${body}) </dev/null >/dev/null 2>&1; echo "${i} $?" >>"$SY_OUT/rc"\n`);
  });
  const file = path.join(o.root, `batch-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.sh`);
  fs.writeFileSync(file, parts.join(''));
  execFileSync(o.shell ?? '/bin/bash', [file], { cwd: o.cwd, env: { ...o.env, SY_OUT: o.outDir }, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 << 20 });
  const rc: number[] = [];
  for (const line of fs.readFileSync(path.join(o.outDir, 'rc'), 'utf8').trim().split('\n')) {
    const [i, code] = line.split(' ');
    rc[Number(i)] = Number(code);
  }
  fs.rmSync(file);
  return rc;
}

/** The words a command delivered (what ARGV_PRINTER or another printer wrote), or undefined. */
export function delivered(outDir: string, i: number): string[] | undefined {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(path.join(outDir, String(i)));
  } catch {
    return undefined;
  }
  const words = buf.toString('utf8').split('\0');
  words.pop(); // after the last NUL
  return words;
}

/** POSIX single quoting, for text of the test's own (the client's own is q() in commands.ts). */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Visible form of a value for failure messages. */
export function show(v: string): string {
  return JSON.stringify(v.length > 80 ? `${v.slice(0, 60)}…(${v.length} chars)` : v);
}
