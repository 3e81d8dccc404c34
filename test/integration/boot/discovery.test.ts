/**
 * Forged PXE DISCOVERs, as the boot manager receives them from a segment's worker: a burst of unknown
 * MACs enrols only as many Nodes as the Network's rate and cap allow (with a metric and a Network event
 * when hit), and the strings a packet carried are stored without control characters and cut to length.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { bootLayer } from '../../../src/boot/index.ts';
import { type BootReport, leaseCollection, subjects } from '../../../src/boot/protocol.ts';
import { loadManifest } from '../../../src/core/resources/manifest.ts';
import type { Resource } from '../../../src/core/resources/types.ts';
import type { Platform } from '../../../src/platform.ts';
import { startManagers } from '../../helpers/platform.ts';
import { suiteCleanup, waitFor } from '../../helpers/strata.ts';

const network = (name: string, octet: number, discovery: string) => `
apiVersion: strata.dev/v1alpha1
kind: Network
metadata: {name: ${name}}
spec:
  interface: br0
  namespace: security-discovery-${name}
  subnet: 10.${octet}.0.0/24
  serverAddress: 10.${octet}.0.1
  pool: {start: 10.${octet}.0.100, end: 10.${octet}.0.200}
  boot: {unknownNodes: discover${discovery}}
`;

const discover = (net: string, i: number, extra: Partial<BootReport> = {}): BootReport =>
  ({
    kind: 'dhcp',
    network: net,
    mac: `52:54:00:77:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
    type: 'DISCOVER',
    reply: 'OFFER',
    arch: 0,
    archKind: 'bios',
    isPXE: true,
    isIPXE: false,
    isHttpClient: false,
    relayed: false,
    vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
    ...extra,
  }) as BootReport;

describe('discovery of unknown machines is bounded and sanitised', () => {
  const t = suiteCleanup();
  let p: Platform;

  before(async () => {
    p = await startManagers(t, [bootLayer], 'security-discovery-');
    await p.resources.apply([
      ...loadManifest(network('burst', 21, '')),
      ...loadManifest(network('capped', 22, ', discovery: {maxNodes: 5, perMinute: 1000}')),
      ...loadManifest(network('dirty', 23, '')),
    ]);
  });

  const discovered = async (net: string) =>
    (await p.resources.list('Node')).filter((n) => (n.spec as { network?: string }).network === net).length;
  const networkEvents = async (name: string) => {
    await p.hub.flush();
    return p.store.listEvents({ kind: 'Network', name });
  };
  const metrics = async () => (await fetch(`http://127.0.0.1:${p.address!.port}/metrics`)).text();

  it('300 forged DISCOVERs make at most a rate-limited handful of Nodes, with a metric and an event', async () => {
    for (let i = 0; i < 300; i++) await p.transport.publish(subjects.report, discover('burst', i));
    const ev = await waitFor('rate-limit event', async () =>
      (await networkEvents('burst')).find((e) => e.reason === 'DiscoveryRateLimited'),
    );
    assert.equal(ev.type, 'Warning');
    await waitFor('enrolments settle', async () => (await discovered('burst')) >= 30 || undefined);
    await p.hub.flush();
    const n = await discovered('burst');
    assert.ok(n >= 30 && n < 40, `${n} nodes: the default rate is a burst of 30, then 30 a minute`);
    assert.match(
      await metrics(),
      /strata_boot_discovery_refused_total\{network="burst",reason="DiscoveryRateLimited"\} (\d+)/,
    );
  });

  it('a network stops enrolling at its cap of discovered nodes', async () => {
    for (let i = 0; i < 20; i++) await p.transport.publish(subjects.report, discover('capped', 1000 + i));
    await waitFor('cap event', async () =>
      (await networkEvents('capped')).find((e) => e.reason === 'DiscoveryCapReached'),
    );
    assert.equal(await discovered('capped'), 5);
    assert.match(
      await metrics(),
      /strata_boot_discovery_refused_total\{network="capped",reason="DiscoveryCapReached"\}/,
    );
  });

  it('vendor class and hostname from the packet are stored without control characters, cut to length', async () => {
    await p.transport.publish(
      subjects.report,
      discover('dirty', 2000, {
        vendorClass: 'PXEClient\u001b[2J\u001b]0;owned\u0007\nInjected: line',
        hostname: `evil\r\n${'x'.repeat(500)}`,
      } as Partial<BootReport>),
    );
    const name = `node-52540077${(2000 >> 8).toString(16).padStart(2, '0')}${(2000 & 255).toString(16).padStart(2, '0')}`;
    const node = await waitFor<Resource>('dirty node', () => p.resources.get('Node', name));
    const d = (node.status as { discovered: { vendorClass: string; hostname: string } }).discovered;
    for (const s of [d.vendorClass, d.hostname]) {
      assert.doesNotMatch(s, /[\u0000-\u001f\u007f-\u009f]/, JSON.stringify(s));
      assert.ok(s.length <= 64, `${s.length} characters`);
    }
    assert.match(d.vendorClass, /^PXEClient\\x1b\[2J/);
    await p.hub.flush();
    const ev = (await p.store.listEvents({ kind: 'Node', name })).map(
      (e) => `${e.message} ${JSON.stringify(e.data)}`,
    );
    assert.ok(ev.length > 0);
    for (const line of ev) assert.doesNotMatch(line, /\u001b|\\u001b|\n|\r/, line);
  });

  it('the host name a lease records is sanitised too', async () => {
    const lease = {
      ip: '10.23.0.150',
      mac: '52:54:00:77:99:01',
      network: 'dirty',
      state: 'bound',
      expiresAt: Date.now() + 60_000,
      updatedAt: Date.now(),
      hostname: `a\u001b]0;x\u0007b${'y'.repeat(300)}`,
    };
    await p.transport.request(subjects.leasesPersist, { network: 'dirty', leases: [lease] });
    const [stored] = await p.store.listRecords(leaseCollection('dirty'));
    const hostname = (stored!.value as { hostname: string }).hostname;
    assert.doesNotMatch(hostname, /[\u0000-\u001f]/);
    assert.ok(hostname.length <= 64);
  });
});
