/**
 * The load report: JSON with every figure, and the HTML opened in headless Chromium with every
 * network request blocked, to prove it is self-contained and that chart, markers, summary and
 * failures are there. The result comes from a real run against a local server.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium, openOffline } from '../../../support/browser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoad, summarize, type LoadResult } from '../../../../lib/load/engine';
import { HTML_MAX_FAILURE_ROWS, LOAD_REPORT_SCHEMA, escapeHtml, jsonForScript, writeLoadReport } from '../../../../lib/output/report';
import { sleep, startServer } from './servers';

const HOSTS = ['h1', 'h2', 'h3'];
const EVIL = `</script><img src=x onerror="document.title='pwned'">&"'`;

let browser: Browser;
let dir: string;
let result: LoadResult; // a run with markers per host × phase and a 502 window
let empty: LoadResult; // a run stopped at once

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-report-'));
  let bad = false;
  const s = await startServer(() => ({ status: bad ? 502 : 200, delayMs: 1 }));
  try {
    const run = startLoad({ targets: [{ url: s.url, host: 'site.example', label: `web1 ${EVIL}` }], concurrency: 10 });
    for (const phase of ['prepare', 'switch', 'retire']) {
      await sleep(150);
      for (const h of HOSTS) run.mark(`${h} ${phase}`, { host: h, phase });
      if (phase === 'switch') bad = true;
      await sleep(phase === 'switch' ? 60 : 0);
      bad = false;
    }
    run.mark(EVIL, { host: EVIL, phase: 'note' });
    await sleep(150);
    result = await run.stop();
    empty = await startLoad({ targets: [{ url: s.url }], concurrency: 2 }).stop();
  } finally {
    await s.close();
  }
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const open = (file: string) => openOffline(browser, file);

describe('the run behind the report', () => {
  it('has markers for every host and phase, and failures in the switch window', () => {
    expect(result.markers).toHaveLength(HOSTS.length * 3 + 1);
    expect(result.failed).toBeGreaterThan(0);
    expect(Object.keys(result.failuresByCode)).toEqual(['502']);
    expect(empty.requests).toBe(0);
  });
});

describe('writeLoadReport', () => {
  it('writes JSON with every figure and the summary', async () => {
    const out = await writeLoadReport(dir, result, { title: 'JSON check', env: 'uat', notes: ['two deploys'] });
    expect(path.dirname(out.json)).toBe(dir);
    expect(out.json.replace(/\.json$/, '')).toBe(out.html.replace(/\.html$/, ''));
    expect(path.basename(out.json)).toMatch(/^load-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z\.json$/);
    const doc = JSON.parse(await readFile(out.json, 'utf8'));
    expect(doc.schema).toBe(LOAD_REPORT_SCHEMA);
    expect(doc).toMatchObject({ title: 'JSON check', env: 'uat', notes: ['two deploys'], summary: summarize(result) });
    expect(doc.result).toEqual(result);
    const named = await writeLoadReport(path.join(dir, 'sub', 'dir'), empty, { title: 't', name: 'verify-1' });
    expect(named).toEqual({ json: path.join(dir, 'sub', 'dir', 'verify-1.json'), html: path.join(dir, 'sub', 'dir', 'verify-1.html') });
    await expect(writeLoadReport(dir, empty, { title: 't', name: '../escape' })).rejects.toThrow(/invalid file name/);
  });

  it('HTML opens without network: chart drawn, one marker per host for a phase, summary and failures, no errors', async () => {
    const out = await writeLoadReport(dir, result, { title: `Verify ${EVIL}`, env: `uat ${EVIL}`, notes: [`note ${EVIL}`] });
    const html = await readFile(out.html, 'utf8');
    expect(html).not.toMatch(/<(script|link)[^>]+(src|href)="(https?:)?\/\//i); // nothing fetched from anywhere
    expect(html.match(/<script/g)).toHaveLength(3); // data, uPlot, ours: the evil strings opened none
    const { page, blocked, errors, close } = await open(out.html);
    try {
      await page.waitForSelector('html[data-chart="ready"]', { timeout: 10_000 });
      await sleep(100);
      expect(errors).toEqual([]); // strictly none from the page itself (below, our own pixel reads may warn)
      expect(await page.title()).toBe(`Verify ${EVIL}`);
      expect(await page.locator('h1').textContent()).toBe(`Verify ${EVIL}`);
      expect(await page.locator('img').count()).toBe(0);

      // the chart: a uPlot canvas with something drawn on it
      const canvas = page.locator('#chart canvas');
      expect(await canvas.count()).toBe(1);
      const drawn = await canvas.evaluate((c: HTMLCanvasElement) => {
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
        return { n, w: c.width, h: c.height };
      });
      expect(drawn.w).toBeGreaterThan(600);
      expect(drawn.n).toBeGreaterThan(5000);
      expect(await page.locator('#chart .u-legend').textContent()).toContain('p99 ms');

      // markers: one flag per host for each phase, in time order, inside the plot
      for (const phase of ['prepare', 'switch', 'retire']) {
        const flags = page.locator(`#chart [data-marker][data-phase="${phase}"]`);
        const hosts = await flags.evaluateAll((els) => els.map((e) => e.getAttribute('data-host')));
        expect(hosts).toEqual(HOSTS);
        const labels = await flags.evaluateAll((els) => els.map((e) => e.getAttribute('data-marker')));
        expect(labels).toEqual(HOSTS.map((h) => `${h} ${phase}`));
        expect(await flags.evaluateAll((els) => els.every((e) => (e as HTMLElement).offsetParent !== null))).toBe(true);
      }
      const evil = page.locator('#chart [data-phase="note"]');
      expect(await evil.getAttribute('data-marker')).toBe(EVIL);
      expect(await evil.getAttribute('data-host')).toBe(EVIL);
      const xs = await page.locator('#chart [data-marker]').evaluateAll((els) => els.map((e) => [Number(e.getAttribute('data-t')), parseFloat((e as HTMLElement).style.left)]));
      expect(xs).toHaveLength(result.markers.length);
      for (let i = 1; i < xs.length; i++) {
        expect(xs[i]![0]!).toBeGreaterThanOrEqual(xs[i - 1]![0]!);
        expect(xs[i]![1]!).toBeGreaterThanOrEqual(xs[i - 1]![1]!);
      }
      expect(xs[0]![1]!).toBeGreaterThan(0);

      // the dashed switch line is on the canvas at the flag's x (switch colour #d35400)
      const onCanvas = await page.evaluate(() => {
        const flag = document.querySelector<HTMLElement>('#chart [data-phase="switch"]')!;
        const over = document.querySelector<HTMLElement>('#chart .u-over')!;
        const c = document.querySelector<HTMLCanvasElement>('#chart canvas')!;
        const dpr = window.devicePixelRatio;
        const x = Math.round((over.offsetLeft + parseFloat(flag.style.left)) * dpr);
        const d = c.getContext('2d')!.getImageData(x - 2, 0, 5, c.height).data;
        let hits = 0;
        for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i]! - 211) < 30 && Math.abs(d[i + 1]! - 84) < 30 && d[i + 2]! < 40 && d[i + 3]! > 100) hits++;
        return hits;
      });
      expect(onCanvas).toBeGreaterThan(50);

      // summary figures
      const fig = (name: string): Promise<string | null> => page.locator(`[data-figure="${name}"]`).getAttribute('data-value');
      expect(await fig('requests')).toBe(String(result.requests));
      expect(await fig('failed')).toBe(String(result.failed));
      expect(await fig('p99')).toBe(String(result.latencyMs.p99));
      expect(await fig('concurrency')).toBe('10');
      expect(await page.locator('[data-figure="requests"]').textContent()).toBe(String(result.requests));
      expect(await page.locator('.verdict').textContent()).toBe(`${result.failed} failed requests of ${result.requests}`);

      // failures: by code, and the list with time, code, target
      expect(await page.locator('#failures-by-code [data-code="502"]').count()).toBe(1);
      const rows = page.locator('#failure-list tr.failure-row');
      expect(await rows.count()).toBe(Math.min(result.failed, HTML_MAX_FAILURE_ROWS));
      const first = result.failures[0]!;
      expect(await rows.first().locator('td').allTextContents()).toEqual([(first.t / 1000).toFixed(3), '502', `web1 ${EVIL}`, expect.any(String)]);

      expect(blocked).toEqual([]);
      expect(errors.filter((e) => !e.includes('willReadFrequently'))).toEqual([]);
    } finally {
      await close();
    }
  });

  it('an empty run renders too', async () => {
    const out = await writeLoadReport(dir, empty, { title: 'nothing' });
    const { page, blocked, errors, close } = await open(out.html);
    try {
      await page.waitForSelector('html[data-chart="ready"]', { timeout: 10_000 });
      expect(await page.locator('#chart canvas').count()).toBe(1);
      expect(await page.locator('[data-marker]').count()).toBe(0);
      expect(await page.locator('.verdict').textContent()).toBe('0 failed requests of 0');
      expect(blocked).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('the Content-Security-Policy refuses any network access the page might attempt', async () => {
    const out = await writeLoadReport(dir, empty, { title: 'csp', name: 'csp' });
    const { page, blocked, errors, close } = await open(out.html);
    try {
      await page.waitForSelector('html[data-chart="ready"]', { timeout: 10_000 });
      // a probe from outside the page's own scripts: CSP must stop it before it reaches the network
      await page.evaluate(() => {
        const img = document.createElement('img');
        img.src = 'http://127.0.0.1:9/probe.png';
        document.body.appendChild(img);
      });
      await sleep(300);
      expect(blocked).toEqual([]);
      expect(errors.join('\n')).toMatch(/Content Security Policy/);
    } finally {
      await close();
    }
  });
});

describe('escaping', () => {
  it('escapeHtml and jsonForScript', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
    const value = { s: '</script><!-- \u2028\u2029 & >', n: [1, 2] };
    const json = jsonForScript(value);
    expect(json).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(json)).toEqual(value);
  });
});
