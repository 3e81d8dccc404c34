/**
 * The store interface. SQLite (embedded default) and PostgreSQL (shared by several managers) implement it,
 * and one conformance suite runs against both. Resources keep spec and status in separate columns so that
 * a user's apply and a manager's status write never overwrite each other; both bump `resourceVersion`.
 * Every write also appends to a bounded change log in the same transaction, with versions increasing in
 * commit order, so `resourceVersion` is a cursor: a watch resumes from any version the log still holds.
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
  /** Only objects whose name sorts after this one (byte order): the cursor of a paged list. */
  after?: string;
  /** At most this many objects. */
  limit?: number;
}

/** A list read in one snapshot together with the store's resourceVersion at that moment. */
export interface VersionedList {
  items: Resource[];
  /** Every change with a larger version happened after this read: watch from here to miss nothing. */
  resourceVersion: string;
}

/** One object of a list as JSON text (`listVersionedJson`). */
export interface JsonItem {
  name: string;
  /** The object exactly as `listVersioned` gives it, serialised (the stored text, not parsed). */
  json: string;
}

/** `VersionedList` with the objects as JSON text: a page is sent without parsing and re-serialising it. */
export interface JsonList {
  items: JsonItem[];
  resourceVersion: string;
}

/** One committed write, as the change log keeps it for watches that resume. */
export interface Change {
  /** The version the write made (a delete makes one too); increasing in commit order. */
  rv: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** The object after the write; for a delete, as it was, with the delete's version. */
  object: Resource;
}

export interface ChangeQuery {
  /** Changes with a larger version than this. */
  afterRv: string;
  kind?: string;
  name?: string;
  limit?: number;
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
   * The objects of `kind` found under `value` in the secondary index `index` (indexes.ts), by name: one
   * indexed read, whatever the number of objects. Throws for an index that does not exist.
   */
  lookup(kind: string, index: string, value: string): Promise<Resource[]>;
  /** `list` plus the version it was read at, in one snapshot (the start of a list-then-watch). */
  listVersioned(kind: string, opts?: ListOptions): Promise<VersionedList>;
  /**
   * `listVersioned` with each object as its JSON text, built from the stored text without parsing it (the
   * API's list pages: parsing and re-serialising 500 Nodes was most of a page's work).
   */
  listVersionedJson(kind: string, opts?: ListOptions): Promise<JsonList>;
  /** The version of the latest committed change (where a watch of "from now on" starts). */
  version(): Promise<string>;
  /**
   * Committed changes after a version, oldest first. The log is bounded: when changes after `afterRv`
   * were already compacted away, answers `expired` and the caller must list again.
   */
  changes(q: ChangeQuery): Promise<Change[] | 'expired'>;
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

/** How many changes the log keeps for resuming watches; older ones answer `expired` (relist). */
export const CHANGE_LOG_KEEP = 20_000;

/** Label selector match shared by the drivers (own properties only: `__proto__` is just a key). */
export function matchesLabels(r: Resource, want?: Record<string, string>): boolean {
  if (!want) return true;
  const have = r.metadata.labels ?? {};
  return Object.entries(want).every(([k, v]) => Object.hasOwn(have, k) && have[k] === v);
}

/** A stored row of a resource with its JSON columns as text (both drivers can read them so). */
export interface TextRow {
  api_version: string;
  kind: string;
  meta: string;
  spec: string;
  status: string | null;
  rv: number | string;
}

/**
 * The JSON text of the object a driver makes of `row` (apiVersion, kind, metadata with resourceVersion
 * last, spec, status), spliced from the stored text instead of parsed and serialised again. `whole` makes
 * the object the slow way, for stored metadata that would already hold a resourceVersion (writes strip it).
 */
export function rowJson(row: TextRow, whole: () => Resource): string {
  if (row.meta.includes('"resourceVersion"')) return JSON.stringify(whole());
  const rv = `"resourceVersion":"${row.rv}"`;
  const metadata = /^\{\s*\}$/.test(row.meta)
    ? `{${rv}}`
    : `${row.meta.slice(0, row.meta.lastIndexOf('}'))},${rv}}`;
  const status = row.status ? `,"status":${row.status}` : '';
  return `{"apiVersion":${JSON.stringify(row.api_version)},"kind":${JSON.stringify(row.kind)},"metadata":${metadata},"spec":${row.spec}${status}}`;
}

/**
 * The metadata an update stores: the new one without its resourceVersion (the version column has it),
 * keeping the object's uid and creation time, the generation bumped when the spec changed.
 */
export function updatedMetadata(
  next: Resource['metadata'],
  current: Resource['metadata'],
  specChanged: boolean,
): Omit<Resource['metadata'], 'resourceVersion'> {
  const { resourceVersion: _rv, ...meta } = next;
  return {
    ...meta,
    uid: current.uid,
    creationTimestamp: current.creationTimestamp,
    generation: (current.generation ?? 1) + (specChanged ? 1 : 0),
  };
}
