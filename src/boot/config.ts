/**
 * What each segment's worker is told: its Network's spec, the reservations, known MACs and DNS names of
 * the nodes that boot on it, and the HTTP paths it relays (`buildConfig`); and which segments exist
 * (`placements`). The fan-out runs on the core's `controller` (keyed queue, backoff, resync) with one key
 * per Network, so a change rebuilds only the networks it touches: a Node's change enqueues the network it
 * left and the one it joined, and only when a field the workers see changed (status writes, the bulk of
 * Node changes, enqueue nothing); lease writes enqueue their network at most once a second (DNS names
 * follow leases; a boot storm writes a batch every few milliseconds). A rebuilt
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

/**
 * A network's lease writes rebuild its configuration at most this often: DNS names follow leases within
 * a second, and a boot storm (a lease batch every few milliseconds) does not rebuild every node's entry
 * once per batch.
 */
export const LEASE_REBUILD_MS = 1000;

export async function buildConfig(ctx: ManagerContext, name: string): Promise<BootConfig> {
  const net = await ctx.resources.mustGet('Network', name);
  const networks = await ctx.resources.list<NetworkResource>('Network');
  const nodes = (await ctx.resources.list<NodeResource>('Node')).filter(
    (n) => nodeNetwork(n, networks)?.metadata.name === name,
  );
  // Each MAC's first bound lease, with its place in the list: one pass over the leases, not one per node
  // (thousands of each in a boot storm made this the manager's busiest work).
  const leased = new Map<string, { ip: string; at: number }>();
  for (const [at, r] of (await ctx.store.listRecords(leaseCollection(name))).entries()) {
    const l = r.value as Lease;
    if (l.state === 'bound' && !leased.has(l.mac)) leased.set(l.mac, { ip: l.ip, at });
  }
  const hosts = new Map<string, string>();
  for (const n of nodes) {
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
  /** Leases of `network` were written: its DNS names may have changed. */
  leasesChanged(network: string): void;
  stop(): void;
}

/** Publishes placements and per-network configurations as they change (see the module comment). */
export async function startConfigFanOut(
  ctx: ManagerContext,
  o: { leaseRebuildMs?: number } = {},
): Promise<ConfigFanOut> {
  const sent = new Map<string, { json: string; at: number }>();
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
      const cfg = await buildConfig(ctx, name);
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
  const seen = new Map<string, { network: string | undefined; fields: string }>();
  for (const n of await ctx.resources.list<NodeResource>('Node'))
    seen.set(n.metadata.name, { network: n.spec.network, fields: configFields(n) });
  const off = ctx.hub.onChange((ev) => {
    // A new or changed Network can move the nodes that name none (they boot on the only Network).
    if (ev.object.kind === 'Network') return enqueueAll();
    if (ev.object.kind !== 'Node') return;
    const n = ev.object as unknown as NodeResource;
    const before = seen.get(n.metadata.name);
    if (ev.type === 'DELETED') seen.delete(n.metadata.name);
    else {
      const fields = configFields(n);
      if (before?.fields === fields) return; // a status write or a field no worker sees
      seen.set(n.metadata.name, { network: n.spec.network, fields });
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
  /** Per network, the rebuild its lease writes asked for, due at most LEASE_REBUILD_MS after the first. */
  const leaseRebuilds = new Map<string, NodeJS.Timeout>();
  return {
    leasesChanged(network) {
      if (leaseRebuilds.has(network)) return;
      const t = setTimeout(() => {
        leaseRebuilds.delete(network);
        loop.enqueue(network);
      }, o.leaseRebuildMs ?? LEASE_REBUILD_MS);
      leaseRebuilds.set(network, t);
    },
    stop() {
      off();
      for (const t of leaseRebuilds.values()) clearTimeout(t);
      loop.stop();
    },
  };
}
