// nginx.sh with the real nginx: the private nginx on a free 127.0.0.1 port under a temp prefix,
// with the config the client sends (lib/nginx/site.ts). Started, reloaded, refused; every nginx
// it started is stopped by its pid at the end.
import { execa } from 'execa';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { privateNginxConfig, privateNginxPrefix } from '../../lib/nginx/site';
import { makeEnv } from '../support/env';
import { startFcgiResponder } from '../support/fcgi-responder';
import { alive, find, procStat, runFile, runScript, ScriptLab, SCRIPTS_DIR, show, SITE, waitFor } from '../support/scripts';

const NGINX = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'].find((p) => fs.existsSync(p));

let lab: ScriptLab;
/** nginx masters this file started: pid → start time. */
const masters = new Map<number, string>();

beforeEach(() => {
  lab = ScriptLab.create();
});

afterEach(async () => {
  // Also whatever a failed test left behind under this prefix.
  const left = pidInFile();
  if (left && isNginxMaster(left)) masters.set(left, procStat(left)?.starttime ?? '');
  for (const [pid, st] of masters) {
    if (!alive(pid, st)) continue;
    process.kill(pid, 'SIGTERM'); // nginx: fast shutdown, the workers go with the master
    if (!(await waitFor(() => !alive(pid, st), 5000)) && alive(pid, st)) process.kill(pid, 'SIGKILL');
  }
  masters.clear();
  await lab.cleanup();
});

function prefix(): string {
  return privateNginxPrefix(makeEnv({ deployTo: lab.deployTo }));
}

/** The config `gulp setup` sends for a host of this lab whose nginx listens on 127.0.0.1:PORT. */
function config(port: number): string {
  return privateNginxConfig(makeEnv({ site: SITE, deployTo: lab.deployTo, socketDir: lab.socketDir, nginx: { listen: `127.0.0.1:${port}`, private: true } }));
}

function nginxSh(conf: string) {
  return runScript('nginx', ['--prefix', prefix(), '--conf', conf]);
}

function pidInFile(): number | undefined {
  try {
    return Number(fs.readFileSync(path.join(prefix(), 'nginx.pid'), 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}

function isNginxMaster(pid: number): boolean {
  try {
    return alive(pid) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('nginx: master process');
  } catch {
    return false;
  }
}

/** The master nginx.sh started: its pid file names it once it has daemonized. */
async function master(): Promise<number> {
  expect(await waitFor(() => isNginxMaster(pidInFile() ?? 0), 5000), 'nginx.pid names a live nginx master').toBe(true);
  const pid = pidInFile()!;
  masters.set(pid, procStat(pid)?.starttime ?? '');
  return pid;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** HTTP status of GET / on 127.0.0.1:PORT with this Host header; 0 without an answer. */
async function status(port: number, host: string): Promise<number> {
  const r = await execa('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', '-H', `Host: ${host}`, `http://127.0.0.1:${port}/`], { reject: false });
  return Number(r.stdout) || 0;
}

async function until(cond: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

function written(conf: string): string {
  return (process.getuid?.() === 0 ? 'user root;\n' : '') + conf + '\n';
}

describe('nginx.sh', () => {
  beforeAll(() => {
    if (!NGINX) throw new Error('nginx is not installed: bash scripts/install-deps.sh');
  });

  it('starts nginx, reloads the same master with a new config, and refuses a bad config with 10, leaving nginx as it was', async () => {
    const port1 = await freePort();
    const started = await nginxSh(config(port1));
    expect(started.code, show(started)).toBe(0);
    const pid = await master();
    expect(find(started, 'nginx')?.fields.action).toBe('started');
    expect(['unknown', String(pid)]).toContain(find(started, 'nginx')?.fields.pid); // nginx writes its pid file after it daemonized
    expect(fs.readFileSync(path.join(prefix(), 'nginx.conf'), 'utf8')).toBe(written(config(port1)));
    expect(fs.existsSync(path.join(prefix(), 'nginx.conf.new'))).toBe(false);
    // the site's config: its own host name to the live socket (none yet: 502), any other refused
    expect(await until(async () => (await status(port1, SITE)) === 502)).toBe(true);
    expect(await status(port1, 'other.test')).toBe(421);

    // Again, with the site on another port: the running master re-reads its config.
    const port2 = await freePort();
    const reloaded = await nginxSh(config(port2));
    expect(reloaded.code, show(reloaded)).toBe(0);
    expect(find(reloaded, 'nginx')?.fields).toEqual({ action: 'reloaded', pid: String(pid) });
    expect(await until(async () => (await status(port2, SITE)) === 502)).toBe(true);
    expect(await until(async () => (await status(port1, SITE)) === 0)).toBe(true);
    expect(pidInFile()).toBe(pid);
    expect(alive(pid, masters.get(pid))).toBe(true);

    // A config nginx -t rejects: its own code, nginx's words on stderr, nothing changed.
    const bad = await nginxSh('events {}\nhttp { no_such_directive on; }');
    expect(bad.code, show(bad)).toBe(10);
    expect(find(bad, 'error')?.fields).toEqual({ code: '10', step: 'check' });
    expect(find(bad, 'error')?.msg).toMatch(/^nginx rejected the generated config: .*no_such_directive/);
    expect(bad.stderr).toContain('no_such_directive');
    expect(find(bad, 'nginx')).toBeUndefined();
    expect(fs.readFileSync(path.join(prefix(), 'nginx.conf'), 'utf8')).toBe(written(config(port2)));
    expect(fs.existsSync(path.join(prefix(), 'nginx.conf.new'))).toBe(false);
    expect(alive(pid, masters.get(pid))).toBe(true);
    expect(await status(port2, SITE)).toBe(502);
  });

  it('exits 10 when nginx does not start (its port is taken), and starts once the pid file names no live process', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve, reject) => taken.once('error', reject).listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const r = await nginxSh(config(port));
      expect(r.code, show(r)).toBe(10);
      expect(find(r, 'error')?.fields).toEqual({ code: '10', step: 'start' });
      expect(find(r, 'error')?.msg).toContain(`nginx did not start (see ${prefix()}/error.log)`);
      expect(fs.readFileSync(path.join(prefix(), 'error.log'), 'utf8')).toMatch(/bind\(\) to 127\.0\.0\.1:\d+ failed/);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    // A pid file left by an nginx that is gone (here: no such process) means start, not reload.
    fs.writeFileSync(path.join(prefix(), 'nginx.pid'), '4194304\n');
    const again = await nginxSh(config(port));
    expect(again.code, show(again)).toBe(0);
    expect(find(again, 'nginx')?.fields.action).toBe('started');
    await master();
    expect(await until(async () => (await status(port, SITE)) === 502)).toBe(true);
  });

  it("the fastcgi config: SCRIPT_FILENAME and DOCUMENT_ROOT name the release current points at, resolved per request; PATH_INFO; the index", async () => {
    const port = await freePort();
    const conf = privateNginxConfig(makeEnv({ site: SITE, deployTo: lab.deployTo, socketDir: lab.socketDir, nginx: { listen: `127.0.0.1:${port}`, private: true, pass: 'fastcgi' } }));
    fs.mkdirSync(path.join(lab.deployTo, 'releases', 'r1'), { recursive: true });
    fs.mkdirSync(path.join(lab.deployTo, 'releases', 'r2'));
    fs.mkdirSync(lab.socketDir, { recursive: true });
    fs.symlinkSync('releases/r1', path.join(lab.deployTo, 'current'));
    const app = await startFcgiResponder(lab.liveSock);
    try {
      const started = await nginxSh(conf);
      expect(started.code, show(started)).toBe(0);
      await master();
      const get = (p: string) => execa('curl', ['-s', '--max-time', '5', '-H', `Host: ${SITE}`, `http://127.0.0.1:${port}${p}`], { reject: false });
      expect((await get('/Page.aspx/more?x=1')).stdout).toBe('ok');
      const releases = fs.realpathSync(path.join(lab.deployTo, 'releases'));
      expect(app.requests[0]).toMatchObject({
        SCRIPT_NAME: '/Page.aspx',
        SCRIPT_FILENAME: `${releases}/r1/Page.aspx`,
        DOCUMENT_ROOT: `${releases}/r1`,
        PATH_INFO: '/more',
        REQUEST_URI: '/Page.aspx/more?x=1',
        QUERY_STRING: 'x=1',
        HTTP_HOST: SITE,
        REDIRECT_STATUS: '200',
      });
      // the switch repoints current: the very next request names r2
      fs.symlinkSync('releases/r2', path.join(lab.deployTo, '.current.tmp'));
      fs.renameSync(path.join(lab.deployTo, '.current.tmp'), path.join(lab.deployTo, 'current'));
      await get('/');
      expect(app.requests[1]).toMatchObject({ SCRIPT_NAME: '/Default.aspx', SCRIPT_FILENAME: `${releases}/r2/Default.aspx`, DOCUMENT_ROOT: `${releases}/r2`, PATH_INFO: '' });
      expect(app.requests.length).toBe(2);
    } finally {
      await app.close();
    }
  });

  it('usage errors exit 2 before anything is written, inline and run as a file', async () => {
    const none = await runScript('nginx', []);
    expect(none.code, show(none)).toBe(2);
    expect(find(none, 'error')?.fields).toEqual({ code: '2', step: 'nginx' });
    expect(find(none, 'error')?.msg).toBe('missing option --prefix');
    const noConf = await runScript('nginx', ['--prefix', prefix()]);
    expect(noConf.code, show(noConf)).toBe(2);
    expect(find(noConf, 'error')?.msg).toBe('missing option --conf');
    const dangling = await runScript('nginx', ['--prefix', prefix(), '--conf']);
    expect(dangling.code, show(dangling)).toBe(2);
    expect(find(dangling, 'error')?.msg).toBe('--conf needs a value');
    const file = await runFile(path.join(SCRIPTS_DIR, 'nginx.sh'), ['--prefix', prefix(), '--listen', '80']);
    expect(file.code, show(file)).toBe(2);
    expect(find(file, 'error')?.msg).toBe('unknown option or argument: --listen');
    expect(fs.existsSync(prefix())).toBe(false);
  });
});
