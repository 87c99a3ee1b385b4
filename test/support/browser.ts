// Headless Chromium (Debian's) for looking at our HTML as a person would, with the network cut:
// every request that is not file: or data: is aborted and recorded, so a test proves a page is
// self-contained. The flags keep Chromium from calling home on this closed network.
import { chromium, type Browser, type Page } from 'playwright-core';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface OfflinePage {
  page: Page;
  /** URLs the page tried to reach (and was refused). */
  blocked: string[];
  /** Console errors and warnings, page errors and dialogs. */
  errors: string[];
  close(): Promise<void>;
}

/** Opens a local file with every non-file:/data: request aborted and recorded, and every console error kept. */
export async function openOffline(browser: Browser, file: string): Promise<OfflinePage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const blocked: string[] = [];
  const errors: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
    blocked.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(`file://${file}`);
  return { page, blocked, errors, close: () => context.close() };
}
