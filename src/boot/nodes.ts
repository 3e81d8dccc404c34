/**
 * How the boot manager finds the node behind a packet or a request (by MAC, by address, by lease: one
 * indexed read each, never a scan of every Node) and records what unauthenticated traffic says about it
 * on the node's timeline, within a bound. Shared by the script decisions, the reports and the install
 * layer, which checks installer calls against the same leases.
 */
import type { NodeResource, NodeStatus } from '../core/kinds/node.ts';
import { networkOf } from '../core/kinds/placement.ts';
import type { ManagerContext } from '../core/layer.ts';
import { KeyedBucket } from '../core/limits.ts';
import { NODE_BY_ADDRESS, NODE_BY_MAC } from '../core/store/indexes.ts';
import { type Lease, leaseCollection } from './protocol.ts';

export { leaseCollection };

/** Source of the timeline rows the boot manager writes itself. */
export const SOURCE = 'boot-manager';

/**
 * Timeline rows that requests from the wire (no credential) can add, per node and reason: a burst of 10,
 * then one every 6 s. Refused ones are counted into the next row that passes.
 */
export const wireEvents = new KeyedBucket({ capacity: 10, perSecond: 1 / 6 });

/** Records a timeline event caused by an unauthenticated request, within `wireEvents`' bound. */
export function recordFromWire(ctx: ManagerContext, ev: Parameters<ManagerContext['hub']['record']>[0]) {
  const t = wireEvents.take(`${ev.kind}/${ev.name}/${ev.reason}`);
  if (!t.ok) return;
  ctx.hub.record(t.dropped ? { ...ev, message: `${ev.message} (${t.dropped} more like it suppressed)` } : ev);
}

/**
 * The addresses leased to a node on a network: its reservation and its bound, unexpired leases. What a
 * request claiming to be the node must come from (boot scripts) or report (the installed system).
 */
export async function leasedAddresses(
  ctx: ManagerContext,
  node: NodeResource,
  network: string,
): Promise<string[]> {
  const now = Date.now();
  const out = new Set<string>(node.spec.ipAddress ? [node.spec.ipAddress] : []);
  for (const r of await ctx.store.listRecords(leaseCollection(network))) {
    const l = r.value as Lease;
    if (l.state === 'bound' && l.expiresAt > now && node.spec.macAddresses.includes(l.mac)) out.add(l.ip);
  }
  return [...out];
}

/** Whether `ip` is `node`'s reservation or its bound, unexpired lease on `network`: one read. */
export async function leasedTo(
  ctx: ManagerContext,
  node: NodeResource,
  network: string,
  ip: string,
): Promise<boolean> {
  if (node.spec.ipAddress === ip) return true;
  const l = (await ctx.store.getRecord(leaseCollection(network), ip)) as Lease | undefined;
  return l?.state === 'bound' && l.expiresAt > Date.now() && node.spec.macAddresses.includes(l.mac);
}

/** Finds the node that owns a MAC: one indexed read of the store, whatever the number of nodes. */
export async function nodeByMac(ctx: ManagerContext, mac: string): Promise<NodeResource | undefined> {
  return (await ctx.resources.lookup<NodeResource>('Node', NODE_BY_MAC, mac))[0];
}

/** Finds the node behind an address: its reserved or reported address, else the MAC its lease names. */
export async function nodeByIp(
  ctx: ManagerContext,
  network: string,
  ip: string,
): Promise<NodeResource | undefined> {
  const [byAddr] = await ctx.resources.lookup<NodeResource>('Node', NODE_BY_ADDRESS, ip);
  if (byAddr) return byAddr;
  const lease = (await ctx.store.getRecord(leaseCollection(network), ip)) as Lease | undefined;
  return lease?.state === 'bound' ? nodeByMac(ctx, lease.mac) : undefined;
}

/** The network a node boots on (the core's one placement query). */
export const nodeNetwork = networkOf;

/** Writes a node's status through `fn` (undefined: nothing to write). */
export async function patchNodeStatus(
  ctx: ManagerContext,
  name: string,
  fn: (s: NodeStatus) => NodeStatus | undefined,
): Promise<void> {
  await ctx.resources.patchStatus<NodeStatus>('Node', name, fn);
}
