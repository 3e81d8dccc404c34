/**
 * Overlay IPAM: which overlay address each member holds. The decision is a pure function
 * (`planAllocations`) over the Overlay's spec, the allocations held so far and the selected members, so
 * the rules are tested without a store: an address stays with its member for as long as it is a member;
 * the reserved address (the lighthouse's or the hub's) goes to its holder and no one else; a member that
 * leaves keeps its address, marked `leaving`, until its undo has run and `releaseAllocation` frees it, so
 * a node that still runs the old configuration never shares an address with a newcomer; and no address
 * is ever held by two active members (only the reserved one may still sit with a leaving former holder
 * while the new holder takes over its role). The store part keeps the result in the `overlay-ipam` records (so it survives
 * restarts) and serialises the read-decide-write per overlay in this process; one overlay manager owns it.
 */

import { intToIp, ipToInt, parseCidr } from '../core/resources/fields.ts';
import type { Store } from '../core/store/types.ts';
import type { OverlaySpec } from './kind.ts';
import { allocationKey, IPAM_COLLECTION, LIGHTHOUSE_MEMBER } from './protocol.ts';

export interface Allocation {
  node: string;
  address: string;
  state: 'active' | 'leaving';
  allocatedAt: string;
}

export interface AllocationPlan {
  /** Every allocation after the change, by node name order. */
  allocations: Allocation[];
  /** Members that got a new (or moved) address. */
  added: string[];
  /** Former members now marked leaving. */
  leaving: string[];
  /** Members left without an address, in words naming the field and the fix. */
  problems: string[];
}

/** First and last usable host address (network and broadcast excluded) of an overlay subnet. */
export function usableRange(subnet: string): { first: number; last: number; prefix: number } {
  const c = parseCidr(subnet);
  if (!c) throw new Error(`invalid overlay subnet "${subnet}": expected an IPv4 network like 10.77.0.0/24`);
  const mask = c.prefix === 0 ? 0 : (~0 << (32 - c.prefix)) >>> 0;
  const net = (ipToInt(c.network) & mask) >>> 0;
  const size = 2 ** (32 - c.prefix);
  return { first: net + 1, last: net + size - 2, prefix: c.prefix };
}

/** The node that holds the reserved address: the lighthouse (a member, or Strata's own), the hub, or Strata's own ZeroTier member. */
export function reservedHolder(spec: OverlaySpec): string | undefined {
  if (spec.provider === 'nebula') return spec.nebula?.lighthouse.node ?? LIGHTHOUSE_MEMBER;
  if (spec.provider === 'wireguard' && spec.wireguard?.topology === 'hub')
    return spec.wireguard.hub ?? LIGHTHOUSE_MEMBER;
  if (spec.provider === 'zerotier' && spec.zerotier?.strataMember) return LIGHTHOUSE_MEMBER;
  return undefined;
}

/** The reserved address: the lighthouse's configured address, else the subnet's first usable one. */
export function reservedAddress(spec: OverlaySpec): string | undefined {
  if (!reservedHolder(spec)) return undefined;
  return spec.nebula?.lighthouse.address ?? intToIp(usableRange(spec.subnet).first);
}

function inRange(address: string, r: { first: number; last: number }): boolean {
  const n = ipToInt(address);
  return n >= r.first && n <= r.last;
}

/**
 * Decides every member's address. `members` are the nodes selected now (for Nebula with Strata's own
 * lighthouse, the caller adds {@link LIGHTHOUSE_MEMBER}).
 */
export function planAllocations(
  spec: OverlaySpec,
  current: readonly Allocation[],
  members: readonly string[],
  now: Date = new Date(),
): AllocationPlan {
  const range = usableRange(spec.subnet);
  const holder = reservedHolder(spec);
  const reserved = reservedAddress(spec);
  const want = new Set(members);
  const byNode = new Map(current.map((a) => [a.node, a]));
  const taken = new Map<string, string>(); // address -> node
  const out = new Map<string, Allocation>();
  const added: string[] = [];
  const leaving: string[] = [];
  const problems: string[] = [];

  // Former members keep their addresses while leaving; nobody else may take them meanwhile.
  for (const a of current) {
    if (want.has(a.node)) continue;
    const next: Allocation = { ...a, state: 'leaving' };
    if (a.state !== 'leaving') leaving.push(a.node);
    out.set(a.node, next);
    if (a.address !== reserved || a.node === holder) taken.set(a.address, a.node);
  }
  // Members keep valid addresses: inside the subnet, not someone else's, reserved only for its holder.
  const ordered = [...want].sort((x, y) => (x === holder ? -1 : y === holder ? 1 : x.localeCompare(y)));
  const needs: string[] = [];
  for (const node of ordered) {
    const a = byNode.get(node);
    const valid =
      a &&
      inRange(a.address, range) &&
      (node === holder ? a.address === reserved : a.address !== reserved) &&
      !taken.has(a.address);
    if (valid) {
      out.set(node, { ...a, state: 'active' });
      taken.set(a.address, node);
    } else needs.push(node);
  }
  let cursor = range.first;
  for (const node of needs) {
    let address: string | undefined;
    if (node === holder && reserved) {
      // Only the holder role ever gets it: at most a leaving former holder still has it too.
      address = reserved;
    } else {
      while (cursor <= range.last && (taken.has(intToIp(cursor)) || intToIp(cursor) === reserved)) cursor++;
      if (cursor <= range.last) address = intToIp(cursor);
    }
    if (!address) {
      const usable = range.last - range.first + 1;
      problems.push(
        `spec.subnet: ${spec.subnet} has no free address left for node "${node}" (${usable} usable, ` +
          `${taken.size}${reserved && !taken.has(reserved) ? ' + 1 reserved' : ''} held): widen spec.subnet or select fewer nodes`,
      );
      continue;
    }
    taken.set(address, node);
    out.set(node, { node, address, state: 'active', allocatedAt: now.toISOString() });
    added.push(node);
  }
  return {
    allocations: [...out.values()].sort((x, y) => x.node.localeCompare(y.node)),
    added,
    leaving,
    problems,
  };
}

/** The allocations of one overlay, as kept in the store. */
export async function loadAllocations(store: Store, overlay: string): Promise<Allocation[]> {
  const prefix = `${overlay}/`;
  return (await store.listRecords(IPAM_COLLECTION))
    .filter((r) => r.key.startsWith(prefix))
    .map((r) => r.value as Allocation);
}

const locks = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier call for the same overlay has finished (read-decide-write stays whole). */
export function withOverlayLock<T>(overlay: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(overlay) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => {});
  locks.set(overlay, tail);
  void tail.then(() => {
    if (locks.get(overlay) === tail) locks.delete(overlay);
  });
  return run;
}

/** Plans against the stored allocations and writes the result. */
export function syncAllocations(
  store: Store,
  overlay: string,
  spec: OverlaySpec,
  members: readonly string[],
  now: Date = new Date(),
): Promise<AllocationPlan> {
  return withOverlayLock(`ipam/${overlay}`, async () => {
    const current = await loadAllocations(store, overlay);
    const plan = planAllocations(spec, current, members, now);
    const keep = new Set(plan.allocations.map((a) => a.node));
    const gone = current.filter((a) => !keep.has(a.node)).map((a) => allocationKey(overlay, a.node));
    const changed = plan.allocations.filter((a) => {
      const before = current.find((c) => c.node === a.node);
      return !before || before.address !== a.address || before.state !== a.state;
    });
    if (gone.length) await store.deleteRecords(IPAM_COLLECTION, gone);
    await store.putRecords(
      IPAM_COLLECTION,
      changed.map((a) => ({ key: allocationKey(overlay, a.node), value: a })),
    );
    return plan;
  });
}

/** Frees a member's address once it has left (its undo ran, or the node is gone for good). */
export function releaseAllocation(store: Store, overlay: string, node: string): Promise<void> {
  return withOverlayLock(`ipam/${overlay}`, () =>
    store.deleteRecords(IPAM_COLLECTION, [allocationKey(overlay, node)]),
  );
}
