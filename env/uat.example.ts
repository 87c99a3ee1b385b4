// A sample environment: copy to env/uat.ts (or keep it in the systems team's repository and
// point --env-dir / SWITCHYARD_ENV_DIR at it). Every key is checked when loaded: a typo is an
// error naming the file and the key, before any connection is made.
import { defineEnvironment, secret } from 'gulp-switchyard';

export default defineEnvironment({
  // What nginx sees in the Host header; the live socket is <socketDir>/SOCK-<site>.
  site: 'uat.example.com',
  // What becomes the release, relative to the project root (your build's output).
  build: { dir: 'dist' },
  app: {
    // argv, never a shell string: each word reaches the server as one quoted word.
    // {socket} is the unix socket the app must listen on; {release} the release id.
    start: ['node', 'server.js', '--socket', '{socket}'],
    env: { NODE_ENV: 'production' },
    roles: ['app'],
    startTimeoutSeconds: 30,
    health: { path: '/health', timeoutSeconds: 30, expectStatus: 200 },
  },
  // Adding a server is adding a line here.
  hosts: [
    { name: 'web1', address: 'web1.uat.internal', roles: ['web', 'app'], primary: true },
    { name: 'web2', address: 'web2.uat.internal', roles: ['web', 'app'] },
    { name: 'db1', address: 'db1.uat.internal', roles: ['db'], primary: true },
  ],
  // Login: per host, here, or from ~/.ssh/config (Host aliases work as `address`; so do its
  // ProxyJump and ProxyCommand). Behind a bastion: proxyJump: 'deploy@bastion.example.com'.
  ssh: { user: 'deploy', knownHostsFile: '~/.ssh/known_hosts' },
  deployTo: '/srv/uat.example.com',
  socketDir: '/run/switchyard',
  // nginx workers connect to the socket: give it their group.
  socket: { mode: '0660', group: 'www-data' },
  shared: ['logs', 'uploads'],
  keepReleases: 5,
  // 2 s between the switch and closing the old listener (measured: below 1 s drops requests).
  retire: { graceSeconds: 2, drainSeconds: 30 },
  nginx: { listen: '80', pass: 'http', roles: ['web'] },
  config: {
    'Web.config': {
      appSettings: { Environment: 'uat', ApiUrl: 'https://api.uat.example.com/' },
      connectionStrings: { Main: secret('UAT_DB_CONNECTION') },
    },
  },
});
