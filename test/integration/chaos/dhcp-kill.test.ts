/**
 * kill -9 of `strata up` during a burst of real DHCP clients. Busybox udhcpc runs in a loop in each of
 * several namespaces on one segment, taking a new MAC after every lease, while `strata up` (SQLite) is
 * killed and restarted. Every ACK a client saw is collected from the clients' own scripts, and afterwards
 * a user's checks hold: no address was bound to two MACs at once, every lease acknowledged before a kill
 * is in the store, the boot worker answers again after each restart, and a node's timeline shows the gap.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { before, describe, it } from 'node:test';
import { netnsAvailable } from '../../helpers/netns.ts';
import { suiteCleanup, waitFor } from '../../helpers/strata.ts';
import {
  type Ack,
  assertAcksStored,
  assertNoDoubleBinding,
  type Burst,
  type Segment,
  segmentWithStrata,
  startBurst,
} from './burst.ts';

const avail = netnsAvailable();
const CLIENTS = 10;
const KILLS = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kill -9 of strata up during a DHCP burst', { skip: avail.ok ? false : avail.reason }, () => {
  const t = suiteCleanup();
  let seg: Segment;
  let burst: Burst;

  before(async () => {
    const clients = Array.from({ length: CLIENTS }, (_, i) => `c${i}`);
    // c0 is a Node with a reserved address (its timeline is checked); the others are unknown clients.
    seg = await segmentWithStrata(t, { net: 9, clients });
    const mac = seg.set.mac(seg.ns.c0!, 'eth0');
    const r = await seg.strata.cli(['apply', '-f', '-'], {
      stdin: `apiVersion: strata.dev/v1alpha1
kind: Node
metadata: {name: c0}
spec:
  macAddresses: ["${mac}"]
  network: seg
  ipAddress: 10.219.9.10
  targetState: 1
  providers: {hardware: none}
`,
    });
    assert.equal(r.code, 0, r.stderr);
    burst = startBurst(t, seg, ['c0']);
  });

  it('loses no acknowledged lease, binds no address twice, serves again and shows the gap', async (tc) => {
    const { strata } = seg;
    const kills: { at: number; ackedBefore: Ack[]; upAt: number; firstAckAfter: number }[] = [];
    for (let k = 0; k < KILLS; k++) {
      const base = burst.acks().length;
      await waitFor('ACKs in this server life', () => burst.acks().length >= base + 15, 30_000);
      await sleep(Math.random() * 1500);
      await strata.kill();
      const at = Date.now();
      const ackedBefore = burst.acks();
      await sleep(1000);
      await strata.start();
      const upAt = Date.now();
      const n = burst.acks().length;
      // The boot worker serves again: a client gets an ACK from the restarted instance.
      await waitFor('an ACK after the restart', () => burst.acks().length > n, 20_000).catch((e) => {
        throw new Error(
          `${(e as Error).message}\n${strata.stdout().slice(-3000)}${strata.stderr().slice(-3000)}`,
        );
      });
      kills.push({ at, ackedBefore, upAt, firstAckAfter: Date.now() });
    }
    await waitFor(
      'ACKs after the last restart',
      () => burst.acks().length >= kills.at(-1)!.ackedBefore.length + 15,
    );
    await burst.stop();
    const all = burst.acks();
    assertNoDoubleBinding(all);

    // Every lease acknowledged before a kill is in the store (bound to that MAC).
    const db = new DatabaseSync(join(strata.dataDir, 'strata.db'), { readOnly: true });
    let stored: Map<string, { mac: string; state: string }>;
    try {
      const rows = db
        .prepare("SELECT key, value FROM records WHERE collection = 'dhcp.leases.seg'")
        .all() as {
        key: string;
        value: string;
      }[];
      stored = new Map(rows.map((r) => [r.key, JSON.parse(r.value) as { mac: string; state: string }]));
    } finally {
      db.close();
    }
    const checked = assertAcksStored(kills.at(-1)!.ackedBefore, stored);

    // The reserved node's timeline: ACKs before each kill, none while down, ACKs after each restart.
    const res = await strata.api('GET', '/api/v1/nodes/c0/events?limit=1000');
    const times = (res.json as { items: { reason: string; time: string }[] }).items
      .filter((e) => e.reason === 'DHCPAck')
      .map((e) => Date.parse(e.time));
    for (const k of kills) {
      assert.ok(
        times.some((x) => x < k.at),
        'the node has DHCPAck events before the kill',
      );
      assert.ok(
        times.some((x) => x > k.upAt - 1000),
        'the node has DHCPAck events after the restart',
      );
      assert.ok(!times.some((x) => x > k.at && x < k.upAt - 1000), 'no event while Strata was down');
    }

    const macs = new Set(all.map((a) => a.mac));
    tc.diagnostic(
      `chaos dhcp: ${CLIENTS} clients, ${macs.size} MACs, ${all.length} ACKs, ${KILLS} kills, ` +
        `${checked} leases acknowledged before a kill checked, 0 lost, 0 double bindings; ` +
        `first ACK after restart ${kills.map((k) => ((k.firstAckAfter - k.upAt) / 1000).toFixed(1)).join('/')} s`,
    );
  });
});
