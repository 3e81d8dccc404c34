/**
 * SQLite store on node:sqlite (no native addon to rebuild). WAL with synchronous=NORMAL: a commit is in
 * the WAL file (the kernel's page cache) before the call returns, so `kill -9` of the process at any moment
 * loses nothing acknowledged; the WAL is fsynced at each checkpoint (about every second, by a checkpointer
 * thread, checkpointer.ts, so its fsyncs never hold the event loop), not per commit. What a power cut or kernel crash can lose is the transactions committed since the last
 * checkpoint (the database stays consistent: they roll back whole, never half-written); a lease handed out
 * in that window may be handed out again after the restart, as with Kea's memfile. FULL cost an fsync per
 * commit (~2 ms here against 0.06 ms, on the one event loop that answers the API; BENCHMARKS.md). Each
 * `write()` is all-or-nothing (a savepoint in a group commit, see write), so nothing is left half-written.
 * Callers batch hot writes (leases, events).
 *
 * node:sqlite is synchronous, so a long operation (an apply of 10,000 Nodes, a list of all of them) would
 * hold the event loop that also answers the API for hundreds of milliseconds. Such work runs in slices of
 * a few milliseconds instead, giving the loop a turn between them, while it keeps the connection to
 * itself: every other operation waits for it to end, so a transaction held across those turns sees
 * nothing of theirs and they see nothing of it until it commits. Short operations, the common case, still
 * run at once, without a turn of the loop.
 *
 * The database holds secrets (sealed, see sealed.ts, but still): it and its -wal/-shm files are 0600
 * whatever the umask or the directory (SQLite gives the -wal and -shm files the database file's mode), and
 * deleted content is overwritten (secure_delete) and checkpointed out of the WAL.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { alreadyExists, conflict, notFound, StrataError } from '../resources/errors.ts';
import type { Resource, StrataEvent } from '../resources/types.ts';
import { nextTurn, TURN_MS, takeTurn } from '../turns.ts';
import { hasIndex, INDEX_VERSION, INDEXED_KINDS, indexEntries } from './indexes.ts';
import { SQLITE_MIGRATIONS } from './migrations.ts';
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
  updatedMetadata,
  type VersionedList,
  type WriteOp,
  type WriteResult,
} from './types.ts';

interface Row {
  kind: string;
  name: string;
  api_version: string;
  meta: string;
  spec: string;
  status: string | null;
  rv: number;
}

export function rowToResource(row: Row): Resource {
  const metadata = JSON.parse(row.meta);
  metadata.resourceVersion = String(row.rv);
  const r: Resource = { apiVersion: row.api_version, kind: row.kind, metadata, spec: JSON.parse(row.spec) };
  if (row.status) r.status = JSON.parse(row.status);
  return r;
}

/** A long operation gives the event loop a turn after this much work (ms). */
const SLICE_MS = TURN_MS;

/**
 * What a sliced operation holds, shared by every store of one process on one database file: another
 * connection of the same process that tried to write meanwhile would wait for SQLite's lock in
 * busy_timeout, a sleep that blocks the very event loop the holder needs to finish (a deadlock until the
 * timeout). Other processes wait for the lock as usual.
 */
interface Gate {
  busy?: Promise<void> | undefined;
}
const gates = new Map<string, Gate>();

/** Runs slice-able work to its end at once (start-up, where nothing else waits). */
function drain<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * Turns SQLite's automatic checkpoint off on `db` and starts the thread that checkpoints instead. If the
 * thread cannot start, the automatic one stays on (correct, only slower on a busy disk).
 */
function startCheckpointer(path: string, db: DatabaseSync): Checkpointer | undefined {
  let worker: Worker;
  try {
    worker = new Worker(new URL('./checkpointer.ts', import.meta.url), { workerData: { path } });
  } catch {
    return undefined;
  }
  db.exec('PRAGMA wal_autocheckpoint=0');
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', () => {
      // Should it end early, the automatic checkpoint comes back, so the WAL never grows without bound.
      if (db.isOpen) db.exec('PRAGMA wal_autocheckpoint=1000');
      resolve();
    }),
  );
  worker.once('error', () => {}); // it exits after an error; 'exit' above handles both
  worker.unref();
  return { worker, exited };
}

/** A write waiting for its group's commit. */
interface PendingWrite {
  ops: WriteOp[];
  resolve(out: WriteResult[]): void;
  reject(e: unknown): void;
}

interface Checkpointer {
  worker: Worker;
  exited: Promise<void>;
}

/** `fn` as work of a single step. */
// biome-ignore lint/correctness/useYield: a step that never gives a turn, for the same transaction code
function* oneStep<T>(fn: () => T): Generator<void, T> {
  return fn();
}

export class SqliteStore implements Store {
  readonly driver = 'sqlite' as const;
  readonly #db: DatabaseSync;
  readonly #path: string;
  readonly #stmts: Record<string, StatementSync>;
  readonly #keep: number;
  /** Compaction runs when the version crosses a multiple of this. */
  readonly #every: number;
  /** Set while a sliced operation holds the database across turns of the event loop (see #sliced). */
  readonly #gate: Gate;
  #checkpointer: Checkpointer | undefined;
  /** Writes asked for in this turn of the loop, committed together at its end (see write). */
  readonly #pending: PendingWrite[] = [];
  /** Groups scheduled or committing, each settled once its writes are answered. */
  readonly #groups = new Set<Promise<void>>();

  constructor(path: string, opts: { changeLogKeep?: number } = {}) {
    this.#path = path;
    this.#keep = opts.changeLogKeep ?? CHANGE_LOG_KEEP;
    this.#every = Math.max(1, Math.min(64, Math.floor(this.#keep / 4)));
    if (path !== ':memory:') {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      closeSync(openSync(path, 'a', 0o600));
      for (const f of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`])
        if (existsSync(f)) chmodSync(f, 0o600);
    }
    this.#db = new DatabaseSync(path);
    const key = path === ':memory:' ? undefined : resolve(path);
    this.#gate = key ? (gates.get(key) ?? gates.set(key, {}).get(key)!) : {};
    this.#db.exec(
      'PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;',
    );
    this.#migrate();
    if (path !== ':memory:') this.#checkpointer = startCheckpointer(path, this.#db);
    const p = (sql: string) => this.#db.prepare(sql);
    this.#stmts = {
      get: p('SELECT * FROM resources WHERE kind = ? AND name = ?'),
      list: p('SELECT * FROM resources WHERE kind = ? AND name > ? ORDER BY name LIMIT ?'),
      rv: p("SELECT value FROM counters WHERE name = 'rv'"),
      compacted: p("SELECT value FROM counters WHERE name = 'compacted'"),
      compact: p("UPDATE counters SET value = max(value, ?) WHERE name = 'compacted'"),
      prune: p('DELETE FROM changes WHERE rv <= ?'),
      change: p('INSERT INTO changes (rv, type, kind, name, object) VALUES (?, ?, ?, ?, ?)'),
      changes: p(
        `SELECT * FROM changes WHERE rv > ?1 AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR name = ?3)
         ORDER BY rv LIMIT ?4`,
      ),
      nextRv: p("UPDATE counters SET value = value + 1 WHERE name = 'rv' RETURNING value"),
      insert: p(
        'INSERT INTO resources (kind, name, api_version, meta, spec, status, rv) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      update: p('UPDATE resources SET meta = ?, spec = ?, rv = ? WHERE kind = ? AND name = ?'),
      status: p('UPDATE resources SET status = ?, rv = ? WHERE kind = ? AND name = ?'),
      delete: p('DELETE FROM resources WHERE kind = ? AND name = ?'),
      event: p(
        'INSERT INTO events (time, kind, name, step, source, type, reason, message, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      events: p('SELECT * FROM events WHERE kind = ? AND name = ? AND id > ? ORDER BY id LIMIT ?'),
      putRecord: p(
        'INSERT INTO records (collection, key, value) VALUES (?, ?, ?) ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value',
      ),
      delRecord: p('DELETE FROM records WHERE collection = ? AND key = ?'),
      getRecord: p('SELECT value FROM records WHERE collection = ? AND key = ?'),
      listRecords: p('SELECT key, value FROM records WHERE collection = ? ORDER BY key'),
      // Ordered by i.name, not r.name: with r.name SQLite's planner walks every resource of the kind.
      lookup: p(
        `SELECT r.* FROM resource_index i JOIN resources r ON r.kind = i.kind AND r.name = i.name
         WHERE i.kind = ? AND i.idx = ? AND i.value = ? ORDER BY i.name`,
      ),
      unindex: p('DELETE FROM resource_index WHERE kind = ? AND name = ?'),
      // INDEXED BY: left to itself the planner takes the covering primary key on `kind` alone and walks
      // every index row of the kind (10,000 Nodes: a write three times slower).
      indexed: p(
        'SELECT idx, value FROM resource_index INDEXED BY resource_index_by_object WHERE kind = ? AND name = ?',
      ),
      index: p('INSERT OR IGNORE INTO resource_index (kind, idx, value, name) VALUES (?, ?, ?, ?)'),
    };
    this.#reindexIfStale();
  }

  /** Rebuilds every index row when the code's INDEX_VERSION differs from the one the database has. */
  #reindexIfStale(): void {
    const get = this.#db.prepare("SELECT value FROM counters WHERE name = 'index_version'");
    if ((get.get() as { value: number }).value === INDEX_VERSION) return;
    this.#tx(() => {
      if ((get.get() as { value: number }).value === INDEX_VERSION) return; // another process did it
      this.#db.exec('DELETE FROM resource_index');
      for (const kind of INDEXED_KINDS) for (const r of drain(this.#list(kind))) this.#index(r);
      this.#db.prepare("UPDATE counters SET value = ? WHERE name = 'index_version'").run(INDEX_VERSION);
    });
  }

  /**
   * Replaces the index rows of one object (none for a kind without indexes), unless they are already
   * these: most writes (a status write of a boot storm) change no indexed field, and reading two rows is
   * cheaper than deleting and inserting them again (pages written to the WAL at every commit).
   */
  #index(r: Resource, deleted = false): void {
    if (!INDEXED_KINDS.includes(r.kind)) return;
    const want = deleted ? [] : indexEntries(r);
    const have = this.#stmts.indexed!.all(r.kind, r.metadata.name) as { idx: string; value: string }[];
    const key = (index: string, value: string) => `${index}\0${value}`;
    if (have.length === want.length) {
      const held = new Set(have.map((h) => key(h.idx, h.value)));
      if (want.every((e) => held.has(key(e.index, e.value)))) return;
    }
    this.#stmts.unindex!.run(r.kind, r.metadata.name);
    for (const e of want) this.#stmts.index!.run(r.kind, e.index, e.value, r.metadata.name);
  }

  #migrate(): void {
    this.#db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)',
    );
    const done = new Set(
      (this.#db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map(
        (r) => r.version,
      ),
    );
    for (const m of SQLITE_MIGRATIONS) {
      if (done.has(m.version)) continue;
      this.#tx(() => {
        this.#db.exec(m.sql);
        this.#db
          .prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)')
          .run(m.version, new Date().toISOString());
      });
    }
  }

  #tx<T>(fn: () => T): T {
    return drain(this.#txSteps(oneStep(fn)));
  }

  /** A write transaction around `steps` (not started yet), which may yield between units of work. */
  *#txSteps<T>(steps: Generator<void, T>): Generator<void, T> {
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        const out = yield* steps;
        this.#db.exec('COMMIT');
        return out;
      } catch (e) {
        // On SQLITE_FULL (and some I/O errors) SQLite has already rolled the transaction back itself: a
        // second ROLLBACK would fail and hide the real error.
        if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
        throw e;
      }
    } catch (e) {
      throw this.#diskError(e);
    }
  }

  /**
   * Runs `steps` to its end, giving the event loop a turn whenever a slice has taken SLICE_MS, and holding
   * the database meanwhile: every other operation first waits while `busy` is set (in a loop, checked
   * again right before its synchronous work, as another may have taken the connection first). Work that ends within one slice runs
   * at once, as a plain call would.
   */
  async #sliced<T>(steps: Generator<void, T>): Promise<T> {
    await takeTurn();
    while (this.#gate.busy) await this.#gate.busy;
    let release: (() => void) | undefined;
    try {
      let since = performance.now();
      for (;;) {
        const r = steps.next();
        if (r.done) return r.value;
        if (performance.now() - since < SLICE_MS) continue;
        if (!release) this.#gate.busy = new Promise<void>((done) => (release = done));
        await nextTurn();
        since = performance.now();
      }
    } finally {
      if (release) {
        this.#gate.busy = undefined;
        release();
      }
    }
  }

  /**
   * A full disk is an answer for the operator (507, naming the directory to free), not an internal error;
   * nothing was written, and the next write succeeds by itself once there is space again.
   */
  #diskError(e: unknown): unknown {
    const code = (e as { errcode?: number }).errcode;
    // SQLITE_FULL (13), or an I/O error (10) whose cause is ENOSPC: both mean "no room to write".
    if (code === undefined || ((code & 0xff) !== 13 && !/disk is full|No space/i.test(String(e)))) return e;
    return new StrataError(
      507,
      'InsufficientStorage',
      `the disk holding the database is full (${dirname(this.#path)}): nothing was written; free space there ` +
        'and writes resume without a restart',
    );
  }

  #row(kind: string, name: string): Row | undefined {
    return this.#stmts.get!.get(kind, name) as Row | undefined;
  }

  #nextRv(): number {
    return (this.#stmts.nextRv!.get() as { value: number }).value;
  }

  async get(kind: string, name: string): Promise<Resource | undefined> {
    await takeTurn();
    while (this.#gate.busy) await this.#gate.busy;
    const row = this.#row(kind, name);
    return row ? rowToResource(row) : undefined;
  }

  /** Yields after every object, so a long list can be sliced (#sliced). */
  *#list(kind: string, opts?: ListOptions): Generator<void, Resource[]> {
    return yield* this.#rows(kind, opts, (row) => {
      const r = rowToResource(row);
      return matchesLabels(r, opts?.labels) ? r : undefined;
    });
  }

  /** #list's objects as JSON text, without parsing more than a label filter needs. */
  *#listJson(kind: string, opts?: ListOptions): Generator<void, JsonItem[]> {
    return yield* this.#rows(kind, opts, (row) =>
      !opts?.labels || matchesLabels({ metadata: JSON.parse(row.meta) } as Resource, opts.labels)
        ? { name: row.name, json: rowJson(row, () => rowToResource(row)) }
        : undefined,
    );
  }

  /** The rows of a list by name, each made into what `map` makes of it (undefined: filtered out). */
  *#rows<T>(
    kind: string,
    opts: ListOptions | undefined,
    map: (row: Row) => T | undefined,
  ): Generator<void, T[]> {
    const out: T[] = [];
    const limit = opts?.limit ?? Number.POSITIVE_INFINITY;
    let after = opts?.after ?? '';
    // Read in chunks until `limit` objects pass the label filter (or the kind is exhausted); without a
    // filter, no more rows than the limit asks for are read (or parsed).
    while (out.length < limit) {
      const chunk = opts?.labels ? 500 : Math.min(500, limit - out.length);
      const rows = this.#stmts.list!.all(kind, after, chunk) as unknown as Row[];
      for (const row of rows) {
        if (out.length >= limit) break;
        const r = map(row);
        if (r !== undefined) out.push(r);
        yield;
      }
      if (rows.length < chunk) break;
      after = rows[rows.length - 1]!.name;
    }
    return out;
  }

  async list(kind: string, opts?: ListOptions): Promise<Resource[]> {
    // Read a slice at a time by name, letting other operations run between slices (a list of 10,000 Nodes
    // that held the database would hold every API request behind it): not one snapshot, but each object
    // once, as committed at some moment of the list. listVersioned is the snapshot.
    return this.#interleaved(this.#list(kind, opts));
  }

  /** Runs `steps` in slices like #sliced, but lets other operations run between the slices. */
  async #interleaved<T>(steps: Generator<void, T>): Promise<T> {
    for (;;) {
      await takeTurn();
      while (this.#gate.busy) await this.#gate.busy;
      const since = performance.now();
      for (;;) {
        const r = steps.next();
        if (r.done) return r.value;
        if (performance.now() - since >= SLICE_MS) break;
      }
      await nextTurn();
    }
  }

  /** A read transaction around `steps` (not started yet). */
  *#read<T>(steps: Generator<void, T>): Generator<void, T> {
    this.#db.exec('BEGIN');
    try {
      return yield* steps;
    } finally {
      this.#db.exec('COMMIT');
    }
  }

  async lookup(kind: string, index: string, value: string): Promise<Resource[]> {
    await takeTurn();
    while (this.#gate.busy) await this.#gate.busy;
    if (!hasIndex(kind, index))
      throw new Error(`no index ${index} on ${kind} (see src/core/store/indexes.ts)`);
    return (this.#stmts.lookup!.all(kind, index, value) as unknown as Row[]).map(rowToResource);
  }

  async listVersioned(kind: string, opts?: ListOptions): Promise<VersionedList> {
    // One read transaction: the version and the rows come from the same snapshot (other processes too).
    return this.#sliced(this.#read(this.#versioned(this.#list(kind, opts))));
  }

  async listVersionedJson(kind: string, opts?: ListOptions): Promise<JsonList> {
    return this.#sliced(this.#read(this.#versioned(this.#listJson(kind, opts))));
  }

  /** The store's version, then `items` (not started yet), in the caller's read transaction. */
  *#versioned<T>(items: Generator<void, T[]>): Generator<void, { items: T[]; resourceVersion: string }> {
    const resourceVersion = String((this.#stmts.rv!.get() as { value: number }).value);
    return { items: yield* items, resourceVersion };
  }

  async version(): Promise<string> {
    await takeTurn();
    while (this.#gate.busy) await this.#gate.busy;
    return String((this.#stmts.rv!.get() as { value: number }).value);
  }

  async changes(q: ChangeQuery): Promise<Change[] | 'expired'> {
    await takeTurn();
    while (this.#gate.busy) await this.#gate.busy;
    this.#db.exec('BEGIN');
    try {
      const compacted = (this.#stmts.compacted!.get() as { value: number }).value;
      if (Number(q.afterRv) < compacted) return 'expired';
      const rows = this.#stmts.changes!.all(
        Number(q.afterRv),
        q.kind ?? null,
        q.name ?? null,
        q.limit ?? 1000,
      ) as { rv: number; type: Change['type']; object: string }[];
      return rows.map((r) => ({ rv: String(r.rv), type: r.type, object: JSON.parse(r.object) }));
    } finally {
      this.#db.exec('COMMIT');
    }
  }

  /**
   * Group commit: the writes asked for within one turn of the event loop share one transaction, each in a
   * savepoint of its own, so each is still all-or-nothing and fails alone (a Conflict rolls back only its
   * own ops). Under a boot storm's load hundreds of status writes a second arrive together, and a commit
   * (BEGIN IMMEDIATE … COMMIT, the WAL append) cost more than most of them; idle, a write waits one turn.
   */
  write(ops: WriteOp[]): Promise<WriteResult[]> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ ops, resolve, reject });
      if (this.#pending.length > 1) return; // its group is already scheduled
      const group = new Promise<void>((done) =>
        setImmediate(() => void this.#commitGroup(this.#pending.splice(0)).finally(done)),
      );
      this.#groups.add(group);
      void group.then(() => this.#groups.delete(group));
    });
  }

  async #commitGroup(batch: PendingWrite[]): Promise<void> {
    let outs: (WriteResult[] | { error: unknown })[];
    try {
      outs = await this.#sliced(this.#txSteps(this.#groupSteps(batch)));
    } catch (e) {
      // The transaction itself failed (BEGIN or COMMIT, a full disk): nothing of the group was written.
      for (const w of batch) w.reject(e);
      return;
    }
    for (const [i, w] of batch.entries()) {
      const out = outs[i]!;
      if (Array.isArray(out)) w.resolve(out);
      else w.reject(out.error);
    }
  }

  *#groupSteps(batch: PendingWrite[]): Generator<void, (WriteResult[] | { error: unknown })[]> {
    if (batch.length === 1) return [yield* this.#writeSteps(batch[0]!.ops)];
    const outs: (WriteResult[] | { error: unknown })[] = [];
    for (const w of batch) {
      this.#db.exec('SAVEPOINT w');
      try {
        outs.push(yield* this.#writeSteps(w.ops));
        this.#db.exec('RELEASE w');
      } catch (e) {
        // SQLite rolled the whole transaction back itself (a full disk): the group fails as one.
        if (!this.#db.isTransaction) throw e;
        this.#db.exec('ROLLBACK TO w');
        this.#db.exec('RELEASE w');
        outs.push({ error: this.#diskError(e) });
      }
      if (outs.length < batch.length) yield;
    }
    return outs;
  }

  *#writeSteps(ops: WriteOp[]): Generator<void, WriteResult[]> {
    const out: WriteResult[] = [];
    for (const op of ops) {
      const w = this.#apply(op);
      out.push(w);
      const rv = Number(w.resource.metadata.resourceVersion);
      const type = w.op === 'create' ? 'ADDED' : w.op === 'delete' ? 'DELETED' : 'MODIFIED';
      const { kind, metadata } = w.resource;
      this.#stmts.change!.run(rv, type, kind, metadata.name, JSON.stringify(w.resource));
      this.#index(w.resource, w.op === 'delete');
      // Not after the last: a short write never holds the lock across a turn of the loop.
      if (out.length < ops.length) yield;
    }
    const last = Number(out[out.length - 1]?.resource.metadata.resourceVersion ?? 0);
    const first = Number(out[0]?.resource.metadata.resourceVersion ?? 0);
    // Compact now and then (when the version crosses a multiple of #every), not on every write.
    if (out.length && Math.floor((first - 1) / this.#every) !== Math.floor(last / this.#every)) {
      this.#stmts.prune!.run(last - this.#keep);
      this.#stmts.compact!.run(last - this.#keep);
    }
    return out;
  }

  #apply(op: WriteOp): WriteResult {
    const kind = op.op === 'create' || op.op === 'update' ? op.resource.kind : op.kind;
    const name = op.op === 'create' || op.op === 'update' ? op.resource.metadata.name : op.name;
    const row = this.#row(kind, name);
    if (op.op === 'create') {
      if (row) throw alreadyExists(kind, name);
      const rv = this.#nextRv();
      const { resourceVersion: _rv, ...meta } = op.resource.metadata;
      const metadata = {
        ...meta,
        uid: meta.uid ?? randomUUID(),
        generation: 1,
        creationTimestamp: meta.creationTimestamp ?? new Date().toISOString(),
      };
      const created: Row = {
        kind,
        name,
        api_version: op.resource.apiVersion,
        meta: JSON.stringify(metadata),
        spec: JSON.stringify(op.resource.spec),
        status: op.resource.status ? JSON.stringify(op.resource.status) : null,
        rv,
      };
      this.#stmts.insert!.run(
        kind,
        name,
        created.api_version,
        created.meta,
        created.spec,
        created.status,
        rv,
      );
      // What the written row reads back as, made from the values written rather than read again (a
      // storm's status writes are thousands a minute, each a read and a parse less).
      return { op: op.op, resource: rowToResource(created) };
    }
    if (!row) throw notFound(kind, name);
    if (op.expectedVersion !== undefined && op.expectedVersion !== String(row.rv)) {
      throw conflict(kind, name, op.expectedVersion, String(row.rv));
    }
    if (op.op === 'status') {
      const rv = this.#nextRv();
      const status = JSON.stringify(op.status);
      this.#stmts.status!.run(status, rv, kind, name);
      return { op: op.op, resource: rowToResource({ ...row, status, rv }) };
    }
    const current = rowToResource(row);
    const rv = this.#nextRv();
    if (op.op === 'delete') {
      this.#stmts.delete!.run(kind, name);
      // A delete is a change of its own: it gets a version, so a watch can resume after it.
      return {
        op: op.op,
        resource: { ...current, metadata: { ...current.metadata, resourceVersion: String(rv) } },
      };
    }
    const spec = JSON.stringify(op.resource.spec);
    const metadata = updatedMetadata(op.resource.metadata, current.metadata, spec !== row.spec);
    const updated: Row = { ...row, meta: JSON.stringify(metadata), spec, rv };
    this.#stmts.update!.run(updated.meta, spec, rv, kind, name);
    return { op: op.op, resource: rowToResource(updated) };
  }

  async appendEvents(events: StrataEvent[]): Promise<void> {
    if (!events.length) return;
    await takeTurn();
    while (this.#gate.busy) await this.#gate.busy;
    this.#tx(() => {
      for (const e of events) {
        const r = this.#stmts.event!.run(
          e.time,
          e.kind,
          e.name,
          e.step ?? null,
          e.source,
          e.type,
          e.reason,
          e.message,
          e.data ? JSON.stringify(e.data) : null,
        );
        e.id = Number(r.lastInsertRowid);
      }
    });
  }

  async listEvents(q: EventQuery): Promise<StrataEvent[]> {
    await takeTurn();
    while (this.#gate.busy) await this.#gate.busy;
    const rows = this.#stmts.events!.all(q.kind, q.name, q.afterId ?? 0, q.limit ?? 10_000) as Record<
      string,
      unknown
    >[];
    return rows.map(rowToEvent);
  }

  async putRecords(collection: string, records: StoredRecord[]): Promise<void> {
    if (!records.length) return;
    await takeTurn();
    while (this.#gate.busy) await this.#gate.busy;
    this.#tx(() => {
      for (const r of records) this.#stmts.putRecord!.run(collection, r.key, JSON.stringify(r.value));
    });
  }

  async deleteRecords(collection: string, keys: string[]): Promise<void> {
    if (!keys.length) return;
    await takeTurn();
    while (this.#gate.busy) await this.#gate.busy;
    this.#tx(() => {
      for (const k of keys) this.#stmts.delRecord!.run(collection, k);
    });
    // What was deleted (a key, a credential) leaves the WAL too, not only the database pages.
    this.#db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  }

  async getRecord(collection: string, key: string): Promise<unknown | undefined> {
    await takeTurn();
    while (this.#gate.busy) await this.#gate.busy;
    const row = this.#stmts.getRecord!.get(collection, key) as { value: string } | undefined;
    return row ? JSON.parse(row.value) : undefined;
  }

  async listRecords(collection: string): Promise<StoredRecord[]> {
    await takeTurn();
    while (this.#gate.busy) await this.#gate.busy;
    return (this.#stmts.listRecords!.all(collection) as { key: string; value: string }[]).map((r) => ({
      key: r.key,
      value: JSON.parse(r.value),
    }));
  }

  async close(): Promise<void> {
    // Writes already asked for are committed (or fail) before the connection goes.
    while (this.#groups.size) await Promise.all(this.#groups);
    while (this.#gate.busy) await this.#gate.busy;
    const checkpointer = this.#checkpointer;
    this.#checkpointer = undefined;
    if (checkpointer) {
      // Unref'd so it never keeps a process alive; while close waits for it, it must (else a process with
      // nothing else left would exit mid-close, with close's promise unsettled).
      checkpointer.worker.ref();
      checkpointer.worker.postMessage('stop');
      await checkpointer.exited;
    }
    if (this.#db.isOpen) this.#db.close();
  }
}

export function rowToEvent(row: Record<string, unknown>): StrataEvent {
  const e: StrataEvent = {
    id: Number(row.id),
    time: String(row.time),
    kind: String(row.kind),
    name: String(row.name),
    source: String(row.source),
    type: row.type as StrataEvent['type'],
    reason: String(row.reason),
    message: String(row.message),
  };
  if (row.step) e.step = String(row.step);
  if (row.data)
    e.data = typeof row.data === 'string' ? JSON.parse(row.data) : (row.data as Record<string, unknown>);
  return e;
}
