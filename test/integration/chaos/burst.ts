/**
 * Shared set-up of the chaos tests: a segment of namespaces (test/helpers/netns.ts) served by `strata up`'s
 * boot worker, and a burst of real DHCP clients (busybox udhcpc in a loop, a fresh MAC after every lease)
 * whose every ACK is logged by the clients' own script, so a test can check what clients were told
 * against what the store kept.
 */
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNetns, currentNetns, type NetnsSet } from '../../helpers/netns.ts';
import type { Cleanup } from '../../helpers/services.ts';
import { type StrataOptions, type StrataServer, startStrata, tempDir } from '../../helpers/strata.ts';

export interface Ack {
  mac: string;
  ip: string;
  /** Client clock, ms, when the ACK was handled, and the lease it granted (s). */
  at: number;
  lease: number;
}

export interface Segment {
  set: NetnsSet;
  strata: StrataServer;
  /** Client namespaces by short name (`c0`, `c1`, …). */
  ns: Record<string, string>;
  /** `10.219.N` */
  prefix: string;
}

/**
 * A segment `10.219.N.0/24` (server .1) with `clients` member namespaces, and `strata up` serving it with
 * Network `seg` plus `extra` manifests; resolves once the boot worker is ready.
 */
export async function segmentWithStrata(
  t: Cleanup,
  opts: { net: number; clients: string[]; extra?: string; strata?: StrataOptions },
): Promise<Segment> {
  const set = createNetns(t);
  const ns = set.segment('seg', opts.clients);
  const bridgeNs = set.name('seg');
  const prefix = `10.219.${opts.net}`;
  set.addr(bridgeNs, 'br0', `${prefix}.1/24`);
  set.ip(bridgeNs, 'route', 'add', '255.255.255.255', 'dev', 'br0');
  const strata = await startStrata(t, {
    ...opts.strata,
    env: { STRATA_HOST_NETNS: currentNetns(), ...opts.strata?.env },
  });
  const r = await strata.cli(['apply', '-f', '-'], {
    stdin: `apiVersion: strata.dev/v1alpha1
kind: Network
metadata: {name: seg}
spec:
  interface: br0
  namespace: ${bridgeNs}
  subnet: ${prefix}.0/24
  serverAddress: ${prefix}.1
  pool: {start: ${prefix}.20, end: ${prefix}.250}
${opts.extra ?? ''}`,
  });
  assert.equal(r.code, 0, r.stderr);
  await strata.waitForOutput(/boot worker ready/, 20_000);
  return { set, strata, ns, prefix };
}

export interface Burst {
  /** Every ACK the clients saw so far. */
  acks(): Ack[];
  /** Ends the client loops (their last exchange finishes on its own). */
  stop(): Promise<void>;
}

/**
 * Starts udhcpc loops in the given client namespaces. Clients listed in `keepMac` keep their MAC (a node's
 * reserved one) and renew every 0.3 s; the others take a new MAC after each lease.
 */
export function startBurst(t: Cleanup, seg: Segment, keepMac: string[] = []): Burst {
  const dir = tempDir(t, 'strata-chaos-burst-');
  const log = join(dir, 'acks.log');
  writeFileSync(log, '');
  const script = join(dir, 'udhcpc.sh');
  writeFileSync(
    script,
    `#!/bin/sh
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
echo "$(cat /sys/class/net/$interface/address) $ip $lease $(date +%s%3N)" >> ${log}
`,
  );
  chmodSync(script, 0o755);
  for (const [i, name] of Object.keys(seg.ns).entries()) {
    const keep = keepMac.includes(name);
    const loop = `
n=0
while [ ! -e ${dir}/stop ]; do
  if [ ${keep ? 1 : 0} -eq 0 ]; then
    ip link set eth0 down
    ip link set eth0 address 02:c9:${i.toString(16).padStart(2, '0')}:00:$(printf '%02x:%02x' $((n / 256)) $((n % 256)))
    ip link set eth0 up
  fi
  if busybox udhcpc -i eth0 -n -q -f -s ${script} -t 2 -T 1 -A 1 >/dev/null 2>&1; then n=$((n + 1)); fi
  sleep ${keep ? 0.3 : 0.2}
done`;
    seg.set.spawn(seg.ns[name]!, 'sh', ['-c', loop], { stdio: 'ignore' });
  }
  return {
    acks: () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const [mac, ip, lease, at] = l.split(' ');
          return { mac: mac!, ip: ip!, lease: Number(lease), at: Number(at) };
        }),
    stop: async () => {
      writeFileSync(join(dir, 'stop'), '');
      await new Promise((r) => setTimeout(r, 2500));
    },
  };
}

/** Fails when one address was bound to two MACs with overlapping leases. */
export function assertNoDoubleBinding(acks: Ack[]): void {
  const byIp = new Map<string, Ack[]>();
  for (const a of acks) byIp.set(a.ip, [...(byIp.get(a.ip) ?? []), a]);
  for (const [ip, list] of byIp) {
    for (const a of list) {
      for (const b of list) {
        if (a.mac === b.mac) continue;
        const overlap = a.at <= b.at && b.at < a.at + a.lease * 1000;
        assert.ok(!overlap, `${ip} was bound to ${a.mac} at ${a.at} and to ${b.mac} at ${b.at}`);
      }
    }
  }
}

/** Fails unless every ACK is stored as a bound lease of the MAC it was given to (`stored`: key → value). */
export function assertAcksStored(acks: Ack[], stored: Map<string, { mac: string; state: string }>): number {
  const checked = new Set<string>();
  for (const a of acks) {
    const rec = stored.get(a.ip);
    assert.ok(rec, `the acknowledged lease of ${a.ip} to ${a.mac} is stored`);
    assert.equal(rec.mac, a.mac, `${a.ip} is stored for the client it was acknowledged to`);
    assert.equal(rec.state, 'bound', a.ip);
    checked.add(`${a.ip} ${a.mac}`);
  }
  return checked.size;
}
