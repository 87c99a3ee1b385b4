// @ts-check
// hello: the smallest app switchyard can release with zero dropped requests. No dependencies.
//
//   node server.js --socket PATH     listen on a unix socket (what switchyard does: --socket {socket})
//   node server.js --port N          listen on 127.0.0.1:N (for trying it by hand)
//
// GET /        200 "hello from release <SWITCHYARD_RELEASE>\n" with header x-release
// GET /health  200 "ok"
//
// On SIGTERM (or SIGINT) it drains: stops accepting, closes idle keep-alive connections, lets
// in-flight requests finish (their connections are closed after the response), then exits 0;
// after HELLO_DRAIN_MS (default 10000) it gives up and exits 1.
//
// Test switches (environment): HELLO_FAIL_HEALTH=1 → /health answers 500; HELLO_DIE_ON_TERM=1 →
// exit(1) at once on SIGTERM (no drain: a negative control); HELLO_DELAY_MS=N → every response
// waits N ms; HELLO_NO_LISTEN=1 → never listens (a start failure).
'use strict';

const http = require('node:http');

const release = process.env.SWITCHYARD_RELEASE || 'dev';
const env = process.env;
const delayMs = Number(env.HELLO_DELAY_MS || 0);
const drainMs = Number(env.HELLO_DRAIN_MS || 10000);

/** @param {string} name */
function arg(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function log(/** @type {string} */ msg) {
  process.stdout.write(`${new Date().toISOString()} [hello ${release} pid ${process.pid}] ${msg}\n`);
}

let draining = false;

const server = http.createServer((req, res) => {
  const send = () => {
    const path = (req.url || '/').split('?')[0];
    let status = 200;
    let body = `hello from release ${release}\n`;
    if (path === '/health') {
      status = env.HELLO_FAIL_HEALTH === '1' ? 500 : 200;
      body = status === 200 ? 'ok' : 'unhealthy';
    } else if (path !== '/') {
      status = 404;
      body = 'not found\n';
    }
    // While draining, ask the client to close the connection so keep-alive ends with this response.
    if (draining) res.setHeader('connection', 'close');
    // x-pid: which process answered (app.instances runs several behind one upstream)
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-release': release, 'x-pid': String(process.pid) });
    res.end(body);
  };
  if (delayMs > 0) setTimeout(send, delayMs);
  else send();
});

function shutdown(/** @type {string} */ signal) {
  if (env.HELLO_DIE_ON_TERM === '1') {
    log(`${signal}: dying at once (HELLO_DIE_ON_TERM)`);
    process.exit(1);
  }
  if (draining) return;
  draining = true;
  log(`${signal}: draining`);
  // Never wait forever: a stuck request must not keep the old release running.
  setTimeout(() => {
    log(`drain took more than ${drainMs} ms: exiting anyway`);
    process.exit(1);
  }, drainMs).unref();
  if (!server.listening) process.exit(0);
  // 1. stop accepting; the callback runs once every connection has ended.
  server.close(() => {
    log('drained');
    process.exit(0);
  });
  // 2. keep-alive connections waiting for their next request would hold close() open: end them.
  server.closeIdleConnections();
  // 3. busy connections end after their response (connection: close above); sweep any that
  //    became idle without one.
  setInterval(() => server.closeIdleConnections(), 100).unref();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

const socket = arg('--socket') || env.SWITCHYARD_SOCKET;
const port = arg('--port');

if (env.HELLO_NO_LISTEN === '1') {
  log('HELLO_NO_LISTEN: not listening');
  setInterval(() => {}, 60_000);
} else if (socket) {
  server.listen(socket, () => log(`listening on ${socket}`));
} else if (port) {
  server.listen(Number(port), '127.0.0.1', () => log(`listening on 127.0.0.1:${port}`));
} else {
  process.stderr.write('usage: node server.js --socket PATH | --port N\n');
  process.exit(2);
}
