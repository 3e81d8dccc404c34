/**
 * The store interface. SQLite (embedded default) and PostgreSQL (shared by several managers) implement it,
 * and one conformance suite runs against both. Resources keep spec and status in separate columns so that
 * a user's apply and a manager's status write never overwrite each other; both bump `resourceVersion`.
 */
import type { Resource, StrataEvent } from '../resources/types.ts';

export type WriteOp =
  | { op: 'create'; resource: Resource }
  /** Replaces metadata (labels, annotations, finalizers, deletionTimestamp) and spec; status is kept. */
  | { op: 'update'; resource: Resource; expectedVersion?: string }
  | { op: 'status'; kind: string; name: string; status: Record<string, unknown>; expectedVersion?: string }
  | { op: 'delete'; kind: string; name: string; expectedVersion?: string };

export interface WriteResult {
  op: WriteOp['op'];
  /** The resource as stored after the write (as it was, for a delete). */
  resource: Resource;
}

export interface ListOptions {
  /** Equality label selector. */
  labels?: Record<string, string>;
}

export interface EventQuery {
  kind: string;
  name: string;
  /** Only events with a larger id (for following). */
  afterId?: number;
  limit?: number;
}

export interface StoredRecord {
  key: string;
  value: unknown;
}

export interface Store {
  readonly driver: 'sqlite' | 'postgres';
  get(kind: string, name: string): Promise<Resource | undefined>;
  list(kind: string, opts?: ListOptions): Promise<Resource[]>;
  /**
   * Applies every op in one transaction: all succeed or none is written. Throws NotFound,
   * AlreadyExists or Conflict (StrataError) naming the first op that failed.
   */
  write(ops: WriteOp[]): Promise<WriteResult[]>;
  appendEvents(events: StrataEvent[]): Promise<void>;
  listEvents(q: EventQuery): Promise<StrataEvent[]>;
  /** Generic keyed records for layers (leases, secrets, work orders), written in batches. */
  putRecords(collection: string, records: StoredRecord[]): Promise<void>;
  deleteRecords(collection: string, keys: string[]): Promise<void>;
  getRecord(collection: string, key: string): Promise<unknown | undefined>;
  listRecords(collection: string): Promise<StoredRecord[]>;
  close(): Promise<void>;
}

/** Label selector match shared by the drivers. */
export function matchesLabels(r: Resource, want?: Record<string, string>): boolean {
  if (!want) return true;
  const have = r.metadata.labels ?? {};
  return Object.entries(want).every(([k, v]) => have[k] === v);
}
