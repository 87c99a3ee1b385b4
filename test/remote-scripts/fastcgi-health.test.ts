// The FastCGI health check (lib.sh's sy_health with --health-protocol fastcgi): exactly the params
// it sends (a FastCGI responder of the test's own records them), the status it reads from the
// answer, setup's check for cgi-fcgi, and prepare against the real fastcgi-mono-server4 with
// examples/mono-shop (the HTTP check answers 000 there: the bug of issue 15).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startFcgiResponder, type FcgiResponder } from '../support/fcgi-responder';
import { all, find, REPO, show, SITE, useScriptLab, type ScriptResult } from '../support/scripts';

const lab = useScriptLab();
let responder: FcgiResponder | undefined;
afterEach(async () => {
  await responder?.close();
  responder = undefined;
});

const MONO_SHOP = path.join(REPO, 'examples', 'mono-shop');
const tool = (r: ScriptResult, name: string) => all(r, 'check').find((l) => l.fields.tool === name);

/** What sy_fcgi_params sends for a GET of healthPath with the document root root. */
function expectedParams(root: string, healthPath: string): Record<string, string> {
  const [script, query = ''] = healthPath.split('?') as [string, string?];
  return {
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_SOFTWARE: 'switchyard',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_SCHEME: 'http',
    REQUEST_METHOD: 'GET',
    REQUEST_URI: healthPath,
    DOCUMENT_URI: script,
    SCRIPT_NAME: script,
    SCRIPT_FILENAME: root + script,
    DOCUMENT_ROOT: root,
    PATH_INFO: '',
    QUERY_STRING: query,
    CONTENT_TYPE: '',
    CONTENT_LENGTH: '',
    SERVER_NAME: SITE,
    HTTP_HOST: SITE,
    SERVER_ADDR: '127.0.0.1',
    SERVER_PORT: '80',
    REMOTE_ADDR: '127.0.0.1',
    REMOTE_PORT: '0',
    REDIRECT_STATUS: '200',
    HTTP_USER_AGENT: 'switchyard-health',
  };
}

const status = (healthPath = '/Health.aspx', protocol = 'fastcgi') =>
  lab().run('status', [...lab().siteArgs(), '--health-path', healthPath, '--health-protocol', protocol]);

describe('the FastCGI health check', () => {
  it('sends exactly the params nginx would for the path, and nothing of its own environment; the live release is the document root', async () => {
    responder = await startFcgiResponder(lab().liveSock);
    fs.mkdirSync(lab().releaseDir('r9'));
    fs.writeFileSync(lab().stateFile('live'), 'r9 1 1\n');
    const r = await status('/Health.aspx?deep=1');
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'status')?.fields).toMatchObject({ release: 'r9', health: '200', healthy: 'yes' });
    expect(responder.requests).toEqual([expectedParams(lab().releaseDir('r9'), '/Health.aspx?deep=1')]);
  });

  it.each([
    ['Status: 500 Internal Server Error\r\nContent-Type: text/html\r\n\r\n<h1>broken</h1>', '500'],
    ['Content-Type: text/plain\r\n\r\nno status header: 200 by CGI', '200'],
    ['Location: /login\r\n\r\n', '302'],
    ['status: 404 Not Found\r\n\r\n', '404'],
    ['', '000'],
  ])('reads the status of the answer %j as %s', async (answer, code) => {
    responder = await startFcgiResponder(lab().liveSock, answer);
    const r = await status();
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'status')?.fields.health).toBe(code);
    expect(responder.requests.length).toBe(1);
    // nothing live: the document root is <deployTo>/current
    expect(responder.requests[0]!.SCRIPT_FILENAME).toBe(path.join(lab().deployTo, 'current', 'Health.aspx'));
  });

  it('with no socket listening the check says 000; a bad --health-protocol is a usage error (2)', async () => {
    fs.writeFileSync(lab().liveSock, ''); // not a socket: status does not ask
    expect(find(await status(), 'status')?.fields.health).toBe('none');
    fs.rmSync(lab().liveSock);
    const bad = await status('/Health.aspx', 'fcgi');
    expect(bad.code).toBe(2);
    expect(find(bad, 'error')?.msg).toBe("bad --health-protocol (http or fastcgi): 'fcgi'");
  });
});

describe('doctor on a FastCGI site', () => {
  /** A stand-in for the host's nginx: answers every GET with body. */
  async function fakeNginx(body: string): Promise<{ url: string; close: () => Promise<void> }> {
    const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
  }

  it.each([
    ['the same answer', 'ok uat\n', 'yes'],
    ['another app', 'something else\n', 'no'],
  ])("asks the live socket in FastCGI and compares it with nginx's answer: %s", async (_what, nginxBody, same) => {
    responder = await startFcgiResponder(lab().liveSock, 'Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok uat\n');
    fs.mkdirSync(lab().releaseDir('r9'));
    fs.writeFileSync(lab().stateFile('live'), 'r9 1 1\n');
    const nginx = await fakeNginx(nginxBody);
    try {
      const r = await lab().run('doctor', [...lab().siteArgs(), '--health-path', '/Health.aspx', '--health-protocol', 'fastcgi', '--nginx-url', nginx.url]);
      expect(r.code, show(r)).toBe(0);
      expect(tool(r, 'cgi-fcgi')?.fields.ok).toBe('yes');
      expect(all(r, 'get').map((l) => l.fields)).toEqual([
        { via: 'socket', code: '200', rc: '0' },
        { via: 'nginx', code: '200', rc: '0' },
        // a body unlike nginx's: the socket is asked again (the same again: nginx routes elsewhere)
        ...(same === 'no' ? [{ via: 'socket', code: '200', rc: '0' }] : []),
      ]);
      expect(find(r, 'route')?.fields).toEqual({ live: 'r9', same });
      expect(responder.requests[0]).toEqual(expectedParams(lab().releaseDir('r9'), '/Health.aspx'));
    } finally {
      await nginx.close();
    }
  });
});

describe('setup and cgi-fcgi', () => {
  it('with --health-protocol fastcgi, setup checks cgi-fcgi and refuses (3) a host without it', async () => {
    const args = ['--deploy-to', lab().deployTo, '--socket-dir', lab().socketDir, '--health-protocol', 'fastcgi'];
    const ok = await lab().run('setup', args);
    expect(ok.code, show(ok)).toBe(0);
    expect(tool(ok, 'cgi-fcgi')?.fields.ok).toBe('yes');
    // the same PATH without cgi-fcgi
    const bin = path.join(lab().root, 'bin');
    fs.mkdirSync(bin);
    for (const f of fs.readdirSync('/usr/bin')) if (f !== 'cgi-fcgi') fs.symlinkSync(path.join('/usr/bin', f), path.join(bin, f));
    const missing = await lab().run('setup', args, { path: `${bin}:/usr/sbin` });
    expect(missing.code, show(missing)).toBe(3);
    expect(tool(missing, 'cgi-fcgi')?.fields.ok).toBe('no');
    expect(find(missing, 'error')?.msg).toMatch(/^missing tools: cgi-fcgi /);
    // an HTTP app's setup does not ask for it
    const http = await lab().run('setup', args.slice(0, 4), { path: `${bin}:/usr/sbin` });
    expect(http.code, show(http)).toBe(0);
    expect(tool(http, 'cgi-fcgi')).toBeUndefined();
  });
});

describe('prepare against the real fastcgi-mono-server4 (examples/mono-shop)', () => {
  const pkg = () => {
    const file = path.join(lab().root, 'mono-shop.tar.gz');
    if (!fs.existsSync(file)) execFileSync('tar', ['-czf', file, '-C', MONO_SHOP, '.']);
    return file;
  };
  const start = ['fastcgi-mono-server4', '/applications=/:.', '/socket=unix:{socket}'];
  const prepare = async (release: string, protocol: string[]) => {
    const args = [...lab().siteArgs(release), '--start-timeout', '15', '--health-timeout', '3', '--health-path', '/Health.aspx', ...protocol, '--lock-owner', 'test', '--', ...start];
    const r = await lab().run('prepare', args, { inputFile: pkg() });
    const p = find(r, 'prepared');
    if (p) lab().track(Number(p.fields.pid), p.fields.starttime ?? '');
    return r;
  };

  it('the FastCGI check passes (its socket chmod 0660 from the 0755 Mono makes), and the supervisor would check it the same way', async () => {
    const t0 = Date.now();
    const r = await prepare('r1', ['--health-protocol', 'fastcgi']);
    const ms = Date.now() - t0;
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'prepared')?.fields).toMatchObject({ release: 'r1', status: '200' });
    expect((fs.statSync(lab().stageSock('r1')).mode & 0o777).toString(8)).toBe('660');
    const launch = fs.readFileSync(path.join(lab().releaseDir('r1'), '.switchyard', 'launch'), 'utf8').split('\0');
    expect(launch.slice(launch.indexOf('--health-protocol'), launch.indexOf('--health-protocol') + 2)).toEqual(['--health-protocol', 'fastcgi']);
    console.log(`prepare of mono-shop on fastcgi-mono-server4: ${ms} ms to healthy (unpack, Mono start, first page compiled)`);
  });

  it('the HTTP check answers 000 against the FastCGI socket: prepare fails with 6 and leaves nothing', async () => {
    const r = await prepare('r2', []);
    expect(r.code, show(r)).toBe(6);
    expect(find(r, 'error')?.msg).toBe('GET /Health.aspx (Host: hello.test) answered 000, want 200, for 3s');
    expect(fs.existsSync(lab().releaseDir('r2'))).toBe(false);
    expect(lab().lockHeld()).toBe(false);
  });
});
