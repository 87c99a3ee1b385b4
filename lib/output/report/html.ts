/**
 * The load report as ONE self-contained HTML file: uPlot (JS and CSS) and the data are inlined,
 * and a Content-Security-Policy (default-src 'none', scripts allowed by hash only) makes the
 * browser refuse any network access or any script other than ours.
 *
 * Contents: a summary table (every figure carries `data-figure` and `data-value`), a timeline
 * chart (requests and failed requests per 100 ms, latency p50/p99 per 100 ms on a second axis)
 * with a dashed vertical line per marker drawn by a uPlot plugin plus a DOM flag per marker
 * (`data-marker`, `data-host`, `data-phase`, `data-t`) over the plot, the markers table, failures
 * by code and the list of failed requests.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { LoadResult } from '../../load/engine';
import { targetName } from '../../load/engine';
import { loadReportJson, reportBaseName, type LoadReportMeta } from './json';
import { makeDirs } from '../local-files';

export type { LoadReportMeta } from './json';

/** Rows of the failures table in the HTML (the JSON keeps every listed failure). */
export const HTML_MAX_FAILURE_ROWS = 1000;

/** Escape text for HTML element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * JSON safe inside `<script type="application/json">`: no `<`, `>` or `&` (so no `</script>`
 * or `<!--`), and no U+2028/2029.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

let uplotCache: { js: string; css: string } | undefined;

async function uplotAssets(): Promise<{ js: string; css: string }> {
  if (uplotCache) return uplotCache;
  // the package is CommonJS; the test runner gives its modules __filename too
  const req = createRequire(__filename);
  const dist = path.dirname(req.resolve('uplot/dist/uPlot.iife.min.js'));
  const [js, css] = await Promise.all([readFile(path.join(dist, 'uPlot.iife.min.js'), 'utf8'), readFile(path.join(dist, 'uPlot.min.css'), 'utf8')]);
  if (/<\/script|<!--/i.test(js) || /<\/style/i.test(css)) throw new Error('report: uPlot assets cannot be inlined as they are');
  uplotCache = { js, css };
  return uplotCache;
}

const fmt = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
const fmtMs = (ms: number): string => fmt(ms, ms >= 100 ? 0 : ms >= 10 ? 1 : 2);

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2630;margin:0;background:#f6f7f9}
main{max-width:1240px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#5b6775;margin:0 0 12px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:12px 16px;margin-top:16px}
section h2{margin-top:0}
table{border-collapse:collapse}
th,td{text-align:left;padding:3px 14px 3px 0;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{color:#5b6775;font-weight:600}
.verdict{display:inline-block;font-weight:700;padding:4px 10px;border-radius:4px;margin-bottom:8px}
.verdict.ok{background:#e3f6e8;color:#17692f}.verdict.bad{background:#fde6e4;color:#a12117}
#chart{width:100%;min-height:380px}
.marker-flag{position:absolute;top:0;height:100%;border-left:0;pointer-events:none}
.marker-flag span{position:absolute;left:2px;white-space:nowrap;font-size:11px;line-height:13px;padding:0 3px;background:rgba(255,255,255,.85);border-left:3px solid;pointer-events:auto;cursor:default}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:baseline}
code{font-size:13px}
.muted{color:#5b6775}
.scroll{max-height:460px;overflow:auto}
`;

/** Runs in the browser; plain ES2017, no interpolation from the server (data comes from #load-data). */
const CLIENT = String.raw`(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('load-data').textContent);
  var bucket = data.bucketMs;
  var tl = data.timeline.length ? data.timeline : [{ t: 0, requests: 0, failed: 0, p50: 0, p99: 0 }];
  var xs = [], req = [], failed = [], p50 = [], p99 = [];
  tl.forEach(function (b) {
    xs.push((b.t + bucket / 2) / 1000); // plotted at the bucket's middle: a bar spans its bucket
    req.push(b.requests);
    failed.push(b.failed || null);
    p50.push(b.requests ? b.p50 : null);
    p99.push(b.requests ? b.p99 : null);
  });
  var PHASES = { prepare: '#7d3c98', switch: '#d35400', retire: '#138d75', rollback: '#c0392b', deploy: '#2e4053', restart: '#b7950b' };
  var OTHER = ['#2874a6', '#a04000', '#1e8449', '#6c3483', '#7b7d7d'];
  function colorOf(m) {
    if (m.phase && PHASES[m.phase]) return PHASES[m.phase];
    var key = m.phase || m.label, h = 0;
    for (var i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) >>> 0;
    return OTHER[h % OTHER.length];
  }
  var markers = data.markers;
  document.querySelectorAll('[data-swatch]').forEach(function (el) {
    el.style.background = colorOf(markers[Number(el.getAttribute('data-swatch'))]);
  });

  function markersPlugin() {
    var flags = [];
    function inside(u, x) { return x >= 0 && x <= u.bbox.width / devicePixelRatio + 0.5; }
    function place(u) {
      flags.forEach(function (el, i) {
        var x = u.valToPos(markers[i].t / 1000, 'x');
        el.style.left = x + 'px';
        el.style.display = inside(u, x) ? '' : 'none';
      });
    }
    return {
      hooks: {
        ready: [function (u) {
          markers.forEach(function (m, i) {
            var el = document.createElement('div');
            el.className = 'marker-flag';
            el.setAttribute('data-marker', m.label);
            if (m.host != null) el.setAttribute('data-host', m.host);
            if (m.phase != null) el.setAttribute('data-phase', m.phase);
            el.setAttribute('data-t', String(m.t));
            var label = document.createElement('span');
            label.textContent = m.label;
            label.title = m.label + ' at ' + (m.t / 1000).toFixed(3) + ' s' + (m.host != null ? ' (host ' + m.host + ')' : '');
            label.style.borderColor = colorOf(m);
            label.style.top = (i % 12) * 14 + 'px';
            el.appendChild(label);
            u.over.appendChild(el);
            flags.push(el);
          });
          place(u);
        }],
        setSize: [place],
        setScale: [function (u, key) { if (key === 'x') place(u); }],
        draw: [function (u) {
          var ctx = u.ctx, dpr = devicePixelRatio, top = u.bbox.top, bottom = u.bbox.top + u.bbox.height;
          ctx.save();
          ctx.lineWidth = Math.max(1, Math.round(dpr));
          ctx.setLineDash([5 * dpr, 3 * dpr]);
          markers.forEach(function (m) {
            var x = Math.round(u.valToPos(m.t / 1000, 'x', true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
            ctx.strokeStyle = colorOf(m);
            ctx.beginPath();
            ctx.moveTo(x + 0.5, top);
            ctx.lineTo(x + 0.5, bottom);
            ctx.stroke();
          });
          ctx.restore();
        }]
      }
    };
  }

  var el = document.getElementById('chart');
  var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.9, 8] }) : undefined;
  var opts = {
    width: Math.max(320, el.clientWidth),
    height: 380,
    plugins: [markersPlugin()],
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: false }, count: { range: function (u, min, max) { return [0, Math.max(1, max * 1.05)]; } }, ms: {} },
    axes: [
      { label: 'seconds since start', values: function (u, vals) { return vals.map(function (v) { return v + ' s'; }); } },
      { scale: 'count', label: 'requests per ' + bucket + ' ms' },
      { scale: 'ms', side: 1, label: 'latency ms', grid: { show: false } }
    ],
    series: [
      { label: 't (s)', value: function (u, v) { return v == null ? '' : v.toFixed(1) + ' s'; } },
      { label: 'requests', scale: 'count', stroke: '#2874a6', fill: 'rgba(40,116,166,0.08)', width: 1 },
      { label: 'failed', scale: 'count', stroke: '#c0392b', fill: 'rgba(192,57,43,0.65)', width: 1, paths: bars, points: { show: false } },
      { label: 'p50 ms', scale: 'ms', stroke: '#1e8449', width: 1 },
      { label: 'p99 ms', scale: 'ms', stroke: '#d68910', width: 1 }
    ]
  };
  var plot = new uPlot(opts, [xs, req, failed, p50, p99], el);
  window.addEventListener('resize', function () { plot.setSize({ width: Math.max(320, el.clientWidth), height: 380 }); });
  document.documentElement.setAttribute('data-chart', 'ready');
})();`;

function figureRow(name: string, label: string, value: number, text: string): string {
  return `<tr><th>${escapeHtml(label)}</th><td class="num" data-figure="${escapeHtml(name)}" data-value="${escapeHtml(String(value))}">${escapeHtml(text)}</td></tr>`;
}

/** The whole HTML document for a load result. */
export async function renderLoadReportHtml(result: LoadResult, meta: LoadReportMeta): Promise<string> {
  const { js: uplotJs, css: uplotCss } = await uplotAssets();
  const r = result;
  const e = escapeHtml;
  const data = jsonForScript({ bucketMs: r.bucketMs ?? 100, timeline: r.timeline, markers: r.markers });
  const csp = `default-src 'none'; script-src ${sha256(uplotJs)} ${sha256(CLIENT)}; style-src 'unsafe-inline'; img-src data:`;
  const pct = r.requests > 0 ? (100 * r.failed) / r.requests : 0;

  const metaLine = [
    meta.env !== undefined ? `env <b>${e(meta.env)}</b>` : '',
    `started ${e(r.startedAt)}`,
    `${r.targets.length} target${r.targets.length === 1 ? '' : 's'}: ${r.targets.map((t) => `<code>${e(targetName(t))}</code>${t.host ? ` (Host: ${e(t.host)})` : ''}`).join(', ')}`,
    `${e(r.method ?? 'GET')} ${r.path !== undefined ? `<code>${e(r.path)}</code>` : ''}`,
  ]
    .filter(Boolean)
    .join(' · ');

  const notes = (meta.notes ?? []).length ? `<ul class="notes">${(meta.notes ?? []).map((n) => `<li>${e(n)}</li>`).join('')}</ul>` : '';

  const summary = [
    figureRow('requests', 'requests', r.requests, String(r.requests)),
    figureRow('failed', 'failed', r.failed, `${r.failed}${r.failed ? ` (${fmt(pct, pct < 0.01 ? 4 : 2)} %)` : ''}`),
    figureRow('rps', 'requests per second', r.rps, fmt(r.rps, 1)),
    figureRow('p50', 'latency p50 (ms)', r.latencyMs.p50, fmtMs(r.latencyMs.p50)),
    figureRow('p90', 'latency p90 (ms)', r.latencyMs.p90, fmtMs(r.latencyMs.p90)),
    figureRow('p99', 'latency p99 (ms)', r.latencyMs.p99, fmtMs(r.latencyMs.p99)),
    figureRow('max', 'latency max (ms)', r.latencyMs.max, fmtMs(r.latencyMs.max)),
    figureRow('duration', 'duration (s)', r.durationMs / 1000, fmt(r.durationMs / 1000, 1)),
    figureRow('concurrency', 'concurrency', r.concurrency, String(r.concurrency)),
    `<tr><th>keep-alive</th><td data-figure="keepalive" data-value="${r.keepalive}">${r.keepalive ? 'on' : 'off'}</td></tr>`,
  ].join('');

  const codes = Object.entries(r.failuresByCode).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const byCode = codes.length
    ? `<table id="failures-by-code"><tr><th>code</th><th>failed</th></tr>${codes.map(([c, n]) => `<tr><td data-code="${e(c)}">${e(c)}</td><td class="num">${n}</td></tr>`).join('')}</table>`
    : '';

  const markerRows = r.markers
    .map(
      (m, i) =>
        `<tr class="marker-row"><td class="num">${fmt(m.t / 1000, 3)}</td><td><span class="swatch" data-swatch="${i}"></span>${e(m.label)}</td><td>${e(m.host ?? '')}</td><td>${e(m.phase ?? '')}</td></tr>`,
    )
    .join('');
  const markersSection = `<section id="markers"><h2>Markers (${r.markers.length})</h2>${
    r.markers.length ? `<table><tr><th>time (s)</th><th>marker</th><th>host</th><th>phase</th></tr>${markerRows}</table>` : '<p class="muted">none</p>'
  }</section>`;

  const shown = r.failures.slice(0, HTML_MAX_FAILURE_ROWS);
  const notListed = r.failed - shown.length;
  const failureRows = shown
    .map((f) => `<tr class="failure-row"><td class="num">${fmt(f.t / 1000, 3)}</td><td>${e(f.code)}</td><td>${e(f.target)}</td><td class="num">${f.ms !== undefined ? fmtMs(f.ms) : ''}</td></tr>`)
    .join('');
  const failuresSection = `<section id="failures"><h2>Failed requests (${r.failed})</h2>${byCode}${
    shown.length
      ? `<div class="scroll"><table id="failure-list"><tr><th>time (s)</th><th>code</th><th>target</th><th>latency (ms)</th></tr>${failureRows}</table></div>`
      : '<p class="muted">none</p>'
  }${notListed > 0 ? `<p class="muted" id="failures-not-listed">${notListed} more not listed here${r.failuresOmitted ? '' : ' (see the JSON report)'}.</p>` : ''}</section>`;

  const verdict = r.failed === 0 ? `<div class="verdict ok">0 failed requests of ${r.requests}</div>` : `<div class="verdict bad">${r.failed} failed requests of ${r.requests}</div>`;

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(meta.title)}</title>
<link rel="icon" href="data:,">
<style>${uplotCss}</style>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${e(meta.title)}</h1>
<p class="meta">${metaLine}</p>
${notes}
<section id="summary"><h2>Summary</h2>${verdict}<table>${summary}</table></section>
<section id="timeline"><h2>Timeline</h2><div id="chart"></div><p class="muted">Requests completed and failed per ${r.bucketMs ?? 100} ms (left axis), latency p50 and p99 per ${r.bucketMs ?? 100} ms (right axis); dashed lines are markers. Drag to zoom, double-click to reset.</p></section>
${markersSection}
${failuresSection}
</main>
<script type="application/json" id="load-data">${data}</script>
<script>${uplotJs}</script>
<script>${CLIENT}</script>
</body>
</html>
`;
}

/** Write `<dir>/<name>.json` (every figure) and `<dir>/<name>.html` (self-contained); returns both paths. */
export async function writeLoadReport(dir: string, result: LoadResult, meta: LoadReportMeta): Promise<{ json: string; html: string }> {
  makeDirs(dir);
  const base = path.join(dir, reportBaseName(result, meta));
  const json = `${base}.json`;
  const html = `${base}.html`;
  await writeFile(json, `${JSON.stringify(loadReportJson(result, meta), null, 2)}\n`, { mode: 0o644 });
  await writeFile(html, await renderLoadReportHtml(result, meta), { mode: 0o644 });
  return { json, html };
}
