/**
 * The overlay manager on a real SQLite store: applying an Overlay and labelling Nodes is enough for the
 * Overlay's status to list its members and their addresses; a newcomer and a leaver each produce a plan
 * for the shell layer, and a leaver's address is released once its plan was handled; once nothing
 * changes, the manager stops writing (its own status writes do not keep it busy); a deleted Overlay
 * first lets every member leave, then takes its records with it; and a plan the shell layer failed to
 * handle is retried (with backoff) until it is, and only then is the leaver's address released.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OverlayStatus } from '../../../src/overlay/kind.ts';
import { startOverlayManager } from '../../../src/overlay/manager.ts';
import type { OverlayPlan } from '../../../src/overlay/membership.ts';
import { IPAM_COLLECTION, SECRETS } from '../../../src/overlay/protocol.ts';
import { suiteCleanup, waitFor } from '../../helpers/strata.ts';
import { type Harness, harness } from './helpers.ts';

/** Nodes a and b and a WireGuard mesh Overlay that selects them; resolves once both are members. */
async function meshOfAB(h: Harness): Promise<void> {
  for (const n of ['a', 'b'])
    await h.apply('Node', n, { ipAddress: `10.240.0.${n === 'a' ? 11 : 12}` }, { mesh: 'yes' });
  await h.apply('Overlay', 'mesh', {
    provider: 'wireguard',
    subnet: '10.78.0.0/24',
    selector: { matchLabels: { mesh: 'yes' } },
    wireguard: { topology: 'mesh' },
  });
  await waitFor('a and b are members', async () => {
    const st = (await h.resources.get('Overlay', 'mesh'))?.status as OverlayStatus | undefined;
    return Object.keys(st?.members ?? {}).length === 2;
  });
}

describe('overlay manager', () => {
  const cleanup = suiteCleanup();

  it('keeps an Overlay’s members, addresses and status current as Nodes come and go', async () => {
    const h = harness(cleanup);
    const plans: OverlayPlan[] = [];
    const mgr = await startOverlayManager(h, { onPlan: (p) => void plans.push(p) });
    cleanup.after(() => mgr.stop());
    const status = async () => ((await h.resources.get('Overlay', 'mesh'))?.status ?? {}) as OverlayStatus;
    const members = async () =>
      Object.fromEntries(
        Object.entries((await status()).members ?? {}).map(([k, v]) => [k, `${v.address} ${v.state}`]),
      );

    await meshOfAB(h);
    assert.deepEqual(await members(), { a: '10.78.0.1 active', b: '10.78.0.2 active' });
    assert.match((await status()).members!.a!.publicKey!, /^[A-Za-z0-9+/]{43}=$/);

    await h.apply('Node', 'c', { ipAddress: '10.240.0.13' }, { mesh: 'yes' });
    await waitFor('c is a member', async () => (await members()).c !== undefined);
    assert.deepEqual(
      plans.at(-1)!.members.map((m) => [m.node, m.peers]),
      [
        ['a', ['b', 'c']],
        ['b', ['a', 'c']],
        ['c', ['a', 'b']],
      ],
    );

    // b leaves: a plan carries its undo; once that plan is handled, its address is released.
    await h.relabel('Node', 'b', {});
    await waitFor('b is gone', async () => (await members()).b === undefined);
    assert.ok(plans.some((p) => p.leaving.map((l) => l.node).join() === 'b'));
    assert.ok(!plans.at(-1)!.members.some((m) => m.node === 'b' || m.peers.includes('b')));

    // Quiet once settled: no more plans while nothing changes.
    const settled = async () => {
      const n = plans.length;
      await new Promise((r) => setTimeout(r, 300));
      return plans.length === n;
    };
    await waitFor('the manager settles', settled);
    const version = (await h.resources.get('Overlay', 'mesh'))!.metadata.resourceVersion;
    assert.ok(await settled());
    assert.equal((await h.resources.get('Overlay', 'mesh'))!.metadata.resourceVersion, version);

    // Deleting the Overlay: every member leaves first, then its records and the Overlay go.
    await h.resources.delete('Overlay', 'mesh');
    await waitFor('the Overlay is gone', async () => !(await h.resources.get('Overlay', 'mesh')));
    assert.deepEqual(
      plans.at(-1)!.leaving.map((l) => l.node),
      ['a', 'c'],
    );
    assert.equal(plans.at(-1)!.deleting, true);
    for (const c of [IPAM_COLLECTION, SECRETS]) assert.deepEqual(await h.store.listRecords(c), [], c);
  });

  it('retries a plan whose handling failed until it succeeds, and only then releases the leaver', async () => {
    const h = harness(cleanup);
    let failures = 0;
    let handled = 0;
    const mgr = await startOverlayManager(h, {
      onPlan: () => {
        if (failures > 0) {
          failures--;
          throw new Error('push failed');
        }
        handled++;
      },
    });
    cleanup.after(() => mgr.stop());
    const leaving = async () =>
      Object.entries(((await h.resources.get('Overlay', 'mesh'))?.status as OverlayStatus)?.members ?? {})
        .filter(([, m]) => m.state === 'leaving')
        .map(([n]) => n);
    await meshOfAB(h);

    failures = 3;
    const before = handled;
    await h.relabel('Node', 'b', {});
    await waitFor('b is leaving', async () => (await leaving()).includes('b'));
    const holders = async () =>
      (await h.store.listRecords(IPAM_COLLECTION)).map((r) => (r.value as { node: string }).node).sort();
    assert.deepEqual(await holders(), ['a', 'b'], 'b keeps its address while its undo has not run');
    await waitFor('b’s address is released after the retries', async () => (await holders()).join() === 'a');
    assert.equal(failures, 0, 'every failed push was retried');
    assert.ok(handled > before);
  });
});
