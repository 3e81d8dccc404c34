/**
 * Secondary indexes the stores keep on resources, so a lookup by a field is one indexed read instead of
 * listing every object of a kind: the boot manager finds the Node behind a MAC or an address on every
 * DHCP exchange, TFTP transfer and script fetch, and at 10,000 Nodes a scan per packet made a DHCP ACK's
 * report take seconds. Both drivers keep the index rows in a `resource_index` table written in the same
 * transaction as the resource, so a lookup never sees an object without its index or the reverse.
 *
 * The keys are computed here, in one place, from the stored object. Changing what an index holds means
 * bumping `INDEX_VERSION`: a store opened by the new code rebuilds every index row once.
 */
import type { Resource } from '../resources/types.ts';

/** Bump when an index's keys change: stores rebuild their index rows on open. */
export const INDEX_VERSION = 1;

type Keys = (r: Resource) => (string | undefined)[];

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const strs = (v: unknown) => (Array.isArray(v) ? v.map(str) : []);

/** Node index: `spec.macAddresses` (stored lower-case with colons). */
export const NODE_BY_MAC = 'mac';
/** Node index: `spec.ipAddress` and the addresses in `status.addresses`. */
export const NODE_BY_ADDRESS = 'address';

/** Per kind, per index name: the keys an object is found under. */
export const RESOURCE_INDEXES: Readonly<Record<string, Readonly<Record<string, Keys>>>> = {
  Node: {
    [NODE_BY_MAC]: (r) => strs(r.spec.macAddresses),
    [NODE_BY_ADDRESS]: (r) => [str(r.spec.ipAddress), ...strs(r.status?.addresses)],
  },
};

/** Whether `kind` has an index named `index`. */
export function hasIndex(kind: string, index: string): boolean {
  return Object.hasOwn(RESOURCE_INDEXES, kind) && Object.hasOwn(RESOURCE_INDEXES[kind]!, index);
}

/** The index rows of one object: each distinct (index, value) pair. */
export function indexEntries(r: Resource): { index: string; value: string }[] {
  const defs = Object.hasOwn(RESOURCE_INDEXES, r.kind) ? RESOURCE_INDEXES[r.kind]! : {};
  const out: { index: string; value: string }[] = [];
  for (const [index, keys] of Object.entries(defs)) {
    for (const value of new Set(keys(r))) if (value) out.push({ index, value });
  }
  return out;
}

/** The kinds with indexes (what a rebuild reads). */
export const INDEXED_KINDS: readonly string[] = Object.keys(RESOURCE_INDEXES);
