/**
 * nginx configuration text for switchyard sites. Pure functions: no I/O.
 *
 * A site is reached through ONE live unix socket (`<socketDir>/SOCK-<site>`); a deploy
 * renames a new release's socket over that path, so nginx must open a fresh connection
 * to the path for every request (no upstream keepalive pool) and must only ever route
 * the site's own host name to it (an allow-list `map` on `$host`).
 *
 * Every value that ends up in the text comes from user configuration, so each one is
 * validated against a strict pattern first: nothing a user writes can close a directive
 * (`;`), open or close a block (`{` `}`), start a comment (`#`), quote, escape or
 * reference a variable (`$`).
 */
import { listenProblem } from './listen';

export type NginxPass = 'http' | 'fastcgi';

export interface NginxServerBlockOptions {
  /** The public host name nginx sees (also the socket name suffix). */
  site: string;
  /** The live socket: `<socketDir>/SOCK-<site>`. */
  socketPath: string;
  /** nginx `listen` value: `80`, `127.0.0.1:8080`, `[::1]:8080`, `*:80`. */
  listen: string;
  /** How nginx talks to the app on the socket (default `http`). */
  pass?: NginxPass;
  /**
   * fastcgi only, and then required: the release the app serves, `<deployTo>/current`. nginx
   * resolves it per request ($realpath_root) for SCRIPT_FILENAME and DOCUMENT_ROOT, so they name
   * the release the switch made live (releases/<R>), never the symlink.
   */
  documentRoot?: string;
  /** fastcgi only: the page a URI ending in `/` is sent to (fastcgi_index); default `Default.aspx`. */
  fastcgiIndex?: string;
  /** Name of the map variable (without `$`); default derived from the site, unique per site. */
  mapVariable?: string;
  /**
   * app.instances: above 1, an `upstream` of the N live sockets (`<socketPath>`, then
   * `<socketPath>@2`, …), each connected to by path per request as the one socket is.
   */
  instances?: number;
}

export interface NginxMainConfigOptions {
  /** The nginx prefix (`nginx -p <prefix>`); temp paths live directly under it. */
  prefix: string;
  /** Text from nginxServerBlock(), one per site. */
  serverBlocks: string[];
  pidFile: string;
  errorLog: string;
  /** Access log file; `false` turns it off; default `<prefix>/access.log`. */
  accessLog?: string | false;
  /** Worker user. Only meaningful when the master runs as root (else nginx warns and ignores it). */
  user?: string;
  /** Default 1. */
  workerProcesses?: number;
}

// unix(7): sun_path is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH_BYTES = 107;

// Words that `map` treats as parameters rather than source values; a site with one of
// these names must be written with a leading backslash inside the map.
const MAP_KEYWORDS = new Set(['default', 'hostnames', 'include', 'volatile']);

function fail(field: string, value: unknown, why: string): never {
  throw new Error(`nginx config: invalid ${field} ${JSON.stringify(value)}: ${why}`);
}

/**
 * A host name: dot-separated labels of letters, digits and inner hyphens. No leading or
 * trailing dot (nginx would read `.example.com` as a wildcard and strips a trailing dot
 * from `$host`), no `*`, `~`, `_` (wildcard, regex and catch-all syntax in server_name).
 * Returned lower-cased: nginx lower-cases `$host` before the map lookup.
 */
export function validateSiteName(site: unknown, field = 'site'): string {
  if (typeof site !== 'string' || site === '') fail(field, site, 'expected a non-empty host name');
  if (site.length > 253) fail(field, site, 'longer than 253 characters');
  if (!/^[A-Za-z0-9.-]+$/.test(site)) {
    fail(field, site, 'a host name may only contain letters, digits, "." and "-"');
  }
  for (const label of site.split('.')) {
    if (label === '') fail(field, site, 'empty label (leading, trailing or doubled ".")');
    if (label.length > 63) fail(field, site, `label "${label}" is longer than 63 characters`);
    if (label.startsWith('-') || label.endsWith('-')) {
      fail(field, site, `label "${label}" starts or ends with "-"`);
    }
  }
  return site.toLowerCase();
}

/**
 * An absolute path that is safe as a bare nginx token: no whitespace or control
 * characters, none of `; { } " ' $ # \` (directive end, blocks, quotes, variables,
 * comments, escapes), and no `:` (it would end the path inside `http://unix:<path>:`).
 */
export function validateAbsolutePath(path: unknown, field: string): string {
  if (typeof path !== 'string' || path === '') fail(field, path, 'expected an absolute path');
  if (!path.startsWith('/')) fail(field, path, 'must be an absolute path');
  // eslint-disable-next-line no-control-regex
  if (/[\s\x00-\x1f\x7f]/.test(path)) fail(field, path, 'must not contain whitespace or control characters');
  const bad = path.match(/[;{}"'`$#\\:]/);
  if (bad) fail(field, path, `must not contain ${JSON.stringify(bad[0])}`);
  return path;
}

function validateListen(listen: unknown): string {
  if (typeof listen !== 'string') fail('listen', listen, 'expected "PORT" or "ADDRESS:PORT"');
  const problem = listenProblem(listen);
  if (problem) fail('listen', listen, problem);
  return listen;
}

function validateVariable(name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    fail('mapVariable', name, 'expected a variable name without "$" ([A-Za-z_][A-Za-z0-9_]*)');
  }
  return name;
}

/**
 * The default map variable for a site: `sy_` + the lower-cased name with "." → "_" and
 * "-" → "__". Injective for valid site names (dots and hyphens never touch each other
 * or the ends, so a run of underscores has length 1 for a dot, 2k for k hyphens): two
 * sites in one nginx never share a variable (a second `map` of the same variable would
 * silently replace the first one).
 */
export function defaultMapVariable(site: string): string {
  return 'sy_' + validateSiteName(site).replace(/-/g, '__').replace(/\./g, '_');
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((line) => (line === '' ? line : prefix + line))
    .join('\n');
}

// FastCGI request parameters: the ones nginx ships in its fastcgi_params file (Debian's, with
// HTTP_HOST as $host), written inline because a private nginx prefix has no such file, with
// DOCUMENT_ROOT, SCRIPT_FILENAME and PATH_INFO from the release as resolved per request. HTTP_HOST
// is $host, like the Host header of the http pass: the app sees the validated, lower-cased name,
// never the raw header. remote-scripts/lib.sh's health check (sy_fcgi_params) sends the same.
const FASTCGI_PARAMS: ReadonlyArray<readonly [string, string]> = [
  ['QUERY_STRING', '$query_string'],
  ['REQUEST_METHOD', '$request_method'],
  ['CONTENT_TYPE', '$content_type'],
  ['CONTENT_LENGTH', '$content_length'],
  ['SCRIPT_NAME', '$fastcgi_script_name'],
  ['SCRIPT_FILENAME', '$realpath_root$fastcgi_script_name'],
  ['PATH_INFO', '$fastcgi_path_info'],
  ['REQUEST_URI', '$request_uri'],
  ['DOCUMENT_URI', '$document_uri'],
  ['DOCUMENT_ROOT', '$realpath_root'],
  ['SERVER_PROTOCOL', '$server_protocol'],
  ['REQUEST_SCHEME', '$scheme'],
  ['HTTPS', '$https if_not_empty'],
  ['GATEWAY_INTERFACE', 'CGI/1.1'],
  ['SERVER_SOFTWARE', 'nginx/$nginx_version'],
  ['REMOTE_ADDR', '$remote_addr'],
  ['REMOTE_PORT', '$remote_port'],
  ['REMOTE_USER', '$remote_user'],
  ['SERVER_ADDR', '$server_addr'],
  ['SERVER_PORT', '$server_port'],
  ['SERVER_NAME', '$server_name'],
  ['REDIRECT_STATUS', '200'],
  ['HTTP_HOST', '$host'],
];

/** The fastcgi pass to `via` (the live socket, or the instances' upstream): the release's directory as the root, the path split, the params. */
function fastcgiLines(o: NginxServerBlockOptions, via: string): string[] {
  if (o.documentRoot === undefined) fail('documentRoot', o.documentRoot, 'required with pass "fastcgi" (<deployTo>/current)');
  const root = validateAbsolutePath(o.documentRoot, 'documentRoot');
  const index = o.fastcgiIndex ?? 'Default.aspx';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(index)) fail('fastcgiIndex', index, 'expected a file name such as Default.aspx or index.php');
  return [
    '# fastcgi_keep_conn stays off: a kept connection would stay on the OLD release',
    '# after a switch. One connection per request.',
    `fastcgi_pass ${via};`,
    '# $realpath_root: the current symlink resolved for each request, so SCRIPT_FILENAME',
    '# names the release that is live now (nginx itself reads no file of it).',
    `root ${root};`,
    `fastcgi_index ${index};`,
    '# /Page.aspx/more: SCRIPT_NAME /Page.aspx, PATH_INFO /more',
    'fastcgi_split_path_info ^(.+?\\.[A-Za-z0-9]+)(/.*)$;',
    ...FASTCGI_PARAMS.map(([name, value]) => `fastcgi_param ${name.padEnd(17)} ${value};`),
  ];
}

/**
 * The upstream of app.instances > 1 live sockets (none for one: the socket path is used as is).
 * No keepalive pool, as for one socket; a failed connect moves on to the next instance.
 */
function instancesUpstream(name: string, socketPath: string, n: number): string[] {
  if (n === 1) return [];
  const servers = Array.from({ length: n }, (_, i) => `    server unix:${socketPath}${i === 0 ? '' : `@${i + 1}`};`);
  return [`upstream ${name} {`, ...servers, `}`, ``];
}

/**
 * The `map` allow-list and the `server` block for one site. Goes inside `http {}`.
 */
export function nginxServerBlock(o: NginxServerBlockOptions): string {
  const site = validateSiteName(o.site);
  const socketPath = validateAbsolutePath(o.socketPath, 'socketPath');
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    fail('socketPath', socketPath, `longer than ${MAX_SOCKET_PATH_BYTES} bytes (unix socket path limit)`);
  }
  const listen = validateListen(o.listen);
  const pass = o.pass ?? 'http';
  if (pass !== 'http' && pass !== 'fastcgi') fail('pass', pass, 'expected "http" or "fastcgi"');
  const v = o.mapVariable === undefined ? defaultMapVariable(site) : validateVariable(o.mapVariable);
  const mapKey = MAP_KEYWORDS.has(site) ? `\\${site}` : site;
  const n = o.instances ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > 16) fail('instances', n, 'expected an integer from 1 to 16');
  const pool = instancesUpstream(`${v}_instances`, socketPath, n);
  const target = pool.length ? `${v}_instances` : socketPath;
  const via = pool.length ? `$${v}` : pass === 'http' ? `unix:$${v}:` : `unix:$${v}`;

  const passLines =
    pass === 'http'
      ? [
          '# No upstream{} keepalive pool: a pooled connection stays on the socket inode it',
          '# was opened to, i.e. on the OLD release after a switch. One connection per request.',
          `proxy_pass http://${via};`,
          'proxy_http_version 1.1;',
          'proxy_set_header Connection "";',
          'proxy_set_header Host $host;',
          'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
          'proxy_set_header X-Forwarded-Proto $scheme;',
        ]
      : fastcgiLines(o, via);

  return [
    `# switchyard site ${site}: ${pass} over the live socket ${socketPath}`,
    `# Allow-list on $host (never $http_host: a port in the Host header would end up in the`,
    `# socket path). Any other host name maps to "" and is refused below, so no Host header`,
    `# can reach a release's own socket (SOCK-${site}-<release>) or another site.`,
    ...pool,
    `map $host $${v} {`,
    `    default "";`,
    `    ${mapKey} ${target};`,
    `}`,
    ``,
    `server {`,
    `    listen ${listen};`,
    `    server_name ${site};`,
    ``,
    `    # 421 Misdirected Request for every host name this block does not serve. nginx hands`,
    `    # requests with an unknown Host to the default (first) server of the listen address,`,
    `    # which may be this one.`,
    `    if ($${v} = "") {`,
    `        return 421;`,
    `    }`,
    ``,
    `    location / {`,
    indent(passLines.join('\n'), '        '),
    `    }`,
    `}`,
    ``,
  ].join('\n');
}

/**
 * A complete nginx.conf for a private nginx that needs no root and touches nothing outside
 * its prefix and the given files. Start it with
 *   nginx -p <prefix> -e <errorLog> -c <conf> -g 'daemon off;'
 * (`-e` keeps nginx from opening its compiled-in error log before it reads this file).
 */
export function nginxMainConfig(o: NginxMainConfigOptions): string {
  const prefix = validateAbsolutePath(o.prefix, 'prefix').replace(/\/+$/, '') || '/';
  const pidFile = validateAbsolutePath(o.pidFile, 'pidFile');
  const errorLog = validateAbsolutePath(o.errorLog, 'errorLog');
  const under = (name: string) => (prefix === '/' ? `/${name}` : `${prefix}/${name}`);
  const accessLog =
    o.accessLog === false
      ? 'off'
      : validateAbsolutePath(o.accessLog === undefined ? under('access.log') : o.accessLog, 'accessLog');
  if (o.user !== undefined && !/^[A-Za-z_][A-Za-z0-9._-]*$/.test(o.user)) {
    fail('user', o.user, 'expected a user name ([A-Za-z_][A-Za-z0-9._-]*)');
  }
  const workers = o.workerProcesses ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > 1024) {
    fail('workerProcesses', workers, 'expected an integer from 1 to 1024');
  }
  if (!Array.isArray(o.serverBlocks) || o.serverBlocks.some((b) => typeof b !== 'string')) {
    fail('serverBlocks', o.serverBlocks, 'expected an array of strings');
  }

  const lines = [
    `# switchyard: a private nginx. Start with`,
    `#   nginx -p ${prefix} -e ${errorLog} -c <this file> -g 'daemon off;'`,
  ];
  if (o.user !== undefined) {
    lines.push(`# Workers run as this user when the master runs as root (it must be able to open the sockets).`);
    lines.push(`user ${o.user};`);
  }
  lines.push(
    `worker_processes ${workers};`,
    `pid ${pidFile};`,
    `error_log ${errorLog};`,
    ``,
    `events {`,
    `    worker_connections 1024;`,
    `}`,
    ``,
    `http {`,
    `    # combined, then which socket answered and with what: a 4xx/5xx from the app or from nginx`,
    `    log_format switchyard '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" upstream=$upstream_addr upstream_status=$upstream_status msec=$msec';`,
    `    access_log ${accessLog === 'off' ? 'off' : `${accessLog} switchyard`};`,
    `    # Every temp path under the prefix: the compiled-in ones (/var/lib/nginx) need root.`,
    `    client_body_temp_path ${under('client_body_temp')};`,
    `    proxy_temp_path ${under('proxy_temp')};`,
    `    fastcgi_temp_path ${under('fastcgi_temp')};`,
    `    uwsgi_temp_path ${under('uwsgi_temp')};`,
    `    scgi_temp_path ${under('scgi_temp')};`,
    `    default_type application/octet-stream;`,
    `    server_tokens off;`,
  );
  for (const block of o.serverBlocks) {
    lines.push('', indent(block.replace(/\n+$/, ''), '    '));
  }
  lines.push(`}`, ``);
  return lines.join('\n');
}
