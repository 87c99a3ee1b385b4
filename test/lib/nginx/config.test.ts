import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultMapVariable, nginxMainConfig, nginxServerBlock } from '../../../lib/nginx/config';

const execFileP = promisify(execFile);

/** The text without its comments. */
const directives = (text: string) => text.replace(/#.*$/gm, '');

const base = { site: 'app.test', socketPath: '/srv/s/SOCK-app.test', listen: '127.0.0.1:8080' };

describe('nginxServerBlock', () => {
  it('renders the http pass exactly', () => {
    expect(nginxServerBlock(base)).toBe(
      `# switchyard site app.test: http over the live socket /srv/s/SOCK-app.test
# Allow-list on $host (never $http_host: a port in the Host header would end up in the
# socket path). Any other host name maps to "" and is refused below, so no Host header
# can reach a release's own socket (SOCK-app.test-<release>) or another site.
map $host $sy_app_test {
    default "";
    app.test /srv/s/SOCK-app.test;
}

server {
    listen 127.0.0.1:8080;
    server_name app.test;

    # 421 Misdirected Request for every host name this block does not serve. nginx hands
    # requests with an unknown Host to the default (first) server of the listen address,
    # which may be this one.
    if ($sy_app_test = "") {
        return 421;
    }

    location / {
        # No upstream{} keepalive pool: a pooled connection stays on the socket inode it
        # was opened to, i.e. on the OLD release after a switch. One connection per request.
        proxy_pass http://unix:$sy_app_test:;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }
}
`,
    );
  });

  it('app.instances 3: an upstream of the three live sockets (no keepalive), reached through the same allow-list', () => {
    const text = nginxServerBlock({ ...base, instances: 3 });
    expect(text).toContain(`upstream sy_app_test_instances {
    server unix:/srv/s/SOCK-app.test;
    server unix:/srv/s/SOCK-app.test@2;
    server unix:/srv/s/SOCK-app.test@3;
}

map $host $sy_app_test {
    default "";
    app.test sy_app_test_instances;
}`);
    expect(text).toContain('        proxy_pass http://$sy_app_test;\n');
    expect(nginxServerBlock({ ...base, instances: 2, pass: 'fastcgi', documentRoot: '/srv/app/current' })).toContain('        fastcgi_pass $sy_app_test;\n');
    expect(directives(text)).not.toMatch(/keepalive/);
    expect(nginxServerBlock({ ...base, instances: 1 })).toBe(nginxServerBlock(base));
    expect(() => nginxServerBlock({ ...base, instances: 17 })).toThrow(/instances/);
  });

  it('renders the fastcgi pass exactly: the release resolved per request, PATH_INFO, the index, nginx\'s own params, no keepalive', () => {
    const text = nginxServerBlock({ ...base, pass: 'fastcgi', mapVariable: 'app_sock', listen: '80', documentRoot: '/srv/app/current' });
    expect(text).toBe(
      `# switchyard site app.test: fastcgi over the live socket /srv/s/SOCK-app.test
# Allow-list on $host (never $http_host: a port in the Host header would end up in the
# socket path). Any other host name maps to "" and is refused below, so no Host header
# can reach a release's own socket (SOCK-app.test-<release>) or another site.
map $host $app_sock {
    default "";
    app.test /srv/s/SOCK-app.test;
}

server {
    listen 80;
    server_name app.test;

    # 421 Misdirected Request for every host name this block does not serve. nginx hands
    # requests with an unknown Host to the default (first) server of the listen address,
    # which may be this one.
    if ($app_sock = "") {
        return 421;
    }

    location / {
        # fastcgi_keep_conn stays off: a kept connection would stay on the OLD release
        # after a switch. One connection per request.
        fastcgi_pass unix:$app_sock;
        # $realpath_root: the current symlink resolved for each request, so SCRIPT_FILENAME
        # names the release that is live now (nginx itself reads no file of it).
        root /srv/app/current;
        fastcgi_index Default.aspx;
        # /Page.aspx/more: SCRIPT_NAME /Page.aspx, PATH_INFO /more
        fastcgi_split_path_info ^(.+?\\.[A-Za-z0-9]+)(/.*)$;
        fastcgi_param QUERY_STRING      $query_string;
        fastcgi_param REQUEST_METHOD    $request_method;
        fastcgi_param CONTENT_TYPE      $content_type;
        fastcgi_param CONTENT_LENGTH    $content_length;
        fastcgi_param SCRIPT_NAME       $fastcgi_script_name;
        fastcgi_param SCRIPT_FILENAME   $realpath_root$fastcgi_script_name;
        fastcgi_param PATH_INFO         $fastcgi_path_info;
        fastcgi_param REQUEST_URI       $request_uri;
        fastcgi_param DOCUMENT_URI      $document_uri;
        fastcgi_param DOCUMENT_ROOT     $realpath_root;
        fastcgi_param SERVER_PROTOCOL   $server_protocol;
        fastcgi_param REQUEST_SCHEME    $scheme;
        fastcgi_param HTTPS             $https if_not_empty;
        fastcgi_param GATEWAY_INTERFACE CGI/1.1;
        fastcgi_param SERVER_SOFTWARE   nginx/$nginx_version;
        fastcgi_param REMOTE_ADDR       $remote_addr;
        fastcgi_param REMOTE_PORT       $remote_port;
        fastcgi_param REMOTE_USER       $remote_user;
        fastcgi_param SERVER_ADDR       $server_addr;
        fastcgi_param SERVER_PORT       $server_port;
        fastcgi_param SERVER_NAME       $server_name;
        fastcgi_param REDIRECT_STATUS   200;
        fastcgi_param HTTP_HOST         $host;
    }
}
`,
    );
    expect(directives(text)).not.toMatch(/proxy_|keepalive|fastcgi_keep_conn|upstream|\$http_host/);
    expect(nginxServerBlock({ ...base, pass: 'fastcgi', documentRoot: '/srv/app/current', fastcgiIndex: 'index.php' })).toContain('        fastcgi_index index.php;\n');
  });

  it.each([
    [{ documentRoot: undefined }, /invalid documentRoot undefined: required with pass "fastcgi"/],
    [{ documentRoot: 'current' }, /invalid documentRoot "current": must be an absolute path/],
    [{ documentRoot: '/srv/$x/current' }, /invalid documentRoot "\/srv\/\$x\/current": must not contain "\$"/],
    [{ fastcgiIndex: 'index.php;' }, /invalid fastcgiIndex "index.php;"/],
    [{ fastcgiIndex: '../x' }, /invalid fastcgiIndex/],
  ])('refuses a fastcgi block with %j', (over, message) => {
    expect(() => nginxServerBlock({ ...base, pass: 'fastcgi', documentRoot: '/srv/app/current', ...(over as object) })).toThrow(message);
  });

  it('never routes on $http_host and has no keepalive pool in the http pass', () => {
    const text = nginxServerBlock(base);
    expect(directives(text)).not.toMatch(/\$http_host|keepalive|upstream/);
    const firstWords = directives(text)
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .map((l) => l.split(/[ ;]/)[0]);
    expect(firstWords).toEqual([
      'map',
      'default',
      'app.test',
      '}',
      'server',
      'listen',
      'server_name',
      'if',
      'return',
      '}',
      'location',
      'proxy_pass',
      'proxy_http_version',
      'proxy_set_header',
      'proxy_set_header',
      'proxy_set_header',
      'proxy_set_header',
      '}',
      '}',
    ]);
  });

  it('lower-cases the site ($host is lower-case) and escapes map keywords', () => {
    const text = nginxServerBlock({ ...base, site: 'App.Example.COM', socketPath: '/s/SOCK-App.Example.COM' });
    expect(text).toContain('    app.example.com /s/SOCK-App.Example.COM;\n');
    expect(text).toContain('    server_name app.example.com;\n');
    expect(text).toContain('map $host $sy_app_example_com {');
    // a bare "default"/"include" would be read as map parameters
    expect(nginxServerBlock({ ...base, site: 'default' })).toContain('    \\default /srv/s/SOCK-app.test;\n');
    expect(nginxServerBlock({ ...base, site: 'include' })).toContain('    \\include /srv/s/SOCK-app.test;\n');
    expect(nginxServerBlock({ ...base, site: 'localhost' })).toContain('    localhost /srv/s/SOCK-app.test;\n');
  });

  it('derives distinct map variables for distinct sites', () => {
    const sites = ['a-b.test', 'a.b.test', 'a--b.test', 'ab.test', 'a.b-test', 'a-b-test', 'A-B.test'];
    const vars = sites.map(defaultMapVariable);
    expect(vars).toEqual(['sy_a__b_test', 'sy_a_b_test', 'sy_a____b_test', 'sy_ab_test', 'sy_a_b__test', 'sy_a__b__test', 'sy_a__b_test']);
    // case-insensitive names share one variable, every other pair differs
    expect(new Set(vars).size).toBe(sites.length - 1);
  });

  it.each([
    [{ site: '' }, /invalid site "": expected a non-empty host name/],
    [{ site: 'app.test;' }, /invalid site "app\.test;"/],
    [{ site: 'app.test {}' }, /invalid site/],
    [{ site: 'a;include /etc/passwd' }, /invalid site/],
    [{ site: '*.app.test' }, /invalid site/],
    [{ site: '~^app' }, /invalid site/],
    [{ site: '_' }, /invalid site "_"/],
    [{ site: '.app.test' }, /invalid site "\.app\.test": empty label/],
    [{ site: 'app.test.' }, /invalid site "app\.test\.": empty label/],
    [{ site: 'app..test' }, /invalid site .*empty label/],
    [{ site: '-app.test' }, /invalid site .*starts or ends with "-"/],
    [{ site: 'app$host' }, /invalid site/],
    [{ site: 'a'.repeat(64) + '.test' }, /invalid site .*longer than 63/],
    [{ socketPath: 'relative/SOCK' }, /invalid socketPath "relative\/SOCK": must be an absolute path/],
    [{ socketPath: '' }, /invalid socketPath/],
    [{ socketPath: '/s/SOCK app' }, /invalid socketPath .*whitespace/],
    [{ socketPath: '/s/SOCK\napp' }, /invalid socketPath .*whitespace/],
    [{ socketPath: '/s/SOCK;return' }, /invalid socketPath .*must not contain ";"/],
    [{ socketPath: '/s/}SOCK' }, /invalid socketPath .*must not contain "}"/],
    [{ socketPath: '/s/{SOCK' }, /invalid socketPath .*must not contain "{"/],
    [{ socketPath: '/s/"SOCK' }, /invalid socketPath .*must not contain "\\""/],
    [{ socketPath: "/s/'SOCK" }, /invalid socketPath .*must not contain "'"/],
    [{ socketPath: '/s/$host' }, /invalid socketPath .*must not contain "\$"/],
    [{ socketPath: '/s/#SOCK' }, /invalid socketPath .*must not contain "#"/],
    [{ socketPath: '/s/SO\\CK' }, /invalid socketPath .*must not contain "\\\\"/],
    [{ socketPath: '/s/a:b' }, /invalid socketPath .*must not contain ":"/],
    [{ socketPath: '/' + 'x'.repeat(107) }, /invalid socketPath .*longer than 107 bytes/],
    [{ listen: '' }, /invalid listen ""/],
    [{ listen: '80;' }, /invalid listen "80;"/],
    [{ listen: '80 default_server' }, /invalid listen/],
    [{ listen: '0' }, /invalid listen "0"/],
    [{ listen: '65536' }, /invalid listen/],
    [{ listen: 'unix:/tmp/x' }, /invalid listen/],
    [{ pass: 'uwsgi' }, /invalid pass "uwsgi"/],
    [{ mapVariable: '$app' }, /invalid mapVariable "\$app"/],
    [{ mapVariable: 'app sock' }, /invalid mapVariable/],
    [{ mapVariable: '1app' }, /invalid mapVariable/],
  ])('refuses %j', (override, message) => {
    expect(() => nginxServerBlock({ ...base, ...(override as object) } as Parameters<typeof nginxServerBlock>[0])).toThrow(message);
  });

  it('accepts the listen forms nginx knows', () => {
    for (const listen of ['80', '127.0.0.1:8080', '[::1]:8080', '*:80', 'localhost:8080', '65535']) {
      expect(nginxServerBlock({ ...base, listen })).toContain(`    listen ${listen};\n`);
    }
  });
});

describe('nginxMainConfig', () => {
  const main = { prefix: '/x/ngx', serverBlocks: [], pidFile: '/x/ngx/nginx.pid', errorLog: '/x/ngx/error.log' };

  it('renders a complete private config exactly', () => {
    const block = nginxServerBlock(base);
    expect(nginxMainConfig({ ...main, serverBlocks: [block], user: 'root', workerProcesses: 2 })).toBe(
      `# switchyard: a private nginx. Start with
#   nginx -p /x/ngx -e /x/ngx/error.log -c <this file> -g 'daemon off;'
# Workers run as this user when the master runs as root (it must be able to open the sockets).
user root;
worker_processes 2;
pid /x/ngx/nginx.pid;
error_log /x/ngx/error.log;

events {
    worker_connections 1024;
}

http {
    # combined, then which socket answered and with what: a 4xx/5xx from the app or from nginx
    log_format switchyard '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status \$body_bytes_sent "\$http_referer" "\$http_user_agent" upstream=\$upstream_addr upstream_status=\$upstream_status msec=\$msec';
    access_log /x/ngx/access.log switchyard;
    # Every temp path under the prefix: the compiled-in ones (/var/lib/nginx) need root.
    client_body_temp_path /x/ngx/client_body_temp;
    proxy_temp_path /x/ngx/proxy_temp;
    fastcgi_temp_path /x/ngx/fastcgi_temp;
    uwsgi_temp_path /x/ngx/uwsgi_temp;
    scgi_temp_path /x/ngx/scgi_temp;
    default_type application/octet-stream;
    server_tokens off;

${block
  .trimEnd()
  .split('\n')
  .map((l) => (l === '' ? l : '    ' + l))
  .join('\n')}
}
`,
    );
  });

  it('writes user only when given, and the access log as asked', () => {
    const plain = nginxMainConfig({ ...main, prefix: '/x/ngx/' });
    expect(plain).not.toMatch(/^\s*user /m);
    expect(plain).toMatch(/^worker_processes 1;$/m);
    expect(plain).toContain('    access_log /x/ngx/access.log switchyard;\n');
    expect(plain).toContain('    proxy_temp_path /x/ngx/proxy_temp;\n'); // trailing slash of the prefix dropped
    expect(plain).toMatch(/^events \{\n {4}worker_connections 1024;\n\}$/m);
    expect(plain).toMatch(/\nhttp \{\n[\s\S]*\n\}\n$/);
    expect(nginxMainConfig({ ...main, accessLog: false })).toContain('    access_log off;\n');
    expect(nginxMainConfig({ ...main, accessLog: '/var/tmp/a.log' })).toContain('    access_log /var/tmp/a.log switchyard;\n');
    expect(nginxMainConfig({ ...main, user: 'www-data' })).toMatch(/^user www-data;$/m);
  });

  it.each([
    [{ prefix: 'ngx' }, /invalid prefix "ngx": must be an absolute path/],
    [{ pidFile: '/x/p;id' }, /invalid pidFile/],
    [{ errorLog: '/x/e log' }, /invalid errorLog/],
    [{ accessLog: '/x/a{' }, /invalid accessLog/],
    [{ user: 'root; daemon on' }, /invalid user/],
    [{ user: '' }, /invalid user/],
    [{ workerProcesses: 0 }, /invalid workerProcesses 0/],
    [{ workerProcesses: 1.5 }, /invalid workerProcesses/],
  ])('refuses %j', (override, message) => {
    expect(() => nginxMainConfig({ ...main, ...(override as object) })).toThrow(message);
  });
});

describe('the generated text, read by the real nginx', () => {
  it('passes nginx -t with two sites (http and fastcgi, one a map keyword) on one listen', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'syn-'));
    try {
      const conf = path.join(dir, 'nginx.conf');
      await fs.writeFile(
        conf,
        nginxMainConfig({
          prefix: dir,
          pidFile: path.join(dir, 'nginx.pid'),
          errorLog: path.join(dir, 'error.log'),
          user: os.userInfo().uid === 0 ? 'root' : undefined,
          serverBlocks: [
            nginxServerBlock({ site: 'App.Test', socketPath: `${dir}/SOCK-app.test`, listen: '127.0.0.1:8080' }),
            nginxServerBlock({ site: 'default', socketPath: `${dir}/SOCK-default`, listen: '127.0.0.1:8080', pass: 'fastcgi', documentRoot: `${dir}/app/current`, fastcgiIndex: 'index.php' }),
          ],
        }),
      );
      const nginx = (await fs.stat('/usr/sbin/nginx').catch(() => null)) ? '/usr/sbin/nginx' : 'nginx';
      const { stderr } = await execFileP(nginx, ['-t', '-q', '-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf]);
      expect(stderr).toBe('');
      // and a broken file really fails, so the check above means something
      await fs.writeFile(conf, nginxMainConfig({ prefix: dir, pidFile: `${dir}/p`, errorLog: `${dir}/e`, serverBlocks: ['map $host $v {\n    default "";\n    default /x;\n}'] }));
      await expect(execFileP(nginx, ['-t', '-q', '-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf])).rejects.toThrow(/duplicate default/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
