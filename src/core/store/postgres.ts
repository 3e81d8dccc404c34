/**
 * PostgreSQL store, for several managers sharing one database (HA). Same semantics as the SQLite store
 * (the conformance suite runs against both); what differs is how concurrency is made safe:
 *
 * - Migrations run in one transaction under a transaction-scoped advisory lock, so managers starting at
 *   once apply each version exactly once and the others wait, then see it recorded.
 * - `write(ops)` is one READ COMMITTED transaction that locks every row it touches with
 *   `SELECT ... FOR UPDATE` before checking `expectedVersion` (a status write checks it in its UPDATE's
 *   WHERE, which locks the row the same way): a concurrent writer waits for the lock and then sees the
 *   committed version, so it gets Conflict instead of overwriting (no lost updates).
 *   Concurrent creates of one name meet at the primary key (`ON CONFLICT DO NOTHING`) → AlreadyExists.
 *   A deadlock between two multi-op writes is retried (a few times) as a whole transaction. Writes that
 *   queue up in one process while a transaction commits share the next one, each in a savepoint (group
 *   commit, see write).
 * - `resourceVersion` comes from the `resource_versions` sequence (unique, increasing; gaps after a
 *   rollback are harmless). Resource writes are serialised by an advisory lock taken first in the
 *   transaction and held until commit, so versions commit in increasing order and a version is a cursor:
 *   the change log written in the same transaction never gains a smaller version than one already seen,
 *   and a watch that resumes from a version misses nothing (etcd serialises writes the same way).
 * - Event appends are serialised (advisory lock until commit), so event ids *are* a cursor: following a
 *   timeline with `afterId` never skips an event.
 *
 * JSON lives in JSONB: objects round-trip by value but JSONB does not keep key order, so "did the spec
 * change" (generation bump) compares canonical JSON rather than text. Lists order by name with the "C"
 * collation so both drivers sort identically whatever the database's locale.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { alreadyExists, conflict, notFound, StrataError } from '../resources/errors.ts';
import type { Resource, StrataEvent } from '../resources/types.ts';
import { hasIndex, INDEX_VERSION, INDEXED_KINDS, indexEntries } from './indexes.ts';
import { POSTGRES_MIGRATIONS } from './migrations.ts';
import { rowToEvent } from './sqlite.ts';
import {
  CHANGE_LOG_KEEP,
  type Change,
  type ChangeQuery,
  type EventQuery,
  type JsonItem,
  type JsonList,
  type ListOptions,
  matchesLabels,
  rowJson,
  type Store,
  type StoredRecord,
  type TextRow,
  updatedMetadata,
  type VersionedList,
  type WriteOp,
  type WriteResult,
} from './types.ts';

/** Key of the advisory lock serialising migrations across processes ("strata" in ASCII). */
const MIGRATION_LOCK = 0x737472617461;
/** Key of the advisory lock that makes resource versions commit in order ("rvs"). */
const WRITE_LOCK = 0x727673;
/** Key of the advisory lock that makes event ids commit in order ("events"). */
const EVENTS_LOCK = 0x6576656e7473;
/** The server is not there (down, restarting, unreachable): SQLSTATE classes 08 and 57P0x, or the socket. */
const UNREACHABLE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended/i;

/**
 * An error the API answers with 503 naming the database, for an outage: the pool replaces broken
 * connections by itself, so the next request after the server is back succeeds with no restart of Strata.
 */
export function unreachable(e: unknown, where: string): unknown {
  if (e instanceof StrataError) return e;
  const code = String((e as { code?: unknown }).code ?? '');
  if (!code.startsWith('08') && !code.startsWith('57P0') && !UNREACHABLE.test(`${code} ${String(e)}`))
    return e;
  return new StrataError(
    503,
    'ServiceUnavailable',
    `the database ${where} is unreachable (${(e as Error).message || code}): nothing was written; Strata ` +
      'reconnects by itself, retry shortly',
  );
}

/**
 * BEGIN and a transaction-scoped advisory lock in one round trip (a simple query of two statements): a
 * write's turn costs one round trip, not two.
 */
const BEGIN_LOCKED = (key: number) => `BEGIN; SELECT pg_advisory_xact_lock(${key})`;

/** Deadlock / serialization failure: the transaction can simply be run again. */
const RETRYABLE = new Set(['40P01', '40001']);

/**
 * An error that is one write's own (a Conflict, NotFound or AlreadyExists; a value the server refused) and
 * leaves the transaction usable after a rollback to its savepoint; not a lost connection or a deadlock,
 * which end the whole group.
 */
function ownFailure(e: unknown): boolean {
  if (e instanceof StrataError) return e.status !== 503;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && !RETRYABLE.has(code) && unreachable(e, '') === e;
}

/**
 * The most writes in one group commit. Each runs in a savepoint, a subtransaction with an id of its own, and
 * a backend keeps up to 64 of those in shared memory (PGPROC_MAX_CACHED_SUBXIDS). Past that its snapshot
 * "overflows" and every other session's reads check row visibility through pg_subtrans. Uncapped, the
 * whole 10,000-Node list took 1.8× as long as before group commit (p50 of 3 rounds); capped at 64, the same.
 */
const GROUP_WRITES = 64;

type CreateOp = Extract<WriteOp, { op: 'create' }>;

/** A created object's metadata: its own, with a uid, generation 1 and a creation time. */
function createdMetadata(op: CreateOp): Resource['metadata'] {
  const { resourceVersion: _rv, ...meta } = op.resource.metadata;
  return {
    ...meta,
    uid: meta.uid ?? randomUUID(),
    generation: 1,
    creationTimestamp: meta.creationTimestamp ?? new Date().toISOString(),
  };
}

/** A write (or an event append) waiting for its group's commit. */
interface Pending<I, O> {
  input: I;
  /** When it was asked for, to tell whether a failure seen since concerns it (see #grouped). */
  since: number;
  resolve(out: O): void;
  reject(e: unknown): void;
}

interface Row {
  kind: string;
  name: string;
  api_version: string;
  meta: Record<string, unknown>;
  spec: Record<string, unknown>;
  status: Record<string, unknown> | null;
  rv: string;
}

function rowToResource(row: Row): Resource {
  const metadata = { ...row.meta, resourceVersion: String(row.rv) } as Resource['metadata'];
  const r: Resource = { apiVersion: row.api_version, kind: row.kind, metadata, spec: row.spec };
  if (row.status) r.status = row.status;
  return r;
}

/** rowToResource of a row whose JSON columns were read as text. */
function textRowToResource(row: TextRow & { name: string }): Resource {
  return rowToResource({
    ...row,
    rv: String(row.rv),
    meta: JSON.parse(row.meta),
    spec: JSON.parse(row.spec),
    status: row.status === null ? null : JSON.parse(row.status),
  });
}

/** A list reads at most this many rows per statement (an API page, 501 rows, in one). */
const LIST_PAGE = 1000;

/** The store's version: the largest logged change, or what compaction removed when the log is empty. */
const VERSION_SQL = `GREATEST((SELECT max(rv) FROM changes),
  (SELECT value FROM counters WHERE name = 'compacted'))::text`;

/** The columns a list reads to make objects (Row), and to give them as JSON text (TextRow). */
const ROW_COLUMNS = '*';
// A JSON null status is no status, as rowToResource has it.
const TEXT_COLUMNS = `kind, name, api_version, meta::text AS meta, spec::text AS spec,
  NULLIF(status, 'null'::jsonb)::text AS status, rv::text AS rv`;

/** A list's rows made into objects, those the label filter keeps. */
function rowToObject(opts: ListOptions | undefined): (row: Row) => Resource | undefined {
  return (row) => {
    const r = rowToResource(row);
    return matchesLabels(r, opts?.labels) ? r : undefined;
  };
}

/**
 * A statement of a write carries at most this many rows: the driver builds a statement's parameters (array
 * literals of every row's JSON) in one synchronous piece, and the change log of a 10,000-Node apply in one
 * statement held the event loop 320 ms (most of it garbage collection of those strings); 500 rows are
 * ~15 ms, and the loop runs between statements while the database works.
 */
const WRITE_ROWS = 500;

function* chunks<T>(xs: readonly T[]): Generator<T[]> {
  for (let i = 0; i < xs.length; i += WRITE_ROWS) yield xs.slice(i, i + WRITE_ROWS);
}

/** Runs each call after the previous one has settled, in call order (an in-process queue). */
function serially(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (fn) => {
    const run = tail.then(fn);
    tail = run.catch(() => {});
    return run;
  };
}

/** JSON with object keys sorted, for comparing values the way JSONB does. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

export interface PostgresStoreOptions {
  /** Connections in the pool. Default 10. */
  poolSize?: number;
  /** Changes the log keeps for resuming watches (default CHANGE_LOG_KEEP). */
  changeLogKeep?: number;
}

export class PostgresStore implements Store {
  readonly driver = 'postgres' as const;
  readonly #pool: pg.Pool;
  /** The server, for error messages (no password). */
  readonly #where: string;
  readonly #keep: number;
  /** Compaction runs when the version crosses a multiple of this. */
  readonly #every: number;
  #closed = false;
  /**
   * Writes (and event appends) of this process take their turn here before they take a connection. They
   * are serialised by an advisory lock anyway; waiting for it inside a transaction held a pooled
   * connection, so the ladder's writes (8 at once) took the pool and a list or a get waited behind them
   * (p99 ~200 ms). Queued here, at most one connection of each waits for the lock, the rest serve reads.
   */
  readonly #writes = serially();
  readonly #appends = serially();
  /** Writes and appends asked for while their queue was busy: the next turn commits each set as one. */
  readonly #pendingWrites: Pending<WriteOp[], WriteResult[]>[] = [];
  readonly #pendingAppends: Pending<StrataEvent[], void>[] = [];
  /** When a queued write last found the database unreachable, and the error it got. */
  #down: { at: number; error: StrataError } | undefined;

  private constructor(pool: pg.Pool, keep: number, where: string) {
    // Every query made on the pool itself (not in a transaction) reports an outage the same way as #tx.
    this.#pool = new Proxy(pool, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target);
        if (prop !== 'query' || typeof v !== 'function') return typeof v === 'function' ? v.bind(target) : v;
        return (...args: unknown[]) =>
          (v as (...a: unknown[]) => Promise<unknown>).apply(target, args).catch((e: unknown) => {
            throw unreachable(e, where);
          });
      },
    });
    this.#where = where;
    this.#keep = keep;
    this.#every = Math.max(1, Math.min(64, Math.floor(keep / 4)));
  }

  /** Connects and applies pending migrations. Rejects when the database is unreachable. */
  static async open(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: url,
      max: opts.poolSize ?? 10,
      application_name: 'strata',
      connectionTimeoutMillis: 10_000,
    });
    // An idle connection that breaks (server restart) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    const u = new URL(url);
    const store = new PostgresStore(pool, opts.changeLogKeep ?? CHANGE_LOG_KEEP, `${u.host}${u.pathname}`);
    try {
      await store.#migrate();
    } catch (e) {
      await pool.end().catch(() => {});
      throw e;
    }
    return store;
  }

  async #migrate(): Promise<void> {
    await this.#tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)',
      );
      const done = new Set(
        (await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map(
          (r) => r.version,
        ),
      );
      for (const m of POSTGRES_MIGRATIONS) {
        if (done.has(m.version)) continue;
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())', [m.version]);
      }
      // Index rows follow the code's INDEX_VERSION: rebuilt once, under the same lock, when it changed.
      const { rows } = await c.query<{ value: string }>(
        "SELECT value FROM counters WHERE name = 'index_version'",
      );
      if (Number(rows[0]!.value) === INDEX_VERSION) return;
      await c.query('DELETE FROM resource_index');
      for (const kind of INDEXED_KINDS) await this.#index(c, await this.#list(c, kind));
      await c.query("UPDATE counters SET value = $1 WHERE name = 'index_version'", [INDEX_VERSION]);
    });
  }

  /** Replaces the index rows of these objects (`deleted` ones get none), in the caller's transaction. */
  async #index(c: pg.PoolClient, objects: Resource[], deleted: Resource[] = []): Promise<void> {
    const all = [...objects, ...deleted].filter((r) => INDEXED_KINDS.includes(r.kind));
    for (const part of chunks(all))
      await c.query(
        'DELETE FROM resource_index WHERE (kind, name) IN (SELECT * FROM unnest($1::text[], $2::text[]))',
        [part.map((r) => r.kind), part.map((r) => r.metadata.name)],
      );
    const rows = objects.flatMap((r) =>
      indexEntries(r).map((e) => [r.kind, e.index, e.value, r.metadata.name] as const),
    );
    for (const part of chunks(rows))
      await c.query(
        `INSERT INTO resource_index (kind, idx, value, name)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING`,
        [0, 1, 2, 3].map((i) => part.map((row) => row[i])),
      );
  }

  /** Runs fn in a transaction on one pooled connection; retries the whole of it after a deadlock. */
  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.#pool.connect().catch((e: unknown) => {
        throw unreachable(e, this.#where);
      });
      let broken: Error | undefined;
      // A connection cut while checked out (server restart) emits 'error' on the client: unhandled, that
      // would end the process. The running query rejects on its own; the client is discarded on release.
      const onError = (e: Error) => {
        broken = e;
      };
      c.on('error', onError);
      try {
        await c.query(begin);
        const out = await fn(c);
        await c.query('COMMIT');
        return out;
      } catch (e) {
        try {
          await c.query('ROLLBACK');
        } catch (re) {
          broken = re as Error;
        }
        const code = (e as { code?: string }).code;
        if (!code || !RETRYABLE.has(code) || attempt >= 5) throw unreachable(e, this.#where);
      } finally {
        c.off('error', onError);
        c.release(broken);
      }
      await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 20));
    }
  }

  async get(kind: string, name: string): Promise<Resource | undefined> {
    const { rows } = await this.#pool.query<Row>('SELECT * FROM resources WHERE kind = $1 AND name = $2', [
      kind,
      name,
    ]);
    return rows[0] ? rowToResource(rows[0]) : undefined;
  }

  async #list(c: pg.Pool | pg.PoolClient, kind: string, opts?: ListOptions): Promise<Resource[]> {
    return (await this.#pages(c, ROW_COLUMNS, kind, opts, rowToObject(opts))).items;
  }

  /**
   * The rows of a list by name, read up to LIST_PAGE at a time (keyset on the name), each made into what `map`
   * makes of it (undefined: filtered out). A kind of 10,000 objects read in one query was turned into
   * objects in one go, holding the event loop ~100 ms; a page at a time gives it a turn between pages. On
   * the pool each page is its own statement (each object once, as committed at some moment of the list,
   * like SQLite's list); in a transaction they share its snapshot. `versioned`: the first statement also
   * reads the store's version, in its snapshot. `statements`: stop after this many (`whole` says whether
   * the list was read to its end or its limit).
   */
  async #pages<R extends { name: string }, T>(
    c: pg.Pool | pg.PoolClient,
    columns: string,
    kind: string,
    opts: ListOptions | undefined,
    map: (row: R) => T | undefined,
    how: { versioned?: boolean; statements?: number } = {},
  ): Promise<{ items: T[]; version?: string; whole: boolean }> {
    const labels = opts?.labels && Object.keys(opts.labels).length ? canonical(opts.labels) : null;
    const limit = opts?.limit ?? Number.POSITIVE_INFINITY;
    const out: T[] = [];
    let after = opts?.after ?? '';
    let version: string | undefined;
    for (let n = 0; out.length < limit; n++) {
      if (n === how.statements) return { items: out, ...(version ? { version } : {}), whole: false };
      const chunk = Math.min(LIST_PAGE, limit - out.length);
      // The columns are computed outside the sorted, limited read: inside it, `meta::text` and the like
      // were computed for every row the sort saw (all the kind's rows after `after`), not the page's.
      const page = `SELECT ${columns} FROM (SELECT * FROM resources WHERE kind = $1
           AND ($2::jsonb IS NULL OR COALESCE(meta->'labels', '{}'::jsonb) @> $2::jsonb)
           AND name COLLATE "C" > $3
         ORDER BY name COLLATE "C" LIMIT $4) AS page`;
      // The version in the same statement (one snapshot), on a row of its own when the page is empty.
      const sql =
        how.versioned && version === undefined
          ? `SELECT v.version, page.* FROM (SELECT ${VERSION_SQL} AS version) AS v
               LEFT JOIN LATERAL (${page}) AS page ON true ORDER BY page.name COLLATE "C"`
          : `${page} ORDER BY name COLLATE "C"`;
      const { rows: got } = await c.query<R & { version?: string }>(sql, [kind, labels, after, chunk]);
      if (how.versioned && version === undefined) version = got[0]!.version!;
      const rows = got.filter((row) => row.name !== null);
      for (const row of rows) {
        const r = map(row);
        if (r !== undefined) out.push(r);
      }
      if (rows.length < chunk) break;
      after = rows[rows.length - 1]!.name;
    }
    return { items: out, ...(version ? { version } : {}), whole: true };
  }

  /**
   * A list with the store's version, both from one snapshot (writes commit in version order, so the largest
   * logged version is the store's version at that snapshot). A list of one statement's rows (an API page,
   * 501) is that one statement on the pool, no transaction around it: one round trip where BEGIN, the
   * page, the version and COMMIT were four. A longer one runs in a REPEATABLE READ transaction.
   */
  async #versioned<R extends { name: string }, T>(
    columns: string,
    kind: string,
    opts: ListOptions | undefined,
    map: (row: R) => T | undefined,
  ): Promise<{ items: T[]; resourceVersion: string }> {
    const read = (c: pg.Pool | pg.PoolClient, statements?: number) =>
      this.#pages(c, columns, kind, opts, map, { versioned: true, ...(statements ? { statements } : {}) });
    if (opts?.limit !== undefined && opts.limit <= LIST_PAGE) {
      // Rows the label filter drops here after the database kept them would need a second statement.
      const one = await read(this.#pool, 1);
      if (one.whole) return { items: one.items, resourceVersion: one.version! };
    }
    const all = await this.#read((c) => read(c));
    return { items: all.items, resourceVersion: all.version! };
  }

  list(kind: string, opts?: ListOptions): Promise<Resource[]> {
    return this.#list(this.#pool, kind, opts);
  }

  async lookup(kind: string, index: string, value: string): Promise<Resource[]> {
    if (!hasIndex(kind, index))
      throw new Error(`no index ${index} on ${kind} (see src/core/store/indexes.ts)`);
    const { rows } = await this.#pool.query<Row>(
      `SELECT r.* FROM resource_index i JOIN resources r ON r.kind = i.kind AND r.name = i.name
       WHERE i.kind = $1 AND i.idx = $2 AND i.value = $3 ORDER BY r.name COLLATE "C"`,
      [kind, index, value],
    );
    return rows.map(rowToResource);
  }

  listVersioned(kind: string, opts?: ListOptions): Promise<VersionedList> {
    return this.#versioned(ROW_COLUMNS, kind, opts, rowToObject(opts));
  }

  listVersionedJson(kind: string, opts?: ListOptions): Promise<JsonList> {
    return this.#versioned<TextRow & { name: string }, JsonItem>(TEXT_COLUMNS, kind, opts, (row) =>
      !opts?.labels || matchesLabels({ metadata: JSON.parse(row.meta) } as Resource, opts.labels)
        ? { name: row.name, json: rowJson(row, () => textRowToResource(row)) }
        : undefined,
    );
  }

  version(): Promise<string> {
    return this.#read((c) => this.#version(c));
  }

  async #version(c: pg.PoolClient): Promise<string> {
    const { rows } = await c.query<{ v: string }>(`SELECT ${VERSION_SQL} AS v`);
    return rows[0]!.v;
  }

  async changes(q: ChangeQuery): Promise<Change[] | 'expired'> {
    return this.#read(async (c) => {
      const compacted = (
        await c.query<{ value: string }>("SELECT value FROM counters WHERE name = 'compacted'")
      ).rows[0]!.value;
      if (BigInt(q.afterRv) < BigInt(compacted)) return 'expired';
      const { rows } = await c.query<{ rv: string; type: Change['type']; object: Resource }>(
        `SELECT rv::text, type, object FROM changes WHERE rv > $1
           AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR name = $3)
         ORDER BY changes.rv LIMIT $4`,
        [q.afterRv, q.kind ?? null, q.name ?? null, q.limit ?? 1000],
      );
      return rows.map((r) => ({ rv: r.rv, type: r.type, object: r.object }));
    });
  }

  /** A read-only REPEATABLE READ transaction: every statement in it sees one snapshot. */
  #read<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#tx(fn, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  }

  /**
   * Group commit, as in the SQLite store: the writes that queued up while a transaction ran share the next
   * one, each in a savepoint of its own, so each is still all-or-nothing and fails alone (a Conflict rolls
   * back only its own ops). Every commit waits for a WAL flush and holds WRITE_LOCK while it does: one per
   * write capped the ladder's status writes at ~280 a second and kept reads waiting behind them. A write
   * that finds the queue idle commits at once, alone.
   */
  write(ops: WriteOp[]): Promise<WriteResult[]> {
    if (!ops.length) return Promise.resolve([]);
    return this.#grouped(
      this.#writes,
      this.#pendingWrites,
      ops,
      (batch) => this.#commitWrites(batch),
      GROUP_WRITES,
    );
  }

  async #commitWrites(batch: Pending<WriteOp[], WriteResult[]>[]): Promise<void> {
    const one = batch.length === 1;
    const outs = await this.#tx(async (c) => {
      const outs: (WriteResult[] | { error: unknown })[] = [];
      for (const w of batch) {
        if (!one) await c.query('SAVEPOINT w');
        try {
          const out = await this.#applyAll(c, w.input);
          if (!one) await c.query('RELEASE SAVEPOINT w');
          outs.push(out);
        } catch (e) {
          if (one || !ownFailure(e)) throw e;
          await c.query('ROLLBACK TO SAVEPOINT w; RELEASE SAVEPOINT w');
          outs.push({ error: e });
        }
      }
      await this.#logChanges(
        c,
        outs.flatMap((o) => (Array.isArray(o) ? o : [])),
      );
      return outs;
    }, BEGIN_LOCKED(WRITE_LOCK));
    for (const [i, w] of batch.entries()) {
      const out = outs[i]!;
      if (Array.isArray(out)) w.resolve(out);
      else w.reject(out.error);
    }
  }

  /** The change log, the index and (now and then) compaction for the writes of one transaction. */
  async #logChanges(c: pg.PoolClient, out: WriteResult[]): Promise<void> {
    if (!out.length) return;
    const type = (w: WriteResult) =>
      w.op === 'create' ? 'ADDED' : w.op === 'delete' ? 'DELETED' : 'MODIFIED';
    for (const part of chunks(out))
      await c.query(
        `INSERT INTO changes (rv, type, kind, name, object)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::jsonb[])`,
        [
          part.map((w) => w.resource.metadata.resourceVersion),
          part.map(type),
          part.map((w) => w.resource.kind),
          part.map((w) => w.resource.metadata.name),
          part.map((w) => JSON.stringify(w.resource)),
        ],
      );
    // The index follows each object's last state in this transaction.
    const byObject = new Map(out.map((w) => [`${w.resource.kind}/${w.resource.metadata.name}`, w]));
    const final = [...byObject.values()];
    await this.#index(
      c,
      final.filter((w) => w.op !== 'delete').map((w) => w.resource),
      final.filter((w) => w.op === 'delete').map((w) => w.resource),
    );
    const first = Number(out[0]!.resource.metadata.resourceVersion);
    const last = Number(out[out.length - 1]!.resource.metadata.resourceVersion);
    // Compact now and then (when the version crosses a multiple of #every), not on every write.
    if (Math.floor((first - 1) / this.#every) !== Math.floor(last / this.#every)) {
      await c.query('DELETE FROM changes WHERE rv <= $1', [last - this.#keep]);
      await c.query("UPDATE counters SET value = GREATEST(value, $1) WHERE name = 'compacted'", [
        last - this.#keep,
      ]);
    }
  }

  /**
   * The ops of one write, in order. Creates in a row (distinct objects) go in one INSERT per WRITE_ROWS
   * rather than one round trip each: an apply of 10,000 new Nodes is mostly that. A lone create takes the
   * same road (one round trip more for its version; creates are not the ladder's hot writes).
   */
  async #applyAll(c: pg.PoolClient, ops: WriteOp[]): Promise<WriteResult[]> {
    const out: WriteResult[] = [];
    for (let i = 0; i < ops.length; ) {
      const run: CreateOp[] = [];
      const seen = new Set<string>();
      for (let op = ops[i]; op?.op === 'create' && run.length < WRITE_ROWS; op = ops[i + run.length]) {
        const key = `${op.resource.kind}/${op.resource.metadata.name}`;
        if (seen.has(key)) break;
        seen.add(key);
        run.push(op);
      }
      if (run.length) {
        out.push(...(await this.#createMany(c, run)));
        i += run.length;
      } else out.push(await this.#apply(c, ops[i++] as Exclude<WriteOp, CreateOp>));
    }
    return out;
  }

  /** Creates of distinct objects in one statement, their versions taken first so they follow op order. */
  async #createMany(c: pg.PoolClient, ops: CreateOp[]): Promise<WriteResult[]> {
    const rvs = (
      await c.query<{ rv: string }>(
        "SELECT nextval('resource_versions')::text AS rv FROM generate_series(1, $1)",
        [ops.length],
      )
    ).rows.map((r) => r.rv);
    const col = <T>(f: (op: CreateOp) => T) => ops.map(f);
    const { rows } = await c.query<Row>(
      `INSERT INTO resources (kind, name, api_version, meta, spec, status, rv)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $6::jsonb[],
         $7::bigint[])
       ON CONFLICT (kind, name) DO NOTHING RETURNING *`,
      [
        col((op) => op.resource.kind),
        col((op) => op.resource.metadata.name),
        col((op) => op.resource.apiVersion),
        col((op) => JSON.stringify(createdMetadata(op))),
        col((op) => JSON.stringify(op.resource.spec)),
        col((op) => (op.resource.status ? JSON.stringify(op.resource.status) : null)),
        rvs,
      ],
    );
    const made = new Map(rows.map((r) => [`${r.kind}/${r.name}`, r]));
    return ops.map((op) => {
      const row = made.get(`${op.resource.kind}/${op.resource.metadata.name}`);
      if (!row) throw alreadyExists(op.resource.kind, op.resource.metadata.name);
      return { op: 'create', resource: rowToResource(row) };
    });
  }

  /** A status write, an update or a delete (creates go through #createMany). */
  async #apply(c: pg.PoolClient, op: Exclude<WriteOp, CreateOp>): Promise<WriteResult> {
    const kind = op.op === 'update' ? op.resource.kind : op.kind;
    const name = op.op === 'update' ? op.resource.metadata.name : op.name;
    if (op.op === 'status') {
      // One statement where a status write (the ladder's, many a second) read the row, then updated it.
      const { rows } = await c.query<Row>(
        `UPDATE resources SET status = $1::jsonb, rv = nextval('resource_versions')
         WHERE kind = $2 AND name = $3 AND ($4::text IS NULL OR rv::text = $4) RETURNING *`,
        [JSON.stringify(op.status), kind, name, op.expectedVersion ?? null],
      );
      if (rows[0]) return { op: op.op, resource: rowToResource(rows[0]) };
      const now = (
        await c.query<{ rv: string }>('SELECT rv::text FROM resources WHERE kind = $1 AND name = $2', [
          kind,
          name,
        ])
      ).rows[0];
      if (!now) throw notFound(kind, name);
      throw conflict(kind, name, op.expectedVersion!, now.rv);
    }
    const row = (
      await c.query<Row>('SELECT * FROM resources WHERE kind = $1 AND name = $2 FOR UPDATE', [kind, name])
    ).rows[0];
    if (!row) throw notFound(kind, name);
    if (op.expectedVersion !== undefined && op.expectedVersion !== String(row.rv)) {
      throw conflict(kind, name, op.expectedVersion, String(row.rv));
    }
    const current = rowToResource(row);
    if (op.op === 'delete') {
      const { rows } = await c.query<{ rv: string }>(
        `DELETE FROM resources WHERE kind = $1 AND name = $2 RETURNING nextval('resource_versions') AS rv`,
        [kind, name],
      );
      // A delete is a change of its own: it gets a version, so a watch can resume after it.
      return {
        op: op.op,
        resource: { ...current, metadata: { ...current.metadata, resourceVersion: String(rows[0]!.rv) } },
      };
    }
    const specChanged = canonical(op.resource.spec) !== canonical(row.spec);
    const metadata = updatedMetadata(op.resource.metadata, current.metadata, specChanged);
    const updated = (
      await c.query<Row>(
        `UPDATE resources SET meta = $1::jsonb, spec = $2::jsonb, rv = nextval('resource_versions')
         WHERE kind = $3 AND name = $4 RETURNING *`,
        [JSON.stringify(metadata), JSON.stringify(op.resource.spec), kind, name],
      )
    ).rows[0];
    return { op: op.op, resource: rowToResource(updated!) };
  }

  /** Appends queued up behind a commit are grouped too: one INSERT, one commit (see write). */
  async appendEvents(events: StrataEvent[]): Promise<void> {
    if (!events.length) return;
    await this.#grouped(this.#appends, this.#pendingAppends, events, (batch) => this.#commitAppends(batch));
  }

  async #commitAppends(batch: Pending<StrataEvent[], void>[]): Promise<void> {
    try {
      await this.#append(batch.flatMap((w) => w.input));
    } catch (e) {
      // One append's bad row (a NUL in its data, which JSONB refuses) must not lose the others: each again
      // on its own, so only that one fails.
      if (batch.length === 1 || !ownFailure(e)) throw e;
      for (const w of batch) await this.#append(w.input).then(w.resolve, w.reject);
      return;
    }
    for (const w of batch) w.resolve();
  }

  /**
   * Queues `input` on `queue`, grouped with whatever else is pending there when its turn comes; `commit`
   * answers each of the group. One queued behind a write that found the database unreachable fails with
   * it, as it would have had it waited for a connection itself, instead of each queued write waiting out
   * the connect timeout in turn (10 s each when the server's host does not answer). Writes queued after
   * that try again, so the store notices when the server is back.
   */
  #grouped<I, O>(
    queue: ReturnType<typeof serially>,
    pending: Pending<I, O>[],
    input: I,
    commit: (batch: Pending<I, O>[]) => Promise<void>,
    most = Number.POSITIVE_INFINITY,
  ): Promise<O> {
    // Queued while `pending` is not empty, so the next push knows its group is already on its way.
    const turn = async () => {
      const batch: Pending<I, O>[] = [];
      for (const w of pending.splice(0, most)) {
        if (this.#down && this.#down.at >= w.since) w.reject(this.#down.error);
        else batch.push(w);
      }
      if (pending.length) void queue(turn);
      if (!batch.length) return;
      try {
        await commit(batch);
      } catch (e) {
        if (e instanceof StrataError && e.status === 503) this.#down = { at: performance.now(), error: e };
        for (const w of batch) w.reject(e);
      }
    };
    return new Promise<O>((resolve, reject) => {
      pending.push({ input, since: performance.now(), resolve, reject });
      if (pending.length === 1) void queue(turn);
    });
  }

  /**
   * Appends are serialised until commit (the lock taken with BEGIN), so ids become visible in increasing
   * order and a reader following with `afterId` never skips an event committed late with a smaller id.
   */
  async #append(events: StrataEvent[]): Promise<void> {
    const ids = await this.#tx(async (c) => {
      // Take the ids first so each event gets its id back in order, then insert them in one statement.
      const ids = (
        await c.query<{ id: string }>(
          "SELECT nextval(pg_get_serial_sequence('events', 'id')) AS id FROM generate_series(1, $1)",
          [events.length],
        )
      ).rows.map((r) => Number(r.id));
      const numbered = events.map((e, i) => ({ e, id: ids[i]! }));
      for (const part of chunks(numbered)) {
        const col = <T>(f: (e: StrataEvent) => T) => part.map((n) => f(n.e));
        await c.query(
          `INSERT INTO events (id, time, kind, name, step, source, type, reason, message, data)
           SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[])`,
          [
            part.map((n) => n.id),
            col((e) => e.time),
            col((e) => e.kind),
            col((e) => e.name),
            col((e) => e.step ?? null),
            col((e) => e.source),
            col((e) => e.type),
            col((e) => e.reason),
            col((e) => e.message),
            col((e) => (e.data ? JSON.stringify(e.data) : null)),
          ],
        );
      }
      return ids;
    }, BEGIN_LOCKED(EVENTS_LOCK));
    events.forEach((e, i) => {
      e.id = ids[i]!;
    });
  }

  async listEvents(q: EventQuery): Promise<StrataEvent[]> {
    const { rows } = await this.#pool.query(
      'SELECT * FROM events WHERE kind = $1 AND name = $2 AND id > $3 ORDER BY id LIMIT $4',
      [q.kind, q.name, q.afterId ?? 0, q.limit ?? 10_000],
    );
    return rows.map((r: Record<string, unknown>) =>
      rowToEvent({ ...r, time: r.time instanceof Date ? r.time.toISOString() : r.time }),
    );
  }

  async putRecords(collection: string, records: StoredRecord[]): Promise<void> {
    if (!records.length) return;
    // Last write of a key in the batch wins, as with SQLite (one statement cannot touch a row twice).
    const byKey = new Map(records.map((r) => [r.key, JSON.stringify(r.value)]));
    await this.#pool.query(
      `INSERT INTO records (collection, key, value)
       SELECT $1, k, v::jsonb FROM unnest($2::text[], $3::text[]) AS t(k, v)
       ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value`,
      [collection, [...byKey.keys()], [...byKey.values()]],
    );
  }

  async deleteRecords(collection: string, keys: string[]): Promise<void> {
    if (!keys.length) return;
    await this.#pool.query('DELETE FROM records WHERE collection = $1 AND key = ANY($2::text[])', [
      collection,
      keys,
    ]);
  }

  async getRecord(collection: string, key: string): Promise<unknown | undefined> {
    const { rows } = await this.#pool.query<{ value: unknown }>(
      'SELECT value FROM records WHERE collection = $1 AND key = $2',
      [collection, key],
    );
    return rows[0] ? rows[0].value : undefined;
  }

  async listRecords(collection: string): Promise<StoredRecord[]> {
    const { rows } = await this.#pool.query<StoredRecord>(
      'SELECT key, value FROM records WHERE collection = $1 ORDER BY key COLLATE "C"',
      [collection],
    );
    return rows.map((r) => ({ key: r.key, value: r.value }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Writes already asked for are committed (or fail) before the connections go.
    await Promise.all([this.#writes(async () => {}), this.#appends(async () => {})]);
    await this.#pool.end();
  }
}
