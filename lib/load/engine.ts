/**
 * The load-driving core: HTTP load against one or more targets with the `loadtest` package,
 * measured per request, with markers (host × phase) placed on the same clock.
 *
 * How `loadtest` 8 is used (read from its sources, node_modules/loadtest/lib):
 * - `loadTest(options, cb)` runs `concurrency` clients, each with ONE request in flight at a
 *   time: a client issues its next request from the previous one's completion handler. One
 *   loadtest instance per target, the concurrency split across targets.
 * - `requestGenerator(options, params, request, connect)` is called for every request; it gets
 *   loadtest's own processed options object (the only handle on a running test: there is no
 *   stop(); setting `options.maxRequests = 1` makes every client stop issuing and the test end
 *   at the next completion) and builds the request itself. We build it here so that we see
 *   every request: exact start, end, status and the real `error.code` (loadtest's own error
 *   accounting loses the code — it reports `-1` without a statusCallback, and its
 *   statusCallback gets only a message string for connection errors and no latency), and
 *   completions after loadtest has stopped, which loadtest drops.
 * - Our own agent: loadtest's keep-alive mode builds one `agentkeepalive@2` agent per client and
 *   never closes it; we pass `agentKeepAlive: false` and set a node:http Agent (keep-alive on,
 *   maxSockets = the target's share of the concurrency) that stop() destroys. Keep-alive off
 *   is `agent: false`: a fresh connection and `Connection: close` on every request.
 * - Timeouts are ours too (`req.setTimeout` → destroy with code ETIMEDOUT): loadtest's own
 *   timeout reports the request but leaves the socket open and issues the next one.
 *
 * - Caveats of loadtest itself: importing it sets `http.globalAgent.maxSockets = 1000` (process
 *   wide), and every loadTest() reads a loadtest config file if one is found from the cwd
 *   (`.loadtestrc`, a `loadtest` key in package.json, …). Headers, agent, method and limits are
 *   ours whatever it says, but a `body` or `requestsPerSecond` there would still apply.
 * - Ramp-up: the first requests go out some 10–100 ms after startLoad() and throughput takes up
 *   to a second to reach its level (connections, JIT). Callers measuring a deploy should let the
 *   load run a moment (e.g. until progress().requests > 0) before changing anything.
 *
 * What counts as failed: any connection error (code like ECONNRESET, ECONNREFUSED, EPIPE),
 * a timeout (ETIMEDOUT: no byte for `timeoutMs`), and any status that is not 2xx or 3xx — a 4xx
 * from nginx during a switch (421 from the host allow-list, 404 from a half-linked release) is
 * a real failure for the user too. Redirects are not followed; a 3xx is a success.
 *
 * Times: `t` is milliseconds since startLoad() was called (performance.now(), monotonic).
 * A request is placed at its COMPLETION time (timeline buckets, failures); failures also carry
 * `ms`, its latency, so its send time is `t - ms`. Latency figures cover every completed
 * request, failed ones included (a 502 is fast, a timeout is slow: both are what users saw).
 *
 * Memory stays bounded: the overall percentiles come from a log histogram (1 % buckets, ±0.5 %),
 * per-100-ms percentiles are exact but only the current bucket's latencies are kept, and at
 * most MAX_FAILURES failures are listed (all are counted).
 */
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { lazy } from '../lazy';

const loadtestModule = lazy(() => require('loadtest') as typeof import('loadtest'));
import { SwitchyardError } from '../errors';

export interface LoadTarget {
  url: string;
  /** Host header to send (the site name nginx routes on); default: the URL's host. */
  host?: string;
  /** Name in failures and the report; default: the URL. */
  label?: string;
}

export interface LoadOptions {
  targets: LoadTarget[];
  /** Requests in flight at any time, in total, split across targets (default 100). */
  concurrency?: number;
  /** Stop after this many seconds (default: run until stop() or `requests`). */
  durationSeconds?: number;
  /** Stop after this many requests in total (split across targets like the concurrency). */
  requests?: number;
  /** Reuse connections (default true); false opens a connection per request. */
  keepalive?: boolean;
  /** Default GET. */
  method?: string;
  /** Path (and query) resolved against each target URL, e.g. `/health`. */
  path?: string;
  /** A request fails with ETIMEDOUT when no byte moves for this long (default 10,000). */
  timeoutMs?: number;
}

export interface LoadMarker {
  /** ms since load start */
  t: number;
  label: string;
  host?: string;
  phase?: string;
}

export interface LoadFailure {
  /** ms since load start at which the request completed (failed) */
  t: number;
  /** HTTP status ('502') or connection error code ('ECONNRESET', 'ETIMEDOUT', …) */
  code: string;
  /** the target's label, or its URL */
  target: string;
  /** the request's latency in ms: it was sent at `t - ms` */
  ms?: number;
}

export interface LoadTimelineBucket {
  /** bucket start, ms since load start */
  t: number;
  /** requests completed in the bucket, failed ones included */
  requests: number;
  failed: number;
  /** latency of the bucket's requests, ms (0 when the bucket is empty) */
  p50: number;
  p99: number;
}

export interface LoadResult {
  startedAt: string;
  durationMs: number;
  requests: number;
  failed: number;
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** failed requests by HTTP status or connection error code */
  failuresByCode: Record<string, number>;
  /** failed requests in time order; at most MAX_FAILURES are kept (see failuresOmitted) */
  failures: LoadFailure[];
  /** 100 ms buckets from 0 to the end, empty ones included */
  timeline: LoadTimelineBucket[];
  markers: LoadMarker[];
  targets: LoadTarget[];
  concurrency: number;
  keepalive: boolean;
  /** failed requests counted but not listed in `failures` (over MAX_FAILURES) */
  failuresOmitted?: number;
  method?: string;
  path?: string;
  timeoutMs?: number;
  bucketMs?: number;
}

export interface LoadRun {
  /** Place a marker at the current time (e.g. mark('h1 switch', { host: 'h1', phase: 'switch' })). */
  mark(label: string, o?: { host?: string; phase?: string }): void;
  /** Stop issuing requests, let those in flight complete (each bounded by timeoutMs), close every connection. */
  stop(): Promise<LoadResult>;
  /** Resolves when the run has ended: stop(), durationSeconds or requests reached. */
  done: Promise<LoadResult>;
  /** Figures so far, for progress output. */
  progress(): { elapsedMs: number; requests: number; failed: number; inFlight: number };
}

export const BUCKET_MS = 100;
export const MAX_FAILURES = 10_000;
/** Sent with every request, so the load is easy to tell apart in access logs. */
export const USER_AGENT = 'switchyard-load (loadtest)';
const DEFAULT_CONCURRENCY = 100;
const DEFAULT_TIMEOUT_MS = 10_000;
/** loadtest defaults to 10 s without a limit; ours is stop(). Under 2^31 ms (setTimeout's limit). */
const UNLIMITED_SECONDS = 7 * 24 * 3600;

/** Log-bucketed latency histogram: 1 % wide buckets from 1 µs up, so ±0.5 % on any percentile. */
export class LatencyHistogram {
  private static readonly STEP = Math.log(1.01);
  private static readonly SIZE = 2600; // 1.01^2600 µs ≈ 1.7e11 µs: far beyond any timeout
  private readonly counts = new Float64Array(LatencyHistogram.SIZE);
  n = 0;
  min = Infinity;
  max = 0;

  add(ms: number): void {
    const us = Math.max(1, ms * 1000);
    const i = Math.min(LatencyHistogram.SIZE - 1, Math.floor(Math.log(us) / LatencyHistogram.STEP));
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.n++;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
  }

  quantile(q: number): number {
    if (this.n === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.n));
    if (rank >= this.n) return this.max;
    if (rank === 1) return this.min;
    let seen = 0;
    for (let i = 0; i < LatencyHistogram.SIZE; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= rank) {
        const mid = Math.exp((i + 0.5) * LatencyHistogram.STEP) / 1000;
        return Math.min(this.max, Math.max(this.min, mid));
      }
    }
    return this.max;
  }
}

/** Nearest-rank percentile of a sorted array. */
function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? 0;
}

const round = (x: number, digits = 3): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** Everything measured during a run. Completion times only grow, so buckets close in order. */
class Recorder {
  readonly histogram = new LatencyHistogram();
  readonly failuresByCode: Record<string, number> = {};
  readonly failures: LoadFailure[] = [];
  readonly timeline: LoadTimelineBucket[] = [];
  readonly markers: LoadMarker[] = [];
  requests = 0;
  failed = 0;
  failuresOmitted = 0;
  private bucket = 0;
  private bucketLatencies: number[] = [];
  private bucketFailed = 0;

  add(t: number, ms: number, code: string | null, target: string): void {
    const b = Math.floor(t / BUCKET_MS);
    if (b > this.bucket) this.closeBucketsUntil(b);
    this.requests++;
    this.histogram.add(ms);
    this.bucketLatencies.push(ms);
    if (code !== null) {
      this.failed++;
      this.bucketFailed++;
      this.failuresByCode[code] = (this.failuresByCode[code] ?? 0) + 1;
      if (this.failures.length < MAX_FAILURES) this.failures.push({ t: round(t, 1), code, target, ms: round(ms, 1) });
      else this.failuresOmitted++;
    }
  }

  /** Close every bucket at the end of a run of `durationMs` (the last one even if it starts at durationMs). */
  finish(durationMs: number): void {
    const hasData = this.bucketLatencies.length > 0;
    this.closeBucketsUntil(Math.max(Math.ceil(durationMs / BUCKET_MS), this.bucket + (hasData ? 1 : 0)));
  }

  /** Close the current bucket and add empty ones up to (not including) bucket `b`. */
  closeBucketsUntil(b: number): void {
    while (this.bucket < b) {
      const sorted = Float64Array.from(this.bucketLatencies).sort();
      this.timeline.push({
        t: this.bucket * BUCKET_MS,
        requests: sorted.length,
        failed: this.bucketFailed,
        p50: round(percentile(sorted, 0.5)),
        p99: round(percentile(sorted, 0.99)),
      });
      this.bucketLatencies = [];
      this.bucketFailed = 0;
      this.bucket++;
    }
  }
}

type ProcessedOptions = { maxRequests?: number };
type RequestFn = (params: http.RequestOptions, cb: (res: http.IncomingMessage) => void) => http.ClientRequest;

function errorCode(e: unknown): string {
  const err = e as { code?: unknown; name?: unknown } | null;
  if (err && typeof err.code === 'string' && err.code) return err.code;
  if (err && typeof err.name === 'string' && err.name && err.name !== 'Error') return err.name;
  return 'ERROR';
}

function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

export function targetName(t: LoadTarget): string {
  return t.label ?? t.url;
}

/** Split `total` into `parts` integers that differ by at most one, larger first. */
export function splitEvenly(total: number, parts: number): number[] {
  const base = Math.floor(total / parts);
  const extra = total % parts;
  return Array.from({ length: parts }, (_, i) => base + (i < extra ? 1 : 0));
}

function positiveInt(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new Error(`load: ${name} must be a positive integer, got ${String(v)}`);
}

/** The options with their defaults, checked, and each target's URL (the path resolved against it). */
interface Settings {
  concurrency: number;
  keepalive: boolean;
  method: string;
  timeoutMs: number;
  urls: URL[];
}

/** Defaults applied and every option checked: throws on the first invalid one. */
function settingsOf(o: LoadOptions): Settings {
  const concurrency = o.concurrency ?? DEFAULT_CONCURRENCY;
  const keepalive = o.keepalive ?? true;
  const method = (o.method ?? 'GET').toUpperCase();
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (o.targets.length === 0) throw new Error('load: no targets');
  positiveInt('concurrency', concurrency);
  positiveInt('requests', o.requests);
  positiveInt('timeoutMs', timeoutMs);
  if (o.durationSeconds !== undefined && !(o.durationSeconds > 0 && o.durationSeconds <= UNLIMITED_SECONDS)) {
    throw new Error(`load: durationSeconds must be > 0, got ${String(o.durationSeconds)}`);
  }
  if (!/^[A-Z]+$/.test(method)) throw new Error(`load: invalid method ${method}`);
  if (concurrency < o.targets.length) throw new Error(`load: concurrency ${concurrency} is less than the ${o.targets.length} targets`);
  if (o.requests !== undefined && o.requests < o.targets.length) throw new Error(`load: requests ${o.requests} is less than the ${o.targets.length} targets`);
  return { concurrency, keepalive, method, timeoutMs, urls: o.targets.map((t) => targetUrl(t, o.path)) };
}

function targetUrl(t: LoadTarget, path: string | undefined): URL {
  let u: URL;
  try {
    u = new URL(path ?? '', t.url);
  } catch {
    throw new Error(`load: invalid target URL ${t.url}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`load: target URL must be http(s): ${t.url}`);
  return u;
}

/** What every request to one target is sent with. */
interface TargetPlan {
  /** In failures: the target's label, or its URL. */
  name: string;
  hostHeader: string;
  /** Its own keep-alive agent, or false: a fresh connection per request. */
  agent: http.Agent | false;
}

/**
 * One run of startLoad: a loadtest instance per target, every request measured into the Recorder,
 * and the end (limits reached or stop()): no new requests, those in flight drained, agents closed.
 */
class LoadRunner {
  private readonly t0 = performance.now();
  private readonly startedAt = new Date().toISOString();
  private readonly rec = new Recorder();
  private readonly inFlight = new Set<http.ClientRequest>();
  /** loadtest's options objects, one per instance: the handle that stops it. */
  private readonly processed = new Set<ProcessedOptions>();
  private readonly agents: http.Agent[] = [];
  private stopping = false;
  private finished = false;
  /** Set by drain(): called when the last request in flight completes. */
  private onIdle: (() => void) | null = null;
  private readonly durationTimer: NodeJS.Timeout | undefined;
  /** The result, once the run has ended; rejects if a target could not start. */
  readonly done: Promise<LoadResult>;

  constructor(
    private readonly o: LoadOptions,
    private readonly s: Settings,
  ) {
    const runs = this.startTargets();
    this.durationTimer = o.durationSeconds === undefined ? undefined : setTimeout(() => this.beginStop(), o.durationSeconds * 1000);
    this.done = this.finish(runs);
    this.done.catch(() => {}); // callers observe it through done/stop(); never an unhandled rejection
  }

  /** ms since the start. */
  private now(): number {
    return performance.now() - this.t0;
  }

  mark(label: string, m: { host?: string; phase?: string }): void {
    if (this.finished) return;
    const marker: LoadMarker = { t: round(this.now(), 1), label };
    if (m.host !== undefined) marker.host = m.host;
    if (m.phase !== undefined) marker.phase = m.phase;
    this.rec.markers.push(marker);
  }

  stop(): Promise<LoadResult> {
    this.beginStop();
    return this.done;
  }

  progress(): ReturnType<LoadRun['progress']> {
    return { elapsedMs: round(this.now(), 1), requests: this.rec.requests, failed: this.rec.failed, inFlight: this.inFlight.size };
  }

  /** Every loadtest instance stops issuing: each client ends at its next completion. */
  private beginStop(): void {
    if (this.stopping) return;
    this.stopping = true;
    for (const p of this.processed) p.maxRequests = 1;
  }

  /** One loadtest instance per target, the concurrency (and the request limit) split between them. */
  private startTargets(): Promise<void>[] {
    const shares = splitEvenly(this.s.concurrency, this.o.targets.length);
    const requestShares = this.o.requests === undefined ? undefined : splitEvenly(this.o.requests, this.o.targets.length);
    return this.o.targets.map((target, i) => this.startTarget(target, this.s.urls[i] as URL, shares[i] as number, requestShares?.[i]));
  }

  private startTarget(target: LoadTarget, url: URL, share: number, maxRequests: number | undefined): Promise<void> {
    const plan: TargetPlan = { name: targetName(target), hostHeader: target.host ?? url.host, agent: this.agentFor(url, share) };
    const options = {
      url: url.href,
      concurrency: share,
      method: 'GET' as const, // the real method is set per request (loadtest only knows five)
      headers: { host: plan.hostHeader },
      agentKeepAlive: false,
      quiet: true,
      requestGenerator: (lt: ProcessedOptions, params: http.RequestOptions, request: RequestFn, connect: (res: http.IncomingMessage) => void) =>
        this.issue(plan, lt, params, request, connect),
      ...(maxRequests !== undefined ? { maxRequests } : { maxSeconds: UNLIMITED_SECONDS }),
    };
    const run = new Promise<void>((resolve, reject) => {
      loadtestModule().loadTest(options, (err: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()));
    });
    run.catch(() => this.beginStop()); // one target cannot start: stop the others, done rejects with the error
    return run;
  }

  /** With keep-alive, the target's own agent (destroyed at the end); else false. */
  private agentFor(url: URL, share: number): http.Agent | false {
    if (!this.s.keepalive) return false;
    const opts = { keepAlive: true, maxSockets: share, maxFreeSockets: share };
    const agent = url.protocol === 'https:' ? new https.Agent(opts) : new http.Agent(opts);
    this.agents.push(agent);
    return agent;
  }

  /** loadtest's requestGenerator: builds one request and records its outcome once, whatever ends it. */
  private issue(plan: TargetPlan, lt: ProcessedOptions, params: http.RequestOptions, request: RequestFn, connect: (res: http.IncomingMessage) => void): http.ClientRequest {
    this.processed.add(lt);
    if (this.stopping) lt.maxRequests = 1;
    params.agent = plan.agent;
    params.method = this.s.method;
    // Fresh headers: nothing from a loadtest config file loadtest may find in the cwd (cookies, …).
    params.headers = { host: plan.hostHeader, accept: '*/*', 'user-agent': USER_AGENT };
    const cancelled = this.stopping; // issued after stop(): loadtest needs a request back; it is not counted
    const sent = performance.now();
    let settled = false;
    const settle = (code: string | null): void => {
      if (settled) return;
      settled = true;
      this.completed(req, cancelled ? null : sent, code, plan.name);
    };
    // Our listeners are registered before loadtest's (it adds its own when we return / call
    // connect), so `settle` runs first for every event.
    const req = request(params, (res) => {
      watchResponse(res, settle);
      connect(res);
    });
    this.inFlight.add(req);
    req.on('error', (e) => settle(errorCode(e)));
    const { timeoutMs } = this.s;
    req.setTimeout(timeoutMs, () => req.destroy(codedError('ETIMEDOUT', `no response within ${timeoutMs} ms`)));
    if (cancelled) req.destroy(codedError('ECANCELED', 'load stopped'));
    return req;
  }

  /** A request has ended: recorded unless cancelled (sent null), and the drain told when it was the last. */
  private completed(req: http.ClientRequest, sent: number | null, code: string | null, target: string): void {
    this.inFlight.delete(req);
    if (sent !== null) {
      const end = performance.now();
      this.rec.add(end - this.t0, end - sent, code, target);
    }
    if (this.inFlight.size === 0 && this.onIdle) this.onIdle();
  }

  /** Waits for every instance to end, then drains and closes; the result, or the error of a target that failed. */
  private async finish(runs: Promise<void>[]): Promise<LoadResult> {
    const settled = await Promise.allSettled(runs);
    this.beginStop(); // ended by limits: make sure nothing restarts
    if (this.durationTimer) clearTimeout(this.durationTimer);
    await this.drain();
    for (const a of this.agents) a.destroy();
    this.finished = true;
    const durationMs = round(this.now(), 1);
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) throw failure.reason instanceof Error ? failure.reason : new Error(String(failure.reason));
    this.rec.finish(durationMs);
    return this.result(durationMs);
  }

  /** Wait until nothing is in flight; past the timeout (+1 s), destroy what is left (ETIMEDOUT). */
  private drain(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.inFlight.size === 0) return resolve();
      const cap = setTimeout(() => {
        for (const r of this.inFlight) r.destroy(codedError('ETIMEDOUT', 'still in flight when the load stopped'));
      }, this.s.timeoutMs + 1000);
      this.onIdle = () => {
        this.onIdle = null;
        clearTimeout(cap);
        resolve();
      };
    });
  }

  private result(durationMs: number): LoadResult {
    const { rec, o } = this;
    const h = rec.histogram;
    const result: LoadResult = {
      startedAt: this.startedAt,
      durationMs,
      requests: rec.requests,
      failed: rec.failed,
      rps: durationMs > 0 ? round(rec.requests / (durationMs / 1000), 1) : 0,
      latencyMs: { p50: round(h.quantile(0.5)), p90: round(h.quantile(0.9)), p99: round(h.quantile(0.99)), max: round(h.max) },
      failuresByCode: { ...rec.failuresByCode },
      failures: rec.failures,
      timeline: rec.timeline,
      markers: rec.markers,
      targets: o.targets.map((t) => ({ ...t })),
      concurrency: this.s.concurrency,
      keepalive: this.s.keepalive,
      method: this.s.method,
      timeoutMs: this.s.timeoutMs,
      bucketMs: BUCKET_MS,
    };
    if (o.path !== undefined) result.path = o.path;
    if (rec.failuresOmitted > 0) result.failuresOmitted = rec.failuresOmitted;
    return result;
  }
}

/** A response's end, error or early close settles its request: a status outside 2xx–3xx is a failure. */
function watchResponse(res: http.IncomingMessage, settle: (code: string | null) => void): void {
  const status = res.statusCode ?? 0;
  res.on('end', () => settle(status >= 200 && status < 400 ? null : String(status)));
  res.on('error', (e) => settle(errorCode(e)));
  res.on('close', () => {
    if (!res.complete) settle('ECONNRESET');
  });
}

/**
 * Start driving load now. Runs until stop(), or until `durationSeconds` or `requests` is reached.
 * Throws at once on invalid options.
 */
export function startLoad(o: LoadOptions): LoadRun {
  const run = new LoadRunner(o, settingsOf(o));
  return {
    mark: (label, m = {}) => run.mark(label, m),
    stop: () => run.stop(),
    done: run.done,
    progress: () => run.progress(),
  };
}

function fmtMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

function fmtCodes(byCode: Record<string, number>): string {
  return Object.entries(byCode)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([code, n]) => `${code} ×${n}`)
    .join(', ');
}

/** Human text: requests, failed by code, rps, latency p50/p90/p99/max. */
export function summarize(r: LoadResult): string {
  const pct = r.requests > 0 ? (100 * r.failed) / r.requests : 0;
  const lines = [
    `requests: ${r.requests} in ${(r.durationMs / 1000).toFixed(1)} s, ${r.rps.toFixed(1)} req/s ` +
      `(concurrency ${r.concurrency}, keep-alive ${r.keepalive ? 'on' : 'off'}, ${r.targets.length} target${r.targets.length === 1 ? '' : 's'})`,
    r.failed === 0 ? 'failed: 0' : `failed: ${r.failed} (${pct < 0.01 ? pct.toPrecision(2) : pct.toFixed(2)}%): ${fmtCodes(r.failuresByCode)}`,
    `latency ms: p50 ${fmtMs(r.latencyMs.p50)}  p90 ${fmtMs(r.latencyMs.p90)}  p99 ${fmtMs(r.latencyMs.p99)}  max ${fmtMs(r.latencyMs.max)}`,
  ];
  return lines.join('\n');
}

/** One line per failure: `+12.345 s  502  http://…`. */
export function formatFailure(f: LoadFailure): string {
  return `+${(f.t / 1000).toFixed(3)} s  ${f.code}  ${f.target}`;
}

/** Thrown by assertZeroFailures; carries the result for callers that want more than the message. */
export class LoadFailuresError extends SwitchyardError {
  readonly result: LoadResult;
  constructor(message: string, result: LoadResult) {
    super(message);
    this.result = result;
  }
}

export const ASSERT_SHOWN_FAILURES = 20;

/** Throw (LoadFailuresError) unless every request succeeded; the message lists the failed requests. */
export function assertZeroFailures(r: LoadResult): void {
  if (r.failed === 0) return;
  const shown = r.failures.slice(0, ASSERT_SHOWN_FAILURES);
  const lines = [`${r.failed} of ${r.requests} requests failed (${fmtCodes(r.failuresByCode)}):`, ...shown.map((f) => `  ${formatFailure(f)}`)];
  if (r.failed > shown.length) lines.push(`  … and ${r.failed - shown.length} more`);
  throw new LoadFailuresError(lines.join('\n'), r);
}
