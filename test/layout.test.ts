// The layout rules of docs/ARCHITECTURE.md, held against the code: functions small enough to hold
// in your head, tasks that stand on lib/ and never on each other, lib/ that never reaches up into
// tasks/, and docs that send a reader nowhere outside the repository.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { functionSpans, relativeImports, sourceFiles } from './support/code-shape';

const ROOT = path.resolve(__dirname, '..');
const MAX_FUNCTION_LINES = 100;

/** Where an import of `file` points, relative to the repository root (without extension). */
function target(file: string, spec: string): string {
  return path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)).replace(/\.ts$/, '');
}

describe('layout', () => {
  it(`no function in lib/ or tasks/ is longer than ${MAX_FUNCTION_LINES} lines (closures counted in their parent)`, () => {
    const spans = functionSpans(ROOT, sourceFiles(ROOT, ['lib', 'tasks']));
    expect(spans.length).toBeGreaterThan(100); // the scan found the code
    const long = spans.filter((s) => s.lines > MAX_FUNCTION_LINES).map((s) => `${s.file}:${s.line} ${s.name} (${s.lines} lines)`);
    expect(long).toEqual([]);
  });

  it('no task module imports another task module (shared helpers live in lib/ or tasks/plumbing/)', () => {
    const tasks = sourceFiles(ROOT, ['tasks']).filter((f) => !f.startsWith('tasks/plumbing/'));
    expect(tasks).toContain('tasks/deploy.ts');
    const bad = tasks.flatMap((f) =>
      relativeImports(ROOT, f)
        .map((s) => target(f, s))
        .filter((t) => t.startsWith('tasks/') && !t.startsWith('tasks/plumbing/'))
        .map((t) => `${f} imports ${t}`),
    );
    expect(bad).toEqual([]);
  });

  it('lib/ never imports from tasks/ (tasks stand on lib, not the other way round)', () => {
    const bad = sourceFiles(ROOT, ['lib']).flatMap((f) =>
      relativeImports(ROOT, f)
        .map((s) => target(f, s))
        .filter((t) => !t.startsWith('lib/'))
        .map((t) => `${f} imports ${t}`),
    );
    expect(bad).toEqual([]);
  });

  it('no doc refers to a file outside the repository', () => {
    const docs = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).map((f) => `docs/${f}`), 'examples/hello/README.md'].filter((f) =>
      f.endsWith('.md'),
    );
    const bad: string[] = [];
    for (const doc of docs) {
      const text = fs.readFileSync(path.join(ROOT, doc), 'utf8');
      if (/DESIGN\.md|\.\.\/shared\b/.test(text)) bad.push(`${doc}: names a design file outside the repository`);
      for (const m of text.matchAll(/\]\(([^)#\s]+)[^)]*\)|`(\.\.\/[^`\s]+)`/g)) {
        const ref = m[1] ?? m[2]!;
        if (/^[a-z]+:/i.test(ref)) continue; // a URL
        const resolved = path.resolve(ROOT, path.dirname(doc), ref);
        if (!resolved.startsWith(ROOT + path.sep)) bad.push(`${doc}: ${ref} is outside the repository`);
        else if (m[1] && !fs.existsSync(resolved)) bad.push(`${doc}: ${ref} does not exist`);
      }
    }
    expect(bad).toEqual([]);
  });
});
