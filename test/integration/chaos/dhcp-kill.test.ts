/**
 * kill -9 of `strata up` during a burst of real DHCP clients. Busybox udhcpc runs in a loop in each of
 * several namespaces on one segment, taking a new MAC after every lease, while `strata up` (SQLite) is
 * killed and restarted. Every ACK a client saw is collected from the clients' own scripts, and afterwards
 * a user's checks hold: no address was bound to two MACs at once, every lease acknowledged before a kill
 * is in the store, the boot worker answers again after each restart, and a node's timeline shows the gap.
 */
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { before, describe, it } from 'node:test';
import { createNetns, currentNetns, type NetnsSet, netnsAvailable } from '../../helpers/netns.ts';
import { type StrataServer, startStrata, suiteCleanup, tempDir, waitFor } from '../../helpers/strata.ts';

const avail = netnsAvailable();
const CLIENTS = 10;
const KILLS = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Ack {
  mac: string;
  ip: string;
  /** Client clock, ms, when the ACK was handled, and the lease it granted (s). */
  at: number;
  lease: number;
}

describe('kill -9 of strata up during a DHCP burst', { skip: avail.ok ? false : avail.reason }, () => {
  const t = suiteCleanup();
  let set: NetnsSet;
  let strata: StrataServer;
  let dir: string;
  let log: string;
  let reservedMac = '';

  before(async () => {
    set = createNetns(t);
    dir = tempDir(t, 'strata-chaos-dhcp-');
    const names = Array.from({ length: CLIENTS }, (_, i) => `c${i}`);
    const seg = set.segment('seg', names);
    const bridgeNs = set.name('seg');
    set.addr(bridgeNs, 'br0', '10.219.9.1/24');
    set.ip(bridgeNs, 'route', 'add', '255.255.255.255', 'dev', 'br0');
    reservedMac = set.mac(seg.c0!, 'eth0');
    strata = await startStrata(t, { env: { STRATA_HOST_NETNS: currentNetns() } });
    const r = await strata.cli(['apply', '-f', '-'], {
      stdin: `
apiVersion: strata.dev/v1alpha1
kind: Network
metadata: {name: seg}
spec:
  interface: br0
  namespace: ${bridgeNs}
  subnet: 10.219.9.0/24
  serverAddress: 10.219.9.1
  pool: {start: 10.219.9.20, end: 10.219.9.250}
---
apiVersion: strata.dev/v1alpha1
kind: Node
metadata: {name: c0}
spec:
  macAddresses: ["${reservedMac}"]
  network: seg
  ipAddress: 10.219.9.10
  targetState: 1
  providers: {hardware: none}
`,
    });
    assert.equal(r.code, 0, r.stderr);
    await strata.waitForOutput(/boot worker ready/, 20_000);

    log = join(dir, 'acks.log');
    const script = join(dir, 'udhcpc.sh');
    writeFileSync(
      script,
      `#!/bin/sh
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
echo "$(cat /sys/class/net/$interface/address) $ip $lease $(date +%s%3N)" >> ${log}
`,
    );
    chmodSync(script, 0o755);
    // c0 keeps its MAC (the reserved node); the others take a fresh MAC after each lease.
    for (const [i, name] of names.entries()) {
      const loop = `
n=0
while [ ! -e ${dir}/stop ]; do
  if [ ${i} -gt 0 ]; then
    ip link set eth0 down
    ip link set eth0 address 02:c9:${i.toString(16).padStart(2, '0')}:00:$(printf '%02x:%02x' $((n / 256)) $((n % 256)))
    ip link set eth0 up
  fi
  if busybox udhcpc -i eth0 -n -q -f -s ${script} -t 2 -T 1 -A 1 >/dev/null 2>&1; then n=$((n + 1)); fi
  [ ${i} -eq 0 ] && sleep 0.3
done`;
      set.spawn(seg[name]!, 'sh', ['-c', loop], { stdio: 'ignore' });
    }
  });

  const acks = (): Ack[] =>
    readFileSync(log, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [mac, ip, lease, at] = l.split(' ');
        return { mac: mac!, ip: ip!, lease: Number(lease), at: Number(at) };
      });
  const safeAcks = () => {
    try {
      return acks();
    } catch {
      return [];
    }
  };

  it('loses no acknowledged lease, binds no address twice, serves again and shows the gap', async (tc) => {
    const kills: { at: number; ackedBefore: Ack[]; upAt: number; firstAckAfter: number }[] = [];
    for (let k = 0; k < KILLS; k++) {
      const base = safeAcks().length;
      await waitFor('ACKs in this server life', () => safeAcks().length >= base + 15, 30_000);
      await sleep(Math.random() * 1500);
      await strata.kill();
      const at = Date.now();
      const ackedBefore = safeAcks();
      await sleep(1000);
      await strata.start();
      const upAt = Date.now();
      const n = safeAcks().length;
      // The boot worker serves again: a client gets an ACK from the restarted instance.
      await waitFor('an ACK after the restart', () => safeAcks().length > n, 20_000).catch((e) => {
        throw new Error(
          `${(e as Error).message}\n${strata.stdout().slice(-3000)}${strata.stderr().slice(-3000)}`,
        );
      });
      kills.push({ at, ackedBefore, upAt, firstAckAfter: Date.now() });
    }
    await waitFor(
      'ACKs after the last restart',
      () => safeAcks().length >= kills.at(-1)!.ackedBefore.length + 15,
    );
    writeFileSync(join(dir, 'stop'), '');
    await sleep(2500);
    const all = acks();

    // No address bound to two MACs with overlapping leases.
    const byIp = new Map<string, Ack[]>();
    for (const a of all) byIp.set(a.ip, [...(byIp.get(a.ip) ?? []), a]);
    for (const [ip, list] of byIp) {
      const macs = new Set(list.map((a) => a.mac));
      if (macs.size === 1) continue;
      for (const a of list) {
        for (const b of list) {
          if (a.mac === b.mac) continue;
          const overlap = a.at <= b.at && b.at < a.at + a.lease * 1000;
          assert.ok(!overlap, `${ip} was bound to ${a.mac} at ${a.at} and to ${b.mac} at ${b.at}`);
        }
      }
    }

    // Every lease acknowledged before a kill is in the store (bound to that MAC).
    const db = new DatabaseSync(join(strata.dataDir, 'strata.db'), { readOnly: true });
    let stored: Map<string, { mac: string; state: string }>;
    try {
      stored = new Map(
        (
          db.prepare("SELECT key, value FROM records WHERE collection = 'dhcp.leases.seg'").all() as {
            key: string;
            value: string;
          }[]
        ).map((r) => [r.key, JSON.parse(r.value) as { mac: string; state: string }]),
      );
    } finally {
      db.close();
    }
    const checked = new Set<string>();
    for (const k of kills) {
      for (const a of k.ackedBefore) {
        const rec = stored.get(a.ip);
        assert.ok(rec, `the lease of ${a.ip} to ${a.mac} acknowledged before a kill is stored`);
        assert.equal(rec.mac, a.mac, `${a.ip} is stored for the client it was acknowledged to`);
        assert.equal(rec.state, 'bound', a.ip);
        checked.add(`${a.ip} ${a.mac}`);
      }
    }

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
        `${checked.size} leases acknowledged before a kill checked, 0 lost, 0 double bindings; ` +
        `first ACK after restart ${kills.map((k) => ((k.firstAckAfter - k.upAt) / 1000).toFixed(1)).join('/')} s`,
    );
  });
});
