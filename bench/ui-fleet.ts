/**
 * Benchmark: the web UI's fleet page with thousands of nodes, in Debian's Chromium (playwright-core)
 * against a real `strata up`. Applies N nodes, logs in, and measures: the time until all N are listed,
 * how many rows are in the DOM (the list is windowed), a scroll from top to bottom in steps, the delay
 * from one API patch to its row on the page, and a wave: every node's work order confirmed through the
 * API, until the page counts all N in state 1. No pass/fail: run it and read.
 *
 *   node bench/ui-fleet.ts [--nodes 5000]
 *
 * Measured on the 2-core machine under a load average near 30 (other QEMU labs): login to 5,000 listed
 * 1.5 s; 19 rows in the DOM; a patch to its row 0.8 s; 5,000 work orders confirmed in 107 s and all in
 * state 1 on the page 28 s later; the 50-step scroll 5.7 s during the ladder's writes, 5.3 s when quiet.
 */
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { buildUi, launchChromium } from '../test/helpers/browser.ts';
import { startStrata } from '../test/helpers/strata.ts';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '5000' } } });
const N = Number(values.nodes);
const cleanups: (() => unknown)[] = [];
const t = { after: (fn: () => unknown) => void cleanups.push(fn) };
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

/** Waits until the ladder made a work order for every node (they are what the wave confirms). */
async function waitForOrders(url: string, token: string): Promise<void> {
  for (;;) {
    const r = await fetch(`${url}/api/v1/workorders`, { headers: { authorization: `Bearer ${token}` } });
    const n = ((await r.json()) as { items: unknown[] }).items.length;
    if (n >= N) return;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/**
 * Scrolls the list from top to bottom in 50 steps inside the page (no round trip to the driver per step):
 * each step sets scrollTop and waits two frames, so the time is what the page needs to draw 50 windows.
 */
async function scrollThrough(page: Page, when: string): Promise<void> {
  const scrolled = (await page.locator('.scroller').evaluate(async (el) => {
    const raf = (globalThis as unknown as { requestAnimationFrame(cb: () => void): number })
      .requestAnimationFrame;
    // Long tasks (over 50 ms on the main thread) during the scroll: the page's own script, if it is slow.
    let longTasks = 0;
    let longMs = 0;
    const obs = new PerformanceObserver((l) => {
      for (const e of l.getEntries()) {
        longTasks++;
        longMs += e.duration;
      }
    });
    // 'longtask' is a browser entry type, which Node's types do not list.
    obs.observe({ type: 'longtask' } as unknown as Parameters<typeof obs.observe>[0]);
    const t0 = performance.now();
    let worst = 0;
    for (let i = 1; i <= 50; i++) {
      const s = performance.now();
      el.scrollTop = el.scrollHeight * (i / 50);
      await new Promise<void>((r) => raf(() => raf(() => r())));
      worst = Math.max(worst, performance.now() - s);
    }
    obs.disconnect();
    return { total: performance.now() - t0, worst, longTasks, longMs };
  })) as { total: number; worst: number; longTasks: number; longMs: number };
  console.log(
    `scroll top to bottom in 50 steps ${when}: ${Math.round(scrolled.total)} ms, slowest step ${Math.round(scrolled.worst)} ms; ${scrolled.longTasks} long tasks (${Math.round(scrolled.longMs)} ms)`,
  );
}

const ms = (since: number) => `${Math.round(performance.now() - since)} ms`;

const manifest = () =>
  Array.from(
    { length: N },
    (_, i) => `apiVersion: strata.dev/v1alpha1
kind: Node
metadata: {name: n-${i}, labels: {rack: r${i % 40}}}
spec: {macAddresses: ["52:54:01:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}:01"], targetState: 1, providers: {hardware: human}}
`,
  ).join('---\n');

try {
  buildUi();
  const strata = await startStrata(t, { env: { STRATA_LOG_LEVEL: 'error' } });
  let start = performance.now();
  const applied = await strata.api('POST', '/api/v1/apply', manifest());
  if (applied.status !== 200) throw new Error(`apply: ${applied.status} ${applied.text.slice(0, 300)}`);
  console.log(`apply of ${N} nodes: ${ms(start)}`);

  const browser = await launchChromium(t);
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(strata.url);
  await page.getByLabel('API token').fill(strata.token);
  start = performance.now();
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('.total', { hasText: `${N} nodes` }).waitFor({ timeout: 120_000 });
  await page.locator('li[data-node]').first().waitFor();
  console.log(`login to ${N} nodes listed: ${ms(start)}`);
  console.log(`rows in the DOM: ${await page.locator('li[data-node]').count()} of ${N}`);

  await scrollThrough(page, 'while the ladder writes every node');
  const lastShown = await page.locator('li[data-node]').last().getAttribute('data-node');
  console.log(`last row rendered after the scroll: ${lastShown}`);

  await page.locator('.scroller').evaluate((el) => {
    el.scrollTop = 0;
  });
  await page.getByLabel('Labels').fill('probe=1');
  start = performance.now();
  await strata.api(
    'PATCH',
    `/api/v1/nodes/n-${Math.floor(N / 2)}`,
    JSON.stringify({ metadata: { labels: { probe: '1' } } }),
    { contentType: 'application/merge-patch+json' },
  );
  await page.locator(`li[data-node="n-${Math.floor(N / 2)}"]`).waitFor({ timeout: 60_000 });
  console.log(`one patch to its row on the page: ${ms(start)}`);

  // A wave: every node's work order confirmed through the API (8 at a time), and every node climbs to
  // state 1. Timed from the first confirmation until the page counts all N in state 1.
  await page.getByLabel('Labels').fill('');
  await waitForOrders(strata.url, strata.token);
  start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < N) {
        const i = next++;
        const r = await strata.api('POST', `/api/v1/workorders/n-${i}/done`, { by: 'bench' });
        if (r.status !== 200) throw new Error(`work order n-${i}: ${r.status} ${r.text}`);
      }
    }),
  );
  console.log(`${N} work orders confirmed through the API: ${ms(start)}`);
  await page
    .locator('[data-count-state="1"]', { hasText: new RegExp(`^${N}$`) })
    .waitFor({ timeout: 600_000 });
  console.log(`first confirmation to all ${N} in state 1 on the page: ${ms(start)}`);
  await page.waitForTimeout(5000);
  await scrollThrough(page, 'once the changes stopped');
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
