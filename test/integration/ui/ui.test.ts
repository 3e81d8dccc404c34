/**
 * The web UI in a real browser (Debian's Chromium through playwright-core) against a real `strata up`
 * with a real segment: a bridge namespace where Strata's boot worker runs, client namespaces whose busybox
 * udhcpc plays the nodes' firmware and iPXE. What a user checks: logging in with the token, nodes
 * appearing and climbing the ladder on the page as DHCP packets arrive (no reload), a node's timeline, a
 * work order confirmed from the phone-sized page, a refused manifest with the error at its field, the
 * segment's health; and what the server sends with the page (CSP, types, caching), or says without a
 * build. The fleet and node screenshots in docs/ are taken here.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import { buildUi, launchChromium } from '../../helpers/browser.ts';
import {
  REPO,
  type StrataServer,
  startStrata,
  suiteCleanup,
  tempDir,
  waitFor,
} from '../../helpers/strata.ts';
import { type BootSetup, nodeManifest, strataWithNetwork, udhcpc } from '../boot/segment.ts';

const DOCS = join(REPO, 'docs');
const PXE = ['-V', 'PXEClient:Arch:00000:UNDI:002001'];
/** iPXE's DHCP: user class (option 77) "iPXE". */
const IPXE = ['-x', `0x4d:${Buffer.from('iPXE').toString('hex')}`];

function rackNode(
  name: string,
  mac: string,
  labels: Record<string, string>,
  target = 4,
  hardware = 'human',
): string {
  return `apiVersion: strata.dev/v1alpha1
kind: Node
metadata: {name: ${name}, labels: ${JSON.stringify(labels)}}
spec: {network: rack1, macAddresses: ["${mac}"], targetState: ${target}, providers: {hardware: ${hardware}}}
`;
}

/** A computed style of the element (run in the page, which has the DOM the test's types do not). */
const css = (l: Locator, prop: string) =>
  l.evaluate(
    (el, p) =>
      (globalThis as unknown as { getComputedStyle(e: unknown): Record<string, string> }).getComputedStyle(
        el,
      )[p] ?? '',
    prop,
  );

/** Red enough to read as an error: the red channel well above green and blue ("rgb(179, 38, 30)"). */
function isRed(color: string): boolean {
  const [r = 0, g = 0, b = 0] = (color.match(/\d+/g) ?? []).map(Number);
  return r > 120 && r > 2 * g && r > 2 * b;
}

/** How much wider than the window the page is (0 or less: no sideways scrolling). */
const overflowX = (page: Page) =>
  page.evaluate('document.documentElement.scrollWidth - window.innerWidth') as Promise<number>;

const rowState = (page: Page, name: string) =>
  page.locator(`li[data-node="${name}"]`).getAttribute('data-state', { timeout: 5000 });

describe('web UI in Chromium against strata up', { timeout: 240_000 }, () => {
  const t = suiteCleanup();
  let boot: BootSetup;
  let strata: StrataServer;
  let browser: Browser;
  let page: Page;
  let mac1 = '';
  /** Console errors and uncaught exceptions of the page (a CSP violation is one). */
  const pageErrors: string[] = [];

  before(async () => {
    buildUi();
    boot = await strataWithNetwork(t, { prefix: '10.213.71', name: 'rack1', clients: ['c1', 'c2'] });
    strata = boot.strata;
    mac1 = boot.set.mac(boot.seg.clients.c1!, 'eth0');
    const nodes = [
      nodeManifest('c1', mac1, 'rack1', '10.213.71.50'),
      ...Array.from({ length: 8 }, (_, i) =>
        rackNode(`rack-a-${i + 1}`, `52:54:00:71:00:${(i + 16).toString(16)}`, {
          rack: 'a',
          role: i < 3 ? 'db' : 'web',
        }),
      ),
      // A lab node with no lab VM behind it: the lab worker of this server answers that it has none, so the
      // power step fails, for real, and keeps failing (with backoff).
      rackNode('ghost-1', '52:54:00:71:00:30', { rack: 'b' }, 1, 'lab'),
    ].join('---\n');
    const r = await strata.cli(['apply', '-f', '-'], { stdin: nodes });
    assert.equal(r.code, 0, r.stderr);
    browser = await launchChromium(t);
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  it('serves the page with a strict CSP, its type, and caches only the hashed assets', async () => {
    const res = await fetch(`${strata.url}/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
    assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script: the CSP would block it');
    const js = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(js, html);
    const asset = await fetch(strata.url + js);
    assert.equal(asset.status, 200);
    assert.equal(asset.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    // The API keeps answering as before around it.
    const missing = await fetch(`${strata.url}/assets/nope.js`);
    assert.equal(missing.status, 404);
    assert.equal((await fetch(`${strata.url}/api/v1/nodes`)).status, 401);
  });

  it('refuses an unknown token on the login page, then logs in with the keyboard alone', async () => {
    await page.goto(strata.url);
    await page.getByLabel('API token').fill('not-a-token');
    await page.keyboard.press('Enter');
    await page
      .getByRole('alert')
      .getByText(/not known to the server/)
      .waitFor();
    await page.getByLabel('API token').fill(strata.token);
    await page.keyboard.press('Tab'); // to the button
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    await page.locator('.live.on').waitFor();
    assert.equal(await page.locator('li[data-node]').count(), 10);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('strata.token')), strata.token);
  });

  it('shows a failing step in red with its last error, in the fleet and on the node page', async () => {
    const row = page.locator('li[data-node="ghost-1"]');
    // The engine's own record of the failure, as `strata describe node` shows it.
    const lastError = await waitFor('ghost-1 fails', async () => {
      const n = (await strata.api('GET', '/api/v1/nodes/ghost-1')).json as {
        status?: { step?: { name: string; lastError?: string } };
      };
      return n.status?.step?.lastError;
    });
    assert.match(lastError, /the lab provider did not power the node on \(unknown: no lab VM named ghost-1/);
    await page.locator('li[data-node="ghost-1"].failing').waitFor({ timeout: 10_000 });
    // The failing step's cell (into state 1) is red, and so is the message, which is the last error.
    const cell = row.locator('.cell.failing');
    assert.equal(await cell.textContent(), '1');
    assert.ok(isRed(await css(cell, 'backgroundColor')));
    const msg = row.locator('.msg.err');
    assert.match((await msg.textContent()) ?? '', /hardware\.power\s+the lab provider did not power/);
    assert.ok(isRed(await css(msg, 'color')));
    // A screen reader hears it too: the row's link names the failing step and its error.
    assert.match(
      (await row.locator('a').getAttribute('aria-label')) ?? '',
      /failing hardware\.power: the lab provider did not power the node on \(unknown: no lab VM named ghost-1/,
    );
    assert.match((await page.locator('.fleet .total').textContent()) ?? '', /10 nodes, 1 failing/);

    await row.locator('a').click();
    await page.getByRole('heading', { name: 'ghost-1', level: 1 }).waitFor();
    const step = page.locator('p.error', { hasText: 'hardware.power' });
    await step.waitFor();
    assert.match(
      (await step.textContent()) ?? '',
      /\(try \d+\): the lab provider .*is the lab up\?\)\); next try/,
    );
    assert.ok(isRed(await css(step, 'color')));
    await page.locator('.gantt li.failed[data-step="hardware.power"]').waitFor();
    assert.match((await page.locator('table.events').textContent()) ?? '', /StepFailed/);
    await page.getByRole('link', { name: '← Fleet' }).click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  });

  it('shows a node as it is applied and as it climbs, live, without reloading', async () => {
    await page.evaluate('window.notReloaded = true');
    const mac2 = boot.set.mac(boot.seg.clients.c2!, 'eth0');
    const r = await strata.cli(['apply', '-f', '-'], {
      stdin: nodeManifest('c2', mac2, 'rack1', '10.213.71.51'),
    });
    assert.equal(r.code, 0, r.stderr);
    await page.locator('li[data-node="c2"]').waitFor({ timeout: 10_000 });
    assert.equal(await rowState(page, 'c1'), '0');

    // c1's firmware asks DHCP as a PXE client: the node is powered (1) and network-booting (2).
    assert.match(await udhcpc(boot.set, boot.seg.clients.c1!, 5, 2, PXE), /lease of 10\.213\.71\.50/);
    await page.locator('li[data-node="c1"][data-state="2"]').waitFor({ timeout: 30_000 });
    // Then iPXE asks DHCP again, as iPXE: state 3.
    assert.match(await udhcpc(boot.set, boot.seg.clients.c1!, 5, 2, IPXE), /lease of 10\.213\.71\.50/);
    await page.locator('li[data-node="c1"][data-state="3"]').waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('[data-count-state="3"]').textContent(), '1');
    assert.equal(await page.locator('[data-count-state="0"]').textContent(), '10');
    assert.equal(await page.evaluate('window.notReloaded'), true, 'the page was not reloaded');

    // Filters: by label and by state.
    await page.getByLabel('Labels').fill('rack=a,role!=db');
    await waitFor('label filter', async () => (await page.locator('li[data-node]').count()) === 5);
    // A selector the server would refuse is refused here too, with the server's own message.
    await page.getByLabel('Labels').fill('rack in (a');
    await page
      .locator('#f-labels-error')
      .getByText(/invalid label selector "rack in \(a"/)
      .waitFor();
    await page.getByLabel('Labels').fill('');
    await page.getByLabel('State', { exact: true }).selectOption('3');
    await waitFor('state filter', async () => (await page.locator('li[data-node]').count()) === 1);
    await page.getByLabel('State', { exact: true }).selectOption('');
  });

  it('confirms a work order on a phone-sized page and the node climbs to 1', async () => {
    const phone = await browser.newPage({
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
    });
    await phone.goto(strata.url);
    await phone.getByLabel('API token').fill(strata.token);
    await phone.getByRole('button', { name: 'Log in' }).click();
    await phone.getByRole('link', { name: 'Work orders' }).click();
    const card = phone.locator('li[data-workorder="rack-a-1"]');
    await card.waitFor();
    assert.match((await card.textContent()) ?? '', /Connect node rack-a-1 \(52:54:00:71:00:10\)/);
    const overflow = await overflowX(phone);
    assert.ok(overflow <= 0, `the work orders page is ${overflow}px wider than the phone`);
    await card.getByRole('button', { name: 'Confirm: I did this' }).tap();
    await card.getByRole('button', { name: 'Yes, done' }).tap();
    await phone.getByText('Confirmed: rack-a-1').waitFor();
    const wo = await strata.api('GET', '/api/v1/workorders');
    const done = (wo.json as { items: { node: string; state: string; doneBy?: string }[] }).items.find(
      (o) => o.node === 'rack-a-1',
    );
    assert.deepEqual([done?.state, done?.doneBy], ['done', 'web-ui']);
    // The desktop page sees the climb.
    await page.locator('li[data-node="rack-a-1"][data-state="1"]').waitFor({ timeout: 30_000 });
    // The list follows the event stream (it does not poll): an order confirmed elsewhere leaves it, and a
    // new node's order arrives, without a reload.
    await phone.evaluate('window.notReloaded = true');
    const cli = await strata.cli(['workorder', 'done', 'rack-a-2']);
    assert.equal(cli.code, 0, cli.stderr);
    await phone.locator('li[data-workorder="rack-a-2"]').waitFor({ state: 'detached', timeout: 5000 });
    const applied = await strata.cli(['apply', '-f', '-'], {
      stdin: rackNode('rack-b-1', '52:54:00:71:00:31', { rack: 'b' }, 1),
    });
    assert.equal(applied.code, 0, applied.stderr);
    await phone.locator('li[data-workorder="rack-b-1"]').waitFor({ timeout: 10_000 });
    assert.equal(await phone.evaluate('window.notReloaded'), true, 'the work orders page was not reloaded');
    // And the fleet fits the phone too.
    await phone.getByRole('link', { name: 'Fleet' }).click();
    await phone.locator('li[data-node="c1"]').waitFor();
    const fleetOverflow = await overflowX(phone);
    assert.ok(fleetOverflow <= 0, `the fleet is ${fleetOverflow}px wider than the phone`);
    // So do a node's page (timeline included), the networks and the YAML editor.
    for (const [hash, ready] of [
      ['#/node/c1', 'table.events'],
      ['#/networks', 'li[data-network]'],
      ['#/config/networks/rack1', 'textarea'],
    ] as const) {
      await phone.goto(`${strata.url}/${hash}`);
      await phone.locator(ready).first().waitFor();
      const over = await overflowX(phone);
      assert.ok(over <= 0, `${hash} is ${over}px wider than the phone`);
    }
    await phone.close();
    mkdirSync(DOCS, { recursive: true });
    await page.locator('h1').click(); // no focus ring on a filter in the picture
    await page.screenshot({ path: join(DOCS, 'ui-fleet.png') });
  });

  it("opens a node's timeline: a strip per step and every event", async () => {
    await page.locator('li[data-node="c1"] a').click();
    await page.getByRole('heading', { name: 'c1', level: 1 }).waitFor();
    for (const step of ['boot.firmware', 'boot.ipxe'])
      await page.locator(`.gantt li[data-step="${step}"]`).waitFor({ timeout: 10_000 });
    assert.match((await page.locator('.gantt li[data-step="boot.firmware"]').textContent()) ?? '', /done/);
    const table = (await page.locator('table.events').textContent()) ?? '';
    assert.match(table, /DHCPAck/);
    assert.match(table, /StepCompleted/);
    assert.match((await page.locator('.facts').textContent()) ?? '', /10\.213\.71\.50/);
    assert.match((await page.locator('.actions').textContent()) ?? '', /strata ssh c1/);
    await page.screenshot({ path: join(DOCS, 'ui-node.png'), fullPage: true });
  });

  it('sets a target state from the node page through the API', async () => {
    await page.getByLabel('Target state').selectOption('3');
    await page.getByRole('button', { name: 'Set target' }).click();
    await page.getByText('target set to 3').waitFor();
    const n = await strata.api('GET', '/api/v1/nodes/c1');
    assert.equal((n.json as { spec: { targetState: number } }).spec.targetState, 3);
  });

  it('shows the segment: its boot worker running and the leases against the pool', async () => {
    await page.getByRole('link', { name: 'Networks' }).click();
    const card = page.locator('li[data-network="rack1"]');
    await card.getByText(/Boot worker: Running/).waitFor({ timeout: 10_000 });
    await card.getByText(/Leases in the pool: \d+ of 21/).waitFor();
    assert.match((await card.textContent()) ?? '', /2 reserved addresses/);
    // The counters come from the worker process in the segment: c1's DHCP requests are counted there.
    await card.getByText(/Traffic \(\d+ counters\)/).click();
    await card.getByText(/dhcp_packets \(type=REQUEST\)/).waitFor();
    const h = (await strata.api('GET', '/api/v1/networks/rack1/health')).json as {
      countersFrom: string;
      counters: { name: string; labels: Record<string, string>; value: number }[];
    };
    assert.equal(h.countersFrom, 'worker');
    const requests = h.counters.find(
      (c) => c.name === 'strata_dhcp_packets_total' && c.labels.type === 'REQUEST',
    );
    assert.ok((requests?.value ?? 0) >= 2, JSON.stringify(h.counters));
  });

  it('refuses a bad manifest and shows the error at its field, changing nothing', async () => {
    await page.goto(`${strata.url}/#/config/networks`);
    const text = `apiVersion: strata.dev/v1alpha1
kind: Network
metadata:
  name: bad-net
spec:
  interface: br9
  subnet: 10.9.0.0/24
  serverAddress: 10.9.0.1
  pool:
    start: 10.8.0.10
    end: 10.9.0.20
`;
    await page.getByLabel(/YAML manifest/).fill(text);
    await page.getByRole('button', { name: 'Apply' }).click();
    const err = page.locator('.field-errors li[data-path="spec.pool.start"]');
    await err.waitFor();
    assert.match((await err.textContent()) ?? '', /line 10 spec\.pool\.start: .*outside/);
    assert.equal(await page.locator('.gutter .bad').getAttribute('data-line'), '10');
    assert.equal(await page.getByLabel(/YAML manifest/).getAttribute('aria-invalid'), 'true');
    assert.equal((await strata.api('GET', '/api/v1/networks/bad-net')).status, 404);
    // Fixed, it applies.
    await page.getByLabel(/YAML manifest/).fill(text.replace('10.8.0.10', '10.9.0.10'));
    await page.getByRole('button', { name: 'Dry run' }).click();
    await page.getByText('Dry run: network/bad-net created').waitFor();
    assert.equal((await strata.api('GET', '/api/v1/networks/bad-net')).status, 404);
  });

  it('lists Clusters with the other resources and shows a bad Cluster at its field', async () => {
    await page.goto(`${strata.url}/#/config/clusters`);
    await page.getByRole('navigation', { name: 'Kinds' }).getByRole('link', { name: 'Clusters' }).waitFor();
    const text = `apiVersion: strata.dev/v1alpha1
kind: Cluster
metadata:
  name: lab-k8s
spec:
  controlPlane:
    selector:
      matchLabels: {role: db}
  podCIDR: 10.96.0.0/16
  serviceCIDR: 10.96.0.0/12
`;
    await page.getByLabel(/YAML manifest/).fill(text);
    await page.getByRole('button', { name: 'Apply' }).click();
    const err = page.locator('.field-errors li[data-path="spec.serviceCIDR"]');
    await err.waitFor();
    assert.match((await err.textContent()) ?? '', /line 10 spec\.serviceCIDR: .*overlaps spec\.podCIDR/);
    assert.equal(await page.locator('.gutter .bad').getAttribute('data-line'), '10');
    assert.equal((await strata.api('GET', '/api/v1/clusters/lab-k8s')).status, 404);
    // Fixed, it applies and the list shows it.
    await page.getByLabel(/YAML manifest/).fill(text.replace('10.96.0.0/16', '10.244.0.0/16'));
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('navigation', { name: 'Clusters' }).getByRole('link', { name: 'lab-k8s' }).waitFor();
    assert.equal((await strata.api('GET', '/api/v1/clusters/lab-k8s')).status, 200);
  });

  it('ran under its CSP without a violation or an uncaught error', () => {
    // The refused login and the refused manifest are answered 401 and 422, which Chromium logs as
    // failed loads; anything else (a blocked script or style, an exception) fails here.
    const unexpected = pageErrors.filter((e) => !/status of (401|422)/.test(e));
    assert.deepEqual(unexpected, []);
  });
});

describe('strata up without a built UI', () => {
  const t = suiteCleanup();
  it('says so at start and on the page, and the API works', async () => {
    const strata = await startStrata(t, { env: { STRATA_UI_DIR: tempDir(t, 'strata-no-ui-') } });
    assert.match(strata.stderr(), /the web UI is not built .*bash scripts\/setup\.sh/);
    const res = await fetch(`${strata.url}/`);
    assert.equal(res.status, 503);
    assert.match(await res.text(), /The web UI is not built/);
    assert.equal((await strata.api('GET', '/api/v1/nodes')).status, 200);
  });
});
