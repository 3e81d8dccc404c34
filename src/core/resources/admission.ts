/**
 * Admission: checks that span resources (two nodes with one MAC, an address outside its network) or need
 * to know what the running platform implements (providers, the highest state with steps). Field checks
 * stay in each kind's schema; these run at create, replace, patch and apply, over the store as the write
 * would leave it, so a whole apply is refused with every problem named and nothing written. Kinds
 * register their checks next to their code, like `registerKind`; the core knows no layer.
 */
import type { FieldIssue } from './errors.ts';
import type { Resource } from './types.ts';

/** What the running platform implements. Unset members skip the checks that need them. */
export interface Limits {
  /** The highest state a node can be taken to: the ladder has steps for every state below it. */
  highestState?: () => number;
  /** The providers available for a layer (`hardware` → human, lab, none), or undefined when unknown. */
  providers?: (layer: string) => string[] | undefined;
}

/** Objects of a kind as the write would leave them (stored ones overlaid with the batch). */
export type View = (kind: string) => Promise<Resource[]>;

/**
 * The store as it is before the write: an object's stored version (to tell a change from a create, e.g.
 * a Cluster's spec.version being raised) and records (e.g. the registry's references).
 */
export interface Before {
  get(kind: string, name: string): Promise<Resource | undefined>;
  records(collection: string): Promise<{ key: string; value: unknown }[]>;
}

export type AdmissionCheck = (
  items: Resource[],
  view: View,
  limits: Limits,
  before: Before,
) => Promise<FieldIssue[]>;

/** Names of the objects that still use `target` (e.g. the nodes on a network). */
export type UsersOf = (target: Resource, list: View) => Promise<string[]>;

const checks = new Map<string, AdmissionCheck[]>();
const users = new Map<string, UsersOf>();

export function registerAdmission(kind: string, check: AdmissionCheck): void {
  checks.set(kind, [...(checks.get(kind) ?? []), check]);
}

export function registerUsers(kind: string, fn: UsersOf): void {
  users.set(kind, fn);
}

/** Runs the checks of every kind in the batch; returns every issue found. */
export async function admit(
  batch: Resource[],
  list: View,
  limits: Limits,
  before: Before = { get: async () => undefined, records: async () => [] },
): Promise<FieldIssue[]> {
  const cache = new Map<string, Promise<Resource[]>>();
  const view: View = (kind) => {
    let v = cache.get(kind);
    if (!v) {
      v = list(kind).then((stored) => {
        const mine = new Map(batch.filter((r) => r.kind === kind).map((r) => [r.metadata.name, r]));
        return [...stored.filter((r) => !mine.has(r.metadata.name)), ...mine.values()];
      });
      cache.set(kind, v);
    }
    return v;
  };
  const issues: FieldIssue[] = [];
  for (const [kind, items] of Map.groupBy(batch, (r) => r.kind)) {
    for (const check of checks.get(kind) ?? []) issues.push(...(await check(items, view, limits, before)));
  }
  return issues;
}

/** Who still uses `target`; empty when nothing does or its kind has no users. */
export function usersOf(target: Resource, list: View): Promise<string[]> {
  return users.get(target.kind)?.(target, list) ?? Promise.resolve([]);
}
