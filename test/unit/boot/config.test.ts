/**
 * The boot config fan-out on the core controller (src/boot/config.ts), on a real store, hub and
 * transport: a change rebuilds and re-sends only the networks it touches. A node's MAC change reaches its
 * own network's worker only; a status write (most Node writes) reaches none; a node moving between
 * networks reaches both; a lease write of a node's MAC refreshes that network's DNS names (a burst of them once), a lease of a
 * machine no node names refreshes nothing, and neither does any lease of a network that runs no DNS server.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startConfigFanOut } from '../../../src/boot/config.ts';
import { leaseCollection } from '../../../src/boot/nodes.ts';
import { type BootConfig, subjects } from '../../../src/boot/protocol.ts';
import { EventHub } from '../../../src/core/events.ts';
import '../../../src/core/kinds/index.ts';
import type { ManagerContext } from '../../../src/core/layer.ts';
import { silentLogger } from '../../../src/core/log.ts';
import { validateDocument } from '../../../src/core/resources/manifest.ts';
import { ResourceService } from '../../../src/core/resources/service.ts';
import { API_VERSION, type Resource } from '../../../src/core/resources/types.ts';
import { SqliteStore } from '../../../src/core/store/sqlite.ts';
import { InprocTransport } from '../../../src/core/transport/inproc.ts';

function doc(kind: string, name: string, spec: Record<string, unknown>): Resource {
  const { resource, issues } = validateDocument(
    { apiVersion: API_VERSION, kind, metadata: { name }, spec },
    undefined,
    0,
  );
  assert.deepEqual(issues, []);
  return resource!;
}

const network = (name: string, third: number) =>
  doc('Network', name, {
    interface: `br-${name}`,
    subnet: `10.9.${third}.0/24`,
    serverAddress: `10.9.${third}.1`,
    pool: { start: `10.9.${third}.100`, end: `10.9.${third}.200` },
  });

/** A store, hub, resources and transport in memory, closed after the test. */
function context(t: { after(fn: () => Promise<void>): void }) {
  const store = new SqliteStore(':memory:');
  const hub = new EventHub(store, silentLogger);
  const resources = new ResourceService(store, hub);
  const transport = new InprocTransport();
  const ctx = {
    store,
    hub,
    resources,
    transport,
    log: silentLogger,
    layers: [],
  } as unknown as ManagerContext;
  t.after(async () => {
    await hub.flush();
    await store.close();
  });
  return { ctx, store, resources, transport };
}

/** Writes a bound lease of `mac` at `ip` on `network`, as the boot manager's persist handler does. */
function bindLease(store: SqliteStore, network: string, ip: string, mac: string): Promise<void> {
  return store.putRecords(leaseCollection(network), [
    { key: ip, value: { ip, mac, state: 'bound', expiresAt: Date.now() + 60_000 } },
  ]);
}

describe('boot config fan-out', () => {
  it('re-sends only the networks a change touches', async (t) => {
    const base = context(t);
    const { store, resources, transport } = base;
    /** How often a rebuild read a network's leases (every lease of it: the cost a stranger must not cause). */
    let leaseReads = 0;
    const counted = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'listRecords')
          return (collection: string) => {
            if (collection === leaseCollection('b')) leaseReads++;
            return target.listRecords(collection);
          };
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const ctx = { ...base.ctx, store: counted } as ManagerContext;
    await resources.create(network('a', 1));
    await resources.create(network('b', 2));
    await resources.create(doc('Node', 'n1', { macAddresses: ['52:54:00:00:00:01'], network: 'a' }));

    const got: Record<string, BootConfig[]> = { a: [], b: [] };
    for (const n of ['a', 'b'])
      await transport.subscribe<BootConfig>(subjects.configChanged(n), (c) => void got[n]!.push(c));
    const fanOut = await startConfigFanOut(ctx, { leaseCoalesceMs: 20 });
    t.after(async () => fanOut.stop());
    /** Waits until nothing more is sent for a while, then returns and clears what each network got. */
    const settle = async () => {
      let before = -1;
      while (before !== got.a!.length + got.b!.length) {
        before = got.a!.length + got.b!.length;
        await sleep(150);
      }
      const out = { a: got.a!.splice(0), b: got.b!.splice(0) };
      return out;
    };
    const first = await settle();
    assert.equal(first.a.length, 1, 'each network is sent its configuration once at start');
    assert.equal(first.b.length, 1);
    assert.deepEqual(first.a[0]!.knownMacs, ['52:54:00:00:00:01']);
    assert.deepEqual(first.b[0]!.knownMacs, []);

    // A field the worker holds changes: its network only.
    const n1 = (await resources.get('Node', 'n1'))!;
    await resources.update({
      ...n1,
      spec: { ...n1.spec, macAddresses: ['52:54:00:00:00:01', '52:54:00:00:00:02'] },
    });
    const mac = await settle();
    assert.equal(mac.b.length, 0, 'network b is not rebuilt');
    assert.equal(mac.a.length, 1);
    assert.deepEqual(mac.a[0]!.knownMacs, ['52:54:00:00:00:01', '52:54:00:00:00:02']);

    // Status writes, the bulk of Node changes: nothing a worker holds, nothing sent.
    for (let i = 0; i < 5; i++)
      await resources.patchStatus('Node', 'n1', (s) => ({ ...s, lastSeen: `t${i}` }));
    const status = await settle();
    assert.deepEqual([status.a.length, status.b.length], [0, 0]);

    // A node moving from a to b: both.
    const moved = (await resources.get('Node', 'n1'))!;
    await resources.update({ ...moved, spec: { ...moved.spec, network: 'b' } });
    const move = await settle();
    assert.deepEqual(move.a.at(-1)!.knownMacs, []);
    assert.deepEqual(move.b.at(-1)!.knownMacs, ['52:54:00:00:00:01', '52:54:00:00:00:02']);

    // A lease on b names n1 in b's DNS; a's configuration does not change.
    await bindLease(store, 'b', '10.9.2.100', '52:54:00:00:00:02');
    const readsAtLease = leaseReads;
    // A burst of lease writes (a boot storm's batches) makes one rebuild.
    for (let i = 0; i < 5; i++) fanOut.leasesChanged('b', ['52:54:00:00:00:02']);
    const lease = await settle();
    assert.equal(leaseReads - readsAtLease, 1, 'five lease writes within the window, one rebuild');
    assert.equal(lease.a.length, 0);
    assert.deepEqual(lease.b.at(-1)!.hosts, [{ name: 'n1', ipv4: '10.9.2.100' }]);

    // Leases of machines no Node names (most of a busy segment's): no rebuild, nothing sent.
    await bindLease(store, 'b', '10.9.2.101', '52:54:00:00:00:99');
    const readsBefore = leaseReads;
    for (let i = 0; i < 5; i++) fanOut.leasesChanged('b', ['52:54:00:00:00:99']);
    const stranger = await settle();
    assert.deepEqual([stranger.a.length, stranger.b.length], [0, 0]);
    assert.equal(leaseReads, readsBefore, "a stranger's lease does not make the network's leases be read");

    // Once n1 no longer names that MAC, its leases rebuild nothing either.
    const n1b = (await resources.get('Node', 'n1'))!;
    await resources.update({ ...n1b, spec: { ...n1b.spec, macAddresses: ['52:54:00:00:00:01'] } });
    const dropped = await settle();
    assert.deepEqual(dropped.b.at(-1)!.knownMacs, ['52:54:00:00:00:01']);
    const readsThen = leaseReads;
    fanOut.leasesChanged('b', ['52:54:00:00:00:02']);
    const after = await settle();
    assert.deepEqual([after.a.length, after.b.length], [0, 0]);
    assert.equal(leaseReads, readsThen);
  });

  it('leaves a network that runs no DNS server alone when its leases change, and reads none of them', async (t) => {
    const { ctx, store, resources, transport } = context(t);
    let leaseReads = 0;
    const counted = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'listRecords')
          return (collection: string) => {
            leaseReads++;
            return target.listRecords(collection);
          };
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const quiet = doc('Network', 'q', { ...network('q', 3).spec, dns: { enabled: false } });
    await resources.create(quiet);
    await resources.create(doc('Node', 'n1', { macAddresses: ['52:54:00:00:03:01'], network: 'q' }));
    const got: BootConfig[] = [];
    await transport.subscribe<BootConfig>(subjects.configChanged('q'), (c) => void got.push(c));
    const fanOut = await startConfigFanOut({ ...ctx, store: counted } as ManagerContext, {
      leaseCoalesceMs: 20,
    });
    t.after(async () => fanOut.stop());
    while (got.length === 0) await sleep(20);
    assert.deepEqual(got[0]!.knownMacs, ['52:54:00:00:03:01'], 'the worker still knows its Nodes');
    assert.deepEqual(got[0]!.hosts, [], 'no DNS server, no names');
    assert.equal(leaseReads, 0, 'building it read no lease');
    await bindLease(store, 'q', '10.9.3.100', '52:54:00:00:03:01');
    for (let i = 0; i < 5; i++) fanOut.leasesChanged('q', ['52:54:00:00:03:01']);
    await sleep(200);
    assert.equal(got.length, 1, 'a lease of its Node rebuilds nothing');
    assert.equal(leaseReads, 0);

    // Its DNS server turned on: the names come from the leases again.
    const q = (await resources.get('Network', 'q'))!;
    await resources.update({ ...q, spec: { ...q.spec, dns: { ...(q.spec.dns as object), enabled: true } } });
    while (got.length < 2) await sleep(20);
    assert.deepEqual(got.at(-1)!.hosts, [{ name: 'n1', ipv4: '10.9.3.100' }]);
  });

  it('rebuilds a network once for a burst of lease writes, with every lease in its DNS names', async (t) => {
    const { ctx, store, resources, transport } = context(t);
    await resources.create(network('a', 1));
    const macs = Array.from({ length: 40 }, (_, i) => `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`);
    for (const [i, mac] of macs.entries())
      await resources.create(doc('Node', `n${i}`, { macAddresses: [mac], network: 'a' }));
    const got: BootConfig[] = [];
    await transport.subscribe<BootConfig>(subjects.configChanged('a'), (c) => void got.push(c));
    const fanOut = await startConfigFanOut(ctx, { leaseCoalesceMs: 300 });
    t.after(async () => fanOut.stop());
    while (got.length === 0) await sleep(20);
    got.splice(0);
    for (const [i, mac] of macs.entries()) await bindLease(store, 'a', `10.9.1.${100 + i}`, mac);
    // A storm's batches, each telling the fan-out, as the manager does per batch.
    for (const mac of macs) fanOut.leasesChanged('a', [mac]);
    await sleep(900);
    assert.equal(got.length, 1, 'one rebuild for the burst');
    assert.equal(got[0]!.hosts.length, 40);
    assert.deepEqual(
      got[0]!.hosts.find((h) => h.name === 'n7'),
      { name: 'n7', ipv4: '10.9.1.107' },
    );
  });
});
