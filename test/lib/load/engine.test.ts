/**
 * lib/load.ts against real HTTP servers on 127.0.0.1 (test/lib/report/servers.ts): every figure
 * the client reports is compared with what the server counted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BUCKET_MS, LatencyHistogram, USER_AGENT, assertZeroFailures, startLoad, summarize, LoadFailuresError, type LoadResult } from '../../../lib/load/engine';
import { eventually, freePort, handleCounts, sleep, startServer, type TestServer } from '../output/report/servers';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function server(...args: Parameters<typeof startServer>): Promise<TestServer> {
  const s = await startServer(...args);
  servers.push(s);
  return s;
}

/** Invariants every result must satisfy. */
function checkConsistent(r: LoadResult): void {
  expect(r.timeline.reduce((n, b) => n + b.requests, 0)).toBe(r.requests);
  expect(r.timeline.reduce((n, b) => n + b.failed, 0)).toBe(r.failed);
  expect(Object.values(r.failuresByCode).reduce((n, c) => n + c, 0)).toBe(r.failed);
  expect(r.failures.length + (r.failuresOmitted ?? 0)).toBe(r.failed);
  r.timeline.forEach((b, i) => expect(b.t).toBe(i * BUCKET_MS));
  expect(r.timeline.length).toBeGreaterThanOrEqual(Math.ceil(r.durationMs / BUCKET_MS));
  expect(r.timeline.length).toBeLessThanOrEqual(Math.ceil(r.durationMs / BUCKET_MS) + 1);
  for (let i = 1; i < r.failures.length; i++) expect(r.failures[i]!.t).toBeGreaterThanOrEqual(r.failures[i - 1]!.t);
  const { p50, p90, p99, max } = r.latencyMs;
  expect(p50).toBeLessThanOrEqual(p90);
  expect(p90).toBeLessThanOrEqual(p99);
  expect(p99).toBeLessThanOrEqual(max);
  expect(r.rps).toBeCloseTo(r.requests / (r.durationMs / 1000), 0);
  expect(new Date(r.startedAt).toISOString()).toBe(r.startedAt);
}

/** Wait until the servers' connections are all closed: proof the client left no socket open. */
async function expectNoOpenConnections(...ss: TestServer[]): Promise<void> {
  const ok = await eventually(() => ss.every((s) => s.stats.openConnections === 0), 2000);
  expect(ss.map((s) => s.stats.openConnections)).toEqual(ss.map(() => 0));
  expect(ok).toBe(true);
}

/** No more sockets or timers than before the run (some unrelated timer may have ended meanwhile). */
async function noMoreHandlesThan(baseline: Record<string, number>): Promise<void> {
  const excess = (): Record<string, number> =>
    Object.fromEntries(Object.entries(handleCounts()).flatMap(([k, n]) => (n > (baseline[k] ?? 0) ? [[k, n - (baseline[k] ?? 0)]] : [])));
  await eventually(() => Object.keys(excess()).length === 0, 1000);
  expect(excess()).toEqual({});
}

describe('startLoad against a healthy server', () => {
  it('keep-alive on: counts every request, reuses one connection per concurrent client, respects concurrency', async () => {
    const s = await server(() => ({ status: 200, delayMs: 5 }));
    const r = await startLoad({ targets: [{ url: s.url, host: 'site.example' }], concurrency: 20, durationSeconds: 1 }).done;
    checkConsistent(r);
    expect(r.failed).toBe(0);
    expect(r.requests).toBe(s.stats.requests);
    expect(r.requests).toBeGreaterThan(200);
    expect(s.stats.maxInFlight).toBe(20);
    expect(s.stats.connections).toBe(20);
    expect([...s.stats.hosts]).toEqual(['site.example']);
    expect([...s.stats.connectionHeaders]).toEqual(['keep-alive']);
    expect([...s.stats.userAgents]).toEqual([USER_AGENT]);
    expect(r.latencyMs.p50).toBeGreaterThanOrEqual(5); // the server's delay is in the measurement
    expect(r.keepalive).toBe(true);
    expect(r.concurrency).toBe(20);
    expect(r.durationMs).toBeGreaterThanOrEqual(1000);
    expect(r.durationMs).toBeLessThan(2000); // generous: other test files may load the CPU
    await expectNoOpenConnections(s);
  });

  it('keep-alive off: one connection per request with Connection: close, concurrency respected', async () => {
    const s = await server(() => ({ status: 200, delayMs: 5 }));
    const r = await startLoad({ targets: [{ url: s.url }], concurrency: 20, keepalive: false, durationSeconds: 1 }).done;
    checkConsistent(r);
    expect(r.failed).toBe(0);
    expect(r.requests).toBe(s.stats.requests);
    expect(s.stats.connections).toBe(r.requests);
    expect([...s.stats.connectionHeaders]).toEqual(['close']);
    expect(s.stats.maxInFlight).toBeLessThanOrEqual(20);
    expect(s.stats.maxInFlight).toBeGreaterThanOrEqual(10);
    expect([...s.stats.hosts]).toEqual([`127.0.0.1:${s.port}`]); // default Host: the URL's
    expect(r.keepalive).toBe(false);
    await expectNoOpenConnections(s);
  });

  it('splits concurrency and requests across targets, each with its own Host header', async () => {
    const a = await server(() => ({ status: 200, delayMs: 20 }));
    const b = await server(() => ({ status: 200, delayMs: 20 }));
    const r = await startLoad({
      targets: [
        { url: a.url, host: 'a.example', label: 'A' },
        { url: b.url, host: 'b.example', label: 'B' },
      ],
      concurrency: 5,
      requests: 41,
    }).done;
    checkConsistent(r);
    expect(r.requests).toBe(41);
    expect([a.stats.requests, b.stats.requests]).toEqual([21, 20]);
    expect([a.stats.maxInFlight, b.stats.maxInFlight]).toEqual([3, 2]);
    expect([...a.stats.hosts, ...b.stats.hosts]).toEqual(['a.example', 'b.example']);
    expect(r.targets).toEqual([
      { url: a.url, host: 'a.example', label: 'A' },
      { url: b.url, host: 'b.example', label: 'B' },
    ]);
    await expectNoOpenConnections(a, b);
  });

  it('uses path and method; 2xx and 3xx succeed, 4xx fail', async () => {
    const s = await server((req) => (req.url === '/moved' ? { status: 301 } : req.url === '/empty' ? { status: 204 } : { status: 404 }));
    const ok = await startLoad({ targets: [{ url: `${s.url}ignored` }], path: '/moved', method: 'head', concurrency: 2, requests: 10 }).done;
    const empty = await startLoad({ targets: [{ url: s.url }], path: '/empty', method: 'DELETE', concurrency: 2, requests: 10 }).done;
    const missing = await startLoad({ targets: [{ url: s.url, label: 'origin' }], path: '/nothing?x=1', concurrency: 2, requests: 10 }).done;
    for (const r of [ok, empty, missing]) checkConsistent(r);
    expect([ok.failed, empty.failed, missing.failed]).toEqual([0, 0, 10]);
    expect(missing.failuresByCode).toEqual({ '404': 10 });
    expect(missing.failures.every((f) => f.code === '404' && f.target === 'origin')).toBe(true);
    expect([...s.stats.paths].sort()).toEqual(['/empty', '/moved', '/nothing?x=1']);
    expect([...s.stats.methods].sort()).toEqual(['DELETE', 'GET', 'HEAD']);
    expect(s.stats.byStatus).toEqual({ 301: 10, 204: 10, 404: 10 });
  });
});

describe('failures', () => {
  it('a 502 window: every 502 counted with its time, between the markers placed around it', async () => {
    let bad = false;
    const s = await server(() => ({ status: bad ? 502 : 200, delayMs: 1 }));
    const run = startLoad({ targets: [{ url: s.url, host: 'site.example', label: 'web1' }], concurrency: 10 });
    await sleep(300);
    run.mark('h1 switch', { host: 'h1', phase: 'switch' });
    bad = true;
    await sleep(200);
    run.mark('h1 retire', { host: 'h1', phase: 'retire' });
    bad = false;
    await sleep(300);
    const r = await run.stop();
    checkConsistent(r);
    expect(r.failed).toBe(s.stats.byStatus[502]);
    expect(r.failed).toBeGreaterThan(20);
    expect(r.requests).toBe(s.stats.requests);
    expect(r.failuresByCode).toEqual({ '502': r.failed });
    expect(r.markers).toEqual([
      { t: expect.any(Number), label: 'h1 switch', host: 'h1', phase: 'switch' },
      { t: expect.any(Number), label: 'h1 retire', host: 'h1', phase: 'retire' },
    ]);
    const sw = r.markers[0]!;
    const re = r.markers[1]!;
    expect(sw.t).toBeGreaterThan(250);
    expect(re.t - sw.t).toBeGreaterThanOrEqual(195);
    for (const f of r.failures) {
      expect(f.target).toBe('web1');
      // answered 502 after the switch mark, sent before the retire mark (0.2 ms: rounding)
      expect(f.t).toBeGreaterThanOrEqual(sw.t - 0.2);
      expect(f.t - (f.ms ?? 0)).toBeLessThanOrEqual(re.t + 0.2);
    }
    // the timeline shows the window: failures only in buckets overlapping it
    for (const b of r.timeline) if (b.failed > 0) expect(b.t + BUCKET_MS > sw.t && b.t <= re.t + 50).toBe(true);
    expect(() => assertZeroFailures(r)).toThrow(LoadFailuresError);
  });

  it('sockets destroyed and a dead target: connection errors counted by code and target', async () => {
    const s = await server((_req, n) => (n % 10 === 0 ? 'destroy' : { status: 200 }));
    const dead = await freePort();
    const r = await startLoad({
      targets: [
        { url: s.url, label: 'flaky' },
        { url: `http://127.0.0.1:${dead}/`, label: 'dead' },
      ],
      concurrency: 4,
      requests: 400,
    }).done;
    checkConsistent(r);
    expect(r.requests).toBe(400);
    expect(s.stats.requests).toBe(200);
    expect(s.stats.destroyed).toBe(20);
    expect(r.failuresByCode).toEqual({ ECONNRESET: 20, ECONNREFUSED: 200 });
    expect(r.failures.filter((f) => f.target === 'flaky').every((f) => f.code === 'ECONNRESET')).toBe(true);
    expect(r.failures.filter((f) => f.target === 'dead').every((f) => f.code === 'ECONNREFUSED')).toBe(true);
    await expectNoOpenConnections(s);
  });

  it('a server that never answers: ETIMEDOUT after timeoutMs, connections closed', async () => {
    const s = await server(() => 'hang');
    const r = await startLoad({ targets: [{ url: s.url }], concurrency: 2, requests: 4, timeoutMs: 200 }).done;
    checkConsistent(r);
    expect(r.failuresByCode).toEqual({ ETIMEDOUT: 4 });
    expect(r.failures.every((f) => (f.ms ?? 0) >= 199)).toBe(true);
    expect(r.durationMs).toBeGreaterThanOrEqual(400);
    expect(r.durationMs).toBeLessThan(2500);
    await expectNoOpenConnections(s);
  });
});

describe('limits and stopping', () => {
  it('requests: exactly that many, then nothing more', async () => {
    const s = await server();
    const r = await startLoad({ targets: [{ url: s.url }], concurrency: 10, requests: 1000 }).done;
    checkConsistent(r);
    expect(r.requests).toBe(1000);
    expect(s.stats.requests).toBe(1000);
    await sleep(100);
    expect(s.stats.requests).toBe(1000);
    await expectNoOpenConnections(s);
  });

  it('durationSeconds: ends on time, in-flight requests complete and are counted', async () => {
    const s = await server(() => ({ status: 200, delayMs: 30 }));
    for (const keepalive of [true, false]) {
      const before = s.stats.requests;
      const r = await startLoad({ targets: [{ url: s.url }], concurrency: 8, keepalive, durationSeconds: 0.5 }).done;
      checkConsistent(r);
      expect(r.durationMs).toBeGreaterThanOrEqual(500);
      expect(r.durationMs).toBeLessThan(1500);
      expect(r.requests).toBe(s.stats.requests - before);
      expect(r.failed).toBe(0);
      await sleep(100);
      expect(s.stats.requests - before).toBe(r.requests);
    }
    await expectNoOpenConnections(s);
  });

  it('stop() mid-run: resolves with everything sent, leaves no socket or timer behind', async () => {
    const s = await server(() => ({ status: 200, delayMs: 2 }));
    const baseline = handleCounts();
    const run = startLoad({ targets: [{ url: s.url }], concurrency: 50 });
    expect(await eventually(() => run.progress().requests >= 100, 5000)).toBe(true);
    const mid = run.progress();
    expect(mid.inFlight).toBeGreaterThan(0);
    expect(handleCounts().TCPSocketWrap ?? 0).toBeGreaterThanOrEqual((baseline.TCPSocketWrap ?? 0) + 50); // the check sees our sockets
    await sleep(300);
    const stoppedAt = run.progress().elapsedMs;
    const stopping = run.stop();
    expect(run.stop()).toBe(stopping);
    expect(run.done).toBe(stopping);
    const r = await stopping;
    checkConsistent(r);
    expect(r.durationMs).toBeGreaterThanOrEqual(stoppedAt);
    expect(r.durationMs).toBeLessThan(stoppedAt + 1000); // in flight at stop(): ~2 ms each
    expect(r.requests).toBe(s.stats.requests);
    expect(r.failed).toBe(0);
    expect(run.progress().inFlight).toBe(0);
    run.mark('too late');
    expect(r.markers).toEqual([]);
    await expectNoOpenConnections(s);
    await noMoreHandlesThan(baseline);
    expect(s.stats.requests).toBe(r.requests);
  });

  it('stop() before the first request: no request counted, nothing left open', async () => {
    const s = await server();
    const baseline = handleCounts();
    const r = await startLoad({ targets: [{ url: s.url }], concurrency: 10 }).stop();
    checkConsistent(r);
    expect(r.requests).toBe(s.stats.requests);
    expect(r.requests).toBe(0);
    await expectNoOpenConnections(s);
    await noMoreHandlesThan(baseline);
  });

  it('rejects invalid options at once', () => {
    expect(() => startLoad({ targets: [] })).toThrow(/no targets/);
    expect(() => startLoad({ targets: [{ url: 'ftp://x/' }] })).toThrow(/http/);
    expect(() => startLoad({ targets: [{ url: 'http://127.0.0.1:1/' }], concurrency: 0 })).toThrow(/concurrency/);
    expect(() => startLoad({ targets: [{ url: 'http://127.0.0.1:1/' }, { url: 'http://127.0.0.1:2/' }], concurrency: 1 })).toThrow(/concurrency/);
    expect(() => startLoad({ targets: [{ url: 'http://127.0.0.1:1/' }], requests: 1.5 })).toThrow(/requests/);
    expect(() => startLoad({ targets: [{ url: 'http://127.0.0.1:1/' }], durationSeconds: -1 })).toThrow(/durationSeconds/);
    expect(() => startLoad({ targets: [{ url: 'http://127.0.0.1:1/' }], method: 'GET /x' })).toThrow(/method/);
  });
});

describe('LatencyHistogram', () => {
  it('percentiles within 0.5 % of the exact nearest-rank values, max exact', () => {
    const h = new LatencyHistogram();
    const values: number[] = [];
    let x = 12345;
    for (let i = 0; i < 100_000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31; // deterministic spread over 0.05 ms … ~3 s
      const v = 0.05 * Math.exp((x / 2 ** 31) * 11);
      values.push(v);
      h.add(v);
    }
    values.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const exact = values[Math.ceil(q * values.length) - 1]!;
      expect(Math.abs(h.quantile(q) - exact) / exact).toBeLessThan(0.005);
    }
    expect(h.max).toBe(values[values.length - 1]);
    expect(h.quantile(1)).toBe(h.max);
    expect(new LatencyHistogram().quantile(0.5)).toBe(0);
  });
});

describe('summarize and assertZeroFailures', () => {
  const base: LoadResult = {
    startedAt: '2025-01-01T00:00:00.000Z',
    durationMs: 2000,
    requests: 1000,
    failed: 0,
    rps: 500,
    latencyMs: { p50: 1.234, p90: 5.5, p99: 12.25, max: 250 },
    failuresByCode: {},
    failures: [],
    timeline: [],
    markers: [],
    targets: [{ url: 'http://127.0.0.1:8080/' }],
    concurrency: 100,
    keepalive: true,
  };

  it('summarize prints requests, failures by code, rps and percentiles', () => {
    expect(summarize(base)).toBe(
      'requests: 1000 in 2.0 s, 500.0 req/s (concurrency 100, keep-alive on, 1 target)\nfailed: 0\nlatency ms: p50 1.23  p90 5.50  p99 12.3  max 250',
    );
    const failures = Array.from({ length: 25 }, (_, i) => ({ t: 1000 + i, code: i < 22 ? '502' : 'ECONNRESET', target: 'web1' }));
    const bad = { ...base, failed: 25, failures, failuresByCode: { '502': 22, ECONNRESET: 3 } };
    expect(summarize(bad).split('\n')[1]).toBe('failed: 25 (2.50%): 502 ×22, ECONNRESET ×3');
    expect(() => assertZeroFailures(base)).not.toThrow();
    let err: unknown;
    try {
      assertZeroFailures(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LoadFailuresError);
    const lines = (err as Error).message.split('\n');
    expect(lines[0]).toBe('25 of 1000 requests failed (502 ×22, ECONNRESET ×3):');
    expect(lines[1]).toBe('  +1.000 s  502  web1');
    expect(lines).toHaveLength(22);
    expect(lines[21]).toBe('  … and 5 more');
    expect((err as LoadFailuresError).result).toBe(bad);
  });
});
