// The built-in default: deploys examples/hello on this machine (no SSH) into .switchyard/local/
// and serves it through a private nginx on 127.0.0.1:8080 that `gulp setup` starts (no root).
import path from 'node:path';
import { defineEnvironment } from 'gulp-switchyard';

const here = path.resolve(__dirname, '..', '.switchyard', 'local');

export default defineEnvironment({
  site: 'localhost',
  transport: 'local',
  build: { dir: 'examples/hello' },
  app: {
    start: [process.execPath, 'server.js', '--socket', '{socket}'],
    health: { path: '/health', timeoutSeconds: 15 },
  },
  hosts: [{ name: 'local', roles: ['web', 'app'] }],
  deployTo: path.join(here, 'app'),
  socketDir: path.join(here, 's'),
  shared: ['logs'],
  keepReleases: 3,
  retire: { graceSeconds: 2, drainSeconds: 10 },
  // SWITCHYARD_LOCAL_LISTEN moves it (the test suite runs a second demo beside yours).
  nginx: { listen: process.env.SWITCHYARD_LOCAL_LISTEN ?? '127.0.0.1:8080', private: true },
});
