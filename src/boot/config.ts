/**
 * What each segment's worker is told: its Network's spec, the reservations, known MACs and DNS names of
 * the nodes that boot on it, and the HTTP paths it relays (`buildConfig`); and which segments exist
 * (`placements`). The fan-out runs on the core's `controller` (keyed queue, backoff, resync) with one key
 * per Network, so a change rebuilds only the networks it touches: a Node's change enqueues the network it
 * left and the one it joined, and only when a field the workers see changed (status writes, the bulk of
 * Node changes, enqueue nothing); a lease write of a Node's MAC enqueues its network (DNS names follow leases;
 * the leases of machines no Node names, and every lease of a network that runs no DNS server, change
 * nothing a worker holds). A rebuilt
 * configuration is published only when it differs from the last one sent, or that one is old (a worker
 * that missed a message catches up at the next resync); a store outage retries with backoff.
 */
import type { NetworkResource } from '../core/kinds/network.ts';
import type { NodeResource } from '../core/kinds/node.ts';
import { controller } from '../core/ladder/controller.ts';
import type { ManagerContext } from '../core/layer.ts';
import { bootRelays } from './handoff.ts';
import { leaseCollection, nodeNetwork } from './nodes.ts';
import { type BootConfig, type Lease, type NetworkPlacement, subjects } from './protocol.ts';

/** Every Network's configuration is rebuilt this often, and re-sent when the last send is older than half. */
export const CONFIG_RESYNC_MS = 60_000;

export async function buildConfig(ctx: ManagerContext, name: string): Promise<BootConfig> {
  const net = await ctx.resources.mustGet('Network', name);
  const networks = await ctx.resources.list<NetworkResource>('Network');
  const nodes = (await ctx.resources.list<NodeResource>('Node')).filter(
    (n) => nodeNetwork(n, networks)?.metadata.name === name,
  );
  // Each MAC's first bound lease, with its place in the list: one pass over the leases, not one per node
  // (thousands of each in a boot storm made this the manager's busiest work); none when every node has a
  // fixed address.
  const leased = new Map<string, { ip: string; at: number }>();
  // Host names feed the segment's DNS server only: a network that runs none needs no lease read.
  const dns = dnsEnabled(net as NetworkResource);
  if (dns && nodes.some((n) => !n.spec.ipAddress))
    for (const [at, r] of (await ctx.store.listRecords(leaseCollection(name))).entries()) {
      const l = r.value as Lease;
      if (l.state === 'bound' && !leased.has(l.mac)) leased.set(l.mac, { ip: l.ip, at });
    }
  const hosts = new Map<string, string>();
  for (const n of dns ? nodes : []) {
    let first: { ip: string; at: number } | undefined;
    for (const mac of n.spec.macAddresses) {
      const l = leased.get(mac);
      if (l && (!first || l.at < first.at)) first = l;
    }
    const ip = n.spec.ipAddress ?? first?.ip;
    if (ip) hosts.set(n.metadata.name, ip);
  }
  return {
    network: name,
    spec: net.spec as BootConfig['spec'],
    reservations: nodes.flatMap((n) =>
      n.spec.ipAddress
        ? n.spec.macAddresses.map((mac) => ({
            mac,
            ip: n.spec.ipAddress!,
            hostname: n.spec.hostname ?? n.metadata.name,
          }))
        : [],
    ),
    knownMacs: nodes.flatMap((n) => n.spec.macAddresses),
    hosts: [...hosts].map(([name, ipv4]) => ({ name, ipv4 })),
    relays: bootRelays(ctx.layers),
  };
}

/** Whether a Network runs its DNS server. */
function dnsEnabled(n: NetworkResource): boolean {
  return n.spec.dns.enabled;
}

/** Which segments exist and where their workers run. */
export async function placements(ctx: ManagerContext): Promise<NetworkPlacement[]> {
  return (await ctx.resources.list<NetworkResource>('Network')).map((n) => ({
    name: n.metadata.name,
    ...(n.spec.namespace ? { namespace: n.spec.namespace } : {}),
    generation: n.metadata.generation ?? 1,
  }));
}

/** The fields of a Node that its network's BootConfig holds (`buildConfig`): what makes a rebuild. */
export function configFields(n: NodeResource): string {
  const s = n.spec;
  return JSON.stringify([s.network ?? null, s.macAddresses, s.ipAddress ?? null, s.hostname ?? null]);
}

export interface ConfigFanOut {
  /**
   * Leases of `network` were written: its DNS names change only if one of them is a Node's MAC. A lease of
   * a machine no Node names (most of a busy segment's) rebuilds nothing: a rebuild reads every lease.
   */
  leasesChanged(network: string, macs: readonly string[]): void;
  stop(): void;
}

/**
 * Lease writes of one network within this long make one rebuild: in a boot storm every batch of leases
 * names Nodes, and a rebuild reads every Node and lease of the network, so DNS names lag a lease by up
 * to this much instead of the manager rebuilding back to back. The window grows with what a rebuild
 * costs (LEASE_REBUILD_SHARE), so a segment of thousands of Nodes spends at most a twentieth of the
 * manager's time on it: 250 ms up to ~12 ms a rebuild, longer above.
 */
export const LEASE_COALESCE_MS = 250;
/** Lease rebuilds may take at most this share of the manager's time (the window is the rebuild × 1/share). */
const LEASE_REBUILD_SHARE = 0.05;
/** The longest the window grows to: DNS names never lag a lease by more. */
const LEASE_COALESCE_MAX_MS = 5_000;

/** Publishes placements and per-network configurations as they change (see the module comment). */
export async function startConfigFanOut(
  ctx: ManagerContext,
  opts: { leaseCoalesceMs?: number } = {},
): Promise<ConfigFanOut> {
  const sent = new Map<string, { json: string; at: number }>();
  /** What the latest rebuild took: the lease window grows with it. */
  let rebuildMs = 0;
  /** Networks that run no DNS server: their leases change nothing a worker holds. */
  const dnsOff = new Set<string>();
  const noteNetwork = (n: NetworkResource, deleted = false) => {
    if (!deleted && !dnsEnabled(n)) dnsOff.add(n.metadata.name);
    else dnsOff.delete(n.metadata.name);
  };
  for (const n of await ctx.resources.list<NetworkResource>('Network')) noteNetwork(n);
  let sentPlacements: string | undefined;
  const loop = controller(ctx, {
    kind: 'Network',
    resyncMs: CONFIG_RESYNC_MS,
    async reconcile(name) {
      const list = await placements(ctx);
      const pj = JSON.stringify(list);
      if (pj !== sentPlacements) {
        await ctx.transport.publish(subjects.networksChanged, list);
        sentPlacements = pj;
      }
      if (!list.some((p) => p.name === name)) {
        sent.delete(name);
        return;
      }
      const t0 = performance.now();
      const cfg = await buildConfig(ctx, name);
      rebuildMs = performance.now() - t0;
      const json = JSON.stringify(cfg);
      const last = sent.get(name);
      if (last?.json === json && Date.now() - last.at < CONFIG_RESYNC_MS / 2) return;
      await ctx.transport.publish(subjects.configChanged(name), cfg);
      sent.set(name, { json, at: Date.now() });
    },
  });
  const enqueueAll = () =>
    void ctx.resources
      .list('Network')
      .then((nets) => {
        for (const n of nets) loop.enqueue(n.metadata.name);
      })
      .catch((err) => ctx.log.warn('boot workers not told of a change', { err }));
  /** Per node: the network it names (undefined: the only one) and its config fields, as last seen. */
  const seen = new Map<string, { network: string | undefined; fields: string; macs: string[] }>();
  /** How many Nodes name each MAC: the leases that can change a DNS name. */
  const nodeMacs = new Map<string, number>();
  const countMacs = (macs: readonly string[], by: 1 | -1) => {
    for (const m of macs) {
      const c = (nodeMacs.get(m) ?? 0) + by;
      if (c > 0) nodeMacs.set(m, c);
      else nodeMacs.delete(m);
    }
  };
  const remember = (n: NodeResource, fields: string) => {
    const before = seen.get(n.metadata.name);
    if (before) countMacs(before.macs, -1);
    const macs = [...n.spec.macAddresses];
    countMacs(macs, 1);
    seen.set(n.metadata.name, { network: n.spec.network, fields, macs });
  };
  for (const n of await ctx.resources.list<NodeResource>('Node')) remember(n, configFields(n));
  const off = ctx.hub.onChange((ev) => {
    // A new or changed Network can move the nodes that name none (they boot on the only Network).
    if (ev.object.kind === 'Network') {
      noteNetwork(ev.object as unknown as NetworkResource, ev.type === 'DELETED');
      return enqueueAll();
    }
    if (ev.object.kind !== 'Node') return;
    const n = ev.object as unknown as NodeResource;
    const before = seen.get(n.metadata.name);
    if (ev.type === 'DELETED') {
      if (before) countMacs(before.macs, -1);
      seen.delete(n.metadata.name);
    } else {
      const fields = configFields(n);
      if (before?.fields === fields) return; // a status write or a field no worker sees
      remember(n, fields);
    }
    // The network it left and the one it joins; one that names none may be on the only Network.
    const affected =
      ev.type === 'DELETED'
        ? [before?.network ?? n.spec.network]
        : before
          ? [before.network, n.spec.network]
          : [n.spec.network];
    if (affected.includes(undefined)) return enqueueAll();
    for (const name of new Set(affected)) loop.enqueue(name!);
  });
  await loop.start();
  /** Networks whose Nodes' leases changed since the last coalesced rebuild. */
  const leased = new Set<string>();
  let leaseTimer: NodeJS.Timeout | undefined;
  return {
    leasesChanged: (network, macs) => {
      if (dnsOff.has(network) || !macs.some((m) => nodeMacs.has(m))) return;
      leased.add(network);
      const window = Math.max(
        opts.leaseCoalesceMs ?? LEASE_COALESCE_MS,
        Math.min(LEASE_COALESCE_MAX_MS, rebuildMs / LEASE_REBUILD_SHARE),
      );
      leaseTimer ??= setTimeout(() => {
        leaseTimer = undefined;
        for (const n of leased) loop.enqueue(n);
        leased.clear();
      }, window).unref();
    },
    stop() {
      clearTimeout(leaseTimer);
      off();
      loop.stop();
    },
  };
}
