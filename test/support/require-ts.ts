// lib/config/schema.ts loads lib/vendor/zod with a lazy require() (start-up: a command that never
// validates does not pay for zod). Under vitest that is node's own require, which loads a .ts
// file only with a hook: this one compiles it with esbuild, as `node -r esbuild-register` does for
// the sources (esbuild-register itself would also remap module resolution by tsconfig's paths).
import fs from 'node:fs';
import Module from 'node:module';
import { transformSync } from 'esbuild';

type Loader = (m: { _compile(code: string, file: string): void }, file: string) => void;
const extensions = (Module as unknown as { _extensions: Record<string, Loader> })._extensions;
extensions['.ts'] ??= (m, file) => {
  m._compile(transformSync(fs.readFileSync(file, 'utf8'), { loader: 'ts', format: 'cjs', target: 'node20', sourcefile: file }).code, file);
};
