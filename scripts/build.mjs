// Usage: node scripts/build.mjs   (npm run build; npm pack runs it as prepack)
//
// Builds the published package into dist/: CommonJS JavaScript and declarations from tsc
// (tsconfig.build.json), the remote scripts beside them (dist/lib/remote/commands.js finds
// dist/remote-scripts as the source finds remote-scripts), and dist/index.mjs, the ESM face of
// the same CommonJS module (named exports listed, so `import { createTasks }` works everywhere).
// Exit codes: 0 built; 1 tsc or a copy failed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
fs.rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
// the scripts only: the directory's dotfiles (.shellcheckrc) are the linter's, not the package's
fs.cpSync(path.join(root, 'remote-scripts'), path.join(dist, 'remote-scripts'), { recursive: true, filter: (src) => !path.basename(src).startsWith('.') });
fs.chmodSync(path.join(dist, 'bin', 'switchyard.js'), 0o755);

const require = createRequire(import.meta.url);
const zodDir = path.dirname(require.resolve('zod/package.json'));
const zodVersion = JSON.parse(fs.readFileSync(path.join(zodDir, 'package.json'), 'utf8')).version;
require('esbuild').buildSync({
  entryPoints: [path.join(root, 'lib', 'vendor', 'zod.ts')],
  outfile: path.join(dist, 'lib', 'vendor', 'zod.js'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  banner: { js: `// zod ${zodVersion} (MIT, ./zod.LICENSE), the part lib/vendor/zod.ts names, bundled by scripts/build.mjs` },
  logLevel: 'warning',
});
fs.copyFileSync(path.join(zodDir, 'LICENSE'), path.join(dist, 'lib', 'vendor', 'zod.LICENSE'));

const names = Object.keys(require(path.join(dist, 'index.js'))).filter((n) => n !== 'default' && n !== '__esModule');
const esm = [
  '// The ESM face of the CommonJS package: one module instance whichever way it is loaded.',
  "import sy from './index.js';",
  `export const { ${names.join(', ')} } = sy;`,
  'export default sy;',
  '',
].join('\n');
fs.writeFileSync(path.join(dist, 'index.mjs'), esm);
console.log(`dist/: built (${names.length} exports)`);
