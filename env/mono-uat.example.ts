// A Mono ASP.NET app on FastCGI (examples/mono-shop): copy to env/mono-uat.ts. What differs from
// env/uat.example.ts is the FastCGI part: the start command, nginx.pass, the health page, and
// retire.drain 'connections' (fastcgi-mono-server4 exits at once on SIGTERM, so retire waits
// until the old server has answered every request it took before it signals it).
import { defineEnvironment, secret } from 'gulp-switchyard';

export default defineEnvironment({
  site: 'shop.uat.example.com',
  build: { dir: 'examples/mono-shop' },
  app: {
    // Debian's mono-fastcgi-server4; the release directory is its cwd, so /applications=/:. serves it.
    start: ['fastcgi-mono-server4', '/applications=/:.', '/socket=unix:{socket}'],
    // Mono starts in ~0.3 s; the first request compiles the pages (~1 s): the health check pays that.
    startTimeoutSeconds: 30,
    // A page, not a directory: the FastCGI health check sends SCRIPT_NAME as given.
    health: { path: '/Health.aspx', timeoutSeconds: 30, expectStatus: 200 },
  },
  hosts: [
    // web2 sets its own Node (host-level overrides win over the environment's, per key)
    { name: 'web1', address: 'web1.uat.internal', roles: ['web', 'app'], primary: true, config: { 'Web.config': { appSettings: { Node: 'web1' } } } },
    { name: 'web2', address: 'web2.uat.internal', roles: ['web', 'app'], config: { 'Web.config': { appSettings: { Node: 'web2', Greeting: 'hello from the second server' } } } },
  ],
  ssh: { user: 'deploy' },
  deployTo: '/srv/shop.uat.example.com',
  socketDir: '/run/switchyard',
  socket: { mode: '0660', group: 'www-data' },
  // FastCGI: the generated server block passes SCRIPT_FILENAME from <deployTo>/current, resolved per
  // request; fastcgiIndex is the page a path ending in / is sent to.
  nginx: { listen: '80', pass: 'fastcgi', fastcgiIndex: 'Default.aspx' },
  // The old server is stopped only once the requests it accepted are answered (Slow.aspx takes 2 s).
  retire: { graceSeconds: 2, drain: 'connections', drainSeconds: 30 },
  config: {
    'Web.config': {
      appSettings: { Environment: 'uat', Greeting: 'hello from UAT' },
      // the whole connection string is the secret: the variable MONO_SHOP_DB (or a secrets file)
      connectionStrings: { Shop: secret('MONO_SHOP_DB') },
      xpath: {
        "/configuration/appSettings/add[@key='Currency']/@value": 'EUR',
        '/configuration/system.web/compilation/@debug': false,
      },
    },
  },
});
