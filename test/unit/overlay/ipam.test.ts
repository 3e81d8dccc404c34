/**
 * Overlay IPAM: an address stays with its member across reconciles and across a restart of the store;
 * the lighthouse/hub address goes to its holder only; a member that leaves keeps its address (leaving)
 * until it is released, and only then is it handed out again; no two active members ever share an
 * address, however members come and go; and a full subnet says which field to change.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SqliteStore } from '../../../src/core/store/sqlite.ts';
import {
  type Allocation,
  loadAllocations,
  planAllocations,
  releaseAllocation,
  syncAllocations,
} from '../../../src/overlay/ipam.ts';
import type { OverlaySpec } from '../../../src/overlay/kind.ts';
import { LIGHTHOUSE_MEMBER } from '../../../src/overlay/protocol.ts';

const mesh = (subnet = '10.78.0.0/24'): OverlaySpec =>
  ({
    provider: 'wireguard',
    subnet,
    selector: { matchLabels: {} },
    wireguard: { topology: 'mesh', listenPort: 51820, persistentKeepalive: 25 },
  }) as OverlaySpec;
const hub = (h: string, subnet = '10.78.0.0/24'): OverlaySpec =>
  ({
    ...mesh(subnet),
    wireguard: { topology: 'hub', hub: h, listenPort: 51820, persistentKeepalive: 25 },
  }) as OverlaySpec;
const nebula = (subnet = '10.77.0.0/24', address?: string): OverlaySpec =>
  ({
    provider: 'nebula',
    subnet,
    selector: { matchLabels: {} },
    nebula: {
      lighthouse: { host: '10.213.0.1', port: 4242, ...(address ? { address } : {}) },
      groups: ['strata'],
      certificateLifetime: '30d',
      caLifetime: '365d',
      listenPort: 4242,
    },
  }) as OverlaySpec;

const addr = (p: { allocations: Allocation[] }) =>
  Object.fromEntries(
    p.allocations.map((a) => [a.node, `${a.address}${a.state === 'leaving' ? ' leaving' : ''}`]),
  );

describe('planAllocations', () => {
  it('hands out the lowest free addresses and keeps them on the next reconcile', () => {
    const p1 = planAllocations(mesh(), [], ['b', 'a']);
    assert.deepEqual(addr(p1), { a: '10.78.0.1', b: '10.78.0.2' });
    const p2 = planAllocations(mesh(), p1.allocations, ['c', 'b', 'a']);
    assert.deepEqual(addr(p2), { a: '10.78.0.1', b: '10.78.0.2', c: '10.78.0.3' });
    assert.deepEqual(p2.added, ['c']);
  });

  it('reserves the first address for the Nebula lighthouse, or the configured one', () => {
    const p = planAllocations(nebula(), [], ['n1', LIGHTHOUSE_MEMBER, 'n2']);
    assert.equal(addr(p)[LIGHTHOUSE_MEMBER], '10.77.0.1');
    assert.deepEqual([addr(p).n1, addr(p).n2], ['10.77.0.2', '10.77.0.3']);
    const q = planAllocations(nebula('10.77.0.0/24', '10.77.0.254'), [], ['n1', LIGHTHOUSE_MEMBER]);
    assert.deepEqual(addr(q), { [LIGHTHOUSE_MEMBER]: '10.77.0.254', n1: '10.77.0.1' });
  });

  it('never gives the reserved address to anyone but its holder, and moves a member off it', () => {
    // The hub is not selected (yet): its address stays free, nobody else gets it.
    const p = planAllocations(hub('h'), [], ['a', 'b']);
    assert.deepEqual(addr(p), { a: '10.78.0.2', b: '10.78.0.3' });
    // An older record gave .1 to a; once h is the hub, a moves and h gets .1.
    const stale: Allocation[] = [{ node: 'a', address: '10.78.0.1', state: 'active', allocatedAt: '' }];
    const q = planAllocations(hub('h'), stale, ['a', 'h']);
    assert.deepEqual(addr(q), { a: '10.78.0.2', h: '10.78.0.1' });
  });

  it('marks a member that left as leaving and keeps its address from newcomers until released', () => {
    const p1 = planAllocations(mesh(), [], ['a', 'b', 'c']);
    const p2 = planAllocations(mesh(), p1.allocations, ['a', 'c', 'd']);
    assert.deepEqual(p2.leaving, ['b']);
    assert.deepEqual(addr(p2), { a: '10.78.0.1', b: '10.78.0.2 leaving', c: '10.78.0.3', d: '10.78.0.4' });
    // Released: its address is free for the next newcomer.
    const p3 = planAllocations(
      mesh(),
      p2.allocations.filter((a) => a.node !== 'b'),
      ['a', 'c', 'd', 'e'],
    );
    assert.equal(addr(p3).e, '10.78.0.2');
    // A leaving member that is selected again gets its own address back.
    const p4 = planAllocations(mesh(), p2.allocations, ['a', 'b', 'c', 'd']);
    assert.equal(addr(p4).b, '10.78.0.2');
    assert.deepEqual(p4.added, []);
  });

  it('never hands one address to two active members under random churn', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const nodes = Array.from({ length: 40 }, (_, i) => `n${i}`);
    let current: Allocation[] = [];
    const spec = hub('n0', '10.78.0.0/27'); // 30 usable: sometimes full
    const history = new Map<string, string>();
    for (let round = 0; round < 300; round++) {
      const members = nodes.filter(() => rnd() < 0.6);
      const plan = planAllocations(spec, current, members);
      const active = plan.allocations.filter((a) => a.state === 'active');
      const addrs = active.map((a) => a.address);
      assert.equal(new Set(addrs).size, addrs.length, `round ${round}: duplicate address`);
      for (const a of active) {
        if (a.node !== 'n0')
          assert.notEqual(a.address, '10.78.0.1', `round ${round}: reserved address to ${a.node}`);
        assert.ok(members.includes(a.node));
        const before = current.find((c) => c.node === a.node);
        if (before && a.node !== 'n0')
          assert.equal(a.address, before.address, `round ${round}: ${a.node} moved`);
        history.set(a.node, a.address);
      }
      const everyone = plan.allocations.map((a) => a.address).filter((x) => x !== '10.78.0.1');
      assert.equal(
        new Set(everyone).size,
        everyone.length,
        `round ${round}: a newcomer got a leaving member's address`,
      );
      // Half of the leaving members finish their undo each round.
      current = plan.allocations.filter((a) => a.state === 'active' || rnd() < 0.5);
    }
    assert.ok(history.size > 30);
  });

  it('reports exhaustion naming spec.subnet and the fix, without doubling up', () => {
    const p = planAllocations(mesh('10.78.0.0/30'), [], ['a', 'b', 'c']);
    assert.deepEqual(addr(p), { a: '10.78.0.1', b: '10.78.0.2' });
    assert.equal(p.problems.length, 1);
    assert.match(
      p.problems[0]!,
      /^spec\.subnet: 10\.78\.0\.0\/30 has no free address left for node "c" \(2 usable, 2 held\): widen spec\.subnet or select fewer nodes$/,
    );
    // Leaving members count as held: still exhausted until one is released.
    const q = planAllocations(mesh('10.78.0.0/30'), p.allocations, ['a', 'c']);
    assert.deepEqual(addr(q), { a: '10.78.0.1', b: '10.78.0.2 leaving' });
    assert.equal(q.problems.length, 1);
  });
});

describe('syncAllocations (SQLite store)', () => {
  it('keeps allocations across a restart of the store and frees them on release', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ovl-ipam-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'strata.db');
    let store = new SqliteStore(file);
    await syncAllocations(store, 'g', mesh(), ['a', 'b', 'c']);
    await syncAllocations(store, 'other', mesh(), ['a']);
    await store.close();

    store = new SqliteStore(file); // a restart
    t.after(() => store.close());
    assert.deepEqual(addr({ allocations: await loadAllocations(store, 'g') }), {
      a: '10.78.0.1',
      b: '10.78.0.2',
      c: '10.78.0.3',
    });
    const p = await syncAllocations(store, 'g', mesh(), ['a', 'c', 'd']);
    assert.deepEqual(addr(p), { a: '10.78.0.1', b: '10.78.0.2 leaving', c: '10.78.0.3', d: '10.78.0.4' });
    await releaseAllocation(store, 'g', 'b');
    const q = await syncAllocations(store, 'g', mesh(), ['a', 'c', 'd', 'e']);
    assert.equal(addr(q).e, '10.78.0.2');
    // Another overlay's records are its own.
    assert.deepEqual(addr({ allocations: await loadAllocations(store, 'other') }), { a: '10.78.0.1' });
  });

  it('serialises concurrent reconciles of one overlay: no address is handed out twice', async (t) => {
    const store = new SqliteStore(':memory:');
    t.after(() => store.close());
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        syncAllocations(
          store,
          'g',
          mesh(),
          Array.from({ length: i + 1 }, (_, j) => `n${j}`),
        ),
      ),
    );
    const all = await loadAllocations(store, 'g');
    assert.equal(all.length, 10);
    assert.equal(new Set(all.map((a) => a.address)).size, 10);
  });
});
