// Building environments in tests: a valid base plus whatever the test changes.
import { validateEnvironment, type Environment, type EnvironmentInput } from '../../lib/environment';

export function baseInput(over: Partial<EnvironmentInput> = {}): EnvironmentInput {
  return {
    site: 'app.test',
    build: { dir: 'examples/hello' },
    app: { start: ['node', 'server.js', '--socket', '{socket}'] },
    hosts: [{ name: 'h1', address: '127.0.0.1', roles: ['web', 'app'] }],
    deployTo: '/srv/app',
    socketDir: '/run/sy',
    ...over,
  };
}

export function makeEnv(over: Partial<EnvironmentInput> = {}, root = process.cwd()): Environment {
  return validateEnvironment(baseInput(over), { name: 'test', file: 'env/test.ts', root });
}
