// `switchyard init`: a commented environment file to start from (the same text as the package's
// env/uat.example.ts, with your site), and the nginx server block to add for it.
import fs from 'node:fs';
import path from 'node:path';
import { SwitchyardError } from '../../lib/errors';
import { nginxServerBlock } from '../../lib/nginx/config';
import { nearest } from '../../lib/nearest';
import { FlagError } from './flags';

const KNOWN = ['--env', '--env-dir', '--site'] as const;
const SAMPLE_SITE = 'uat.example.com';
const SAMPLE_SOCKET_DIR = '/run/switchyard';

function parse(argv: string[]): Record<(typeof KNOWN)[number], string | undefined> {
  const out: Record<string, string | undefined> = {};
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^(--[a-z-]+)=(.*)$/.exec(arg);
    const name = m?.[1] ?? arg;
    // --flag=value, or --flag value as every task takes it
    const value = m ? m[2] : argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-') ? argv[++i] : undefined;
    if (!(KNOWN as readonly string[]).includes(name)) {
      const guess = nearest(name, KNOWN);
      problems.push(`${name}: unknown flag${guess ? `; did you mean ${guess}?` : ''}`);
    } else if (!value) problems.push(`${name}: needs a value, e.g. ${name}=x`);
    else out[name] = value;
  }
  if (out['--env'] !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(out['--env'])) problems.push(`--env: "${out['--env']}" is not a valid environment name`);
  if (out['--site'] !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(out['--site'])) problems.push(`--site: "${out['--site']}" is not a host name`);
  if (problems.length) throw new FlagError(problems);
  return out as Record<(typeof KNOWN)[number], string | undefined>;
}

/** The sample shipped with the package, found from here in the source tree and in dist/. */
function sample(): string {
  for (const dir of [path.join(__dirname, '..', '..', 'env'), path.join(__dirname, '..', '..', '..', 'env')]) {
    const f = path.join(dir, 'uat.example.ts');
    if (fs.existsSync(f)) return fs.readFileSync(f, 'utf8');
  }
  throw new SwitchyardError('init: the sample environment file is missing from the package');
}

export function init(argv: string[], out: (text: string) => void = (t) => void process.stdout.write(t)): void {
  const o = parse(argv);
  const name = o['--env'] ?? 'uat';
  const site = o['--site'] ?? SAMPLE_SITE;
  const dir = path.resolve(o['--env-dir'] ?? process.env.SWITCHYARD_ENV_DIR ?? 'env');
  const file = path.join(dir, `${name}.ts`);
  if (fs.existsSync(file)) throw new SwitchyardError(`init: ${file} already exists; nothing written`);
  const text = sample()
    .replace(/^\/\/ A sample environment:[^\n]*\n(\/\/[^\n]*\n)*/, `// The ${name} environment, written by switchyard init. Every key is checked when loaded: a typo is\n// an error naming this file and the key, before any connection is made (docs/ENVIRONMENT.md).\n`)
    .replaceAll(SAMPLE_SITE, site);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.writeFileSync(file, text, { flag: 'wx', mode: 0o644 });
  const block = nginxServerBlock({ site, socketPath: path.posix.join(SAMPLE_SOCKET_DIR, `SOCK-${site}`), listen: '80' });
  out(`wrote ${path.relative(process.cwd(), file) || file}: fill in build.dir, app.start and hosts, then: switchyard setup --env=${name}\n\n`);
  out(`Add this server block to the nginx of every web host (or set nginx.private: true and let setup run one):\n\n${block}`);
}
