/**
 * One behaviour suite, run against both store drivers: SQLite in a temporary directory and PostgreSQL in
 * a throwaway database. What a manager relies on: optimistic concurrency, spec/status separation,
 * all-or-nothing writes, events and records, and data surviving a reopen. What a watch relies on: a
 * change log whose versions are a cursor (they commit in order, even with several writers) and which
 * says `expired` once compacted; paged lists.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { StrataError } from '../../../src/core/resources/errors.ts';
import type { Resource, StrataEvent } from '../../../src/core/resources/types.ts';
import { openStore } from '../../../src/core/store/index.ts';
import type { Store, WriteResult } from '../../../src/core/store/types.ts';
import { postgresSkipReason, withPostgres } from '../../helpers/services.ts';

interface Driver {
  name: 'sqlite' | 'postgres';
  skip?: string | undefined;
  /** A fresh, empty store location (a path spec or a database URL). */
  fresh(): Promise<string>;
  cleanup(): Promise<void>;
}

const tmpDirs: string[] = [];
const dbs: { cleanup(): Promise<void> }[] = [];

const drivers: Driver[] = [
  {
    name: 'sqlite',
    fresh: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'strata-store-'));
      tmpDirs.push(dir);
      return `sqlite:${join(dir, 'strata.db')}`;
    },
    cleanup: async () => {
      for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  },
  {
    name: 'postgres',
    skip: await postgresSkipReason(),
    fresh: async () => {
      const db = await withPostgres();
      dbs.push(db);
      return db.url;
    },
    cleanup: async () => {
      for (const db of dbs.splice(0)) await db.cleanup();
    },
  },
];

const node = (
  name: string,
  spec: Record<string, unknown> = {},
  labels?: Record<string, string>,
): Resource => ({
  apiVersion: 'strata.dev/v1alpha1',
  kind: 'Node',
  metadata: { name, ...(labels ? { labels } : {}) },
  spec,
});

/** Runs SQL on a store's database behind the store's back (to make the state an older version left). */
async function rawSql(spec: string, sql: string): Promise<void> {
  if (spec.startsWith('sqlite:')) {
    const db = new DatabaseSync(spec.slice('sqlite:'.length));
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
    return;
  }
  const c = new pg.Client({ connectionString: spec });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function rejectsWith(p: Promise<unknown>, reason: string): Promise<StrataError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StrataError, `expected a StrataError, got ${e}`);
    assert.equal(e.reason, reason, e.message);
    return e;
  }
  assert.fail(`expected ${reason}, but the write succeeded`);
}

for (const driver of drivers) {
  describe(`store conformance: ${driver.name}`, { skip: driver.skip }, () => {
    let spec: string;
    let store: Store;
    const dataDir = mkdtempSync(join(tmpdir(), 'strata-data-'));

    before(async () => {
      spec = await driver.fresh();
      store = await openStore(spec, dataDir);
      assert.equal(store.driver, driver.name);
    });
    after(async () => {
      await store?.close();
      await driver.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('creates, gets and lists with a label selector, sorted by name', async () => {
      const [created] = await store
        .write([
          {
            op: 'create',
            resource: node('b-1', { mac: '52:54:00:00:00:01' }, { rack: 'r1', role: 'worker' }),
          },
          {
            op: 'create',
            resource: node('a-2', { mac: '52:54:00:00:00:02' }, { rack: 'r2', role: 'worker' }),
          },
          { op: 'create', resource: node('B-3', {}, { rack: 'r1' }) },
        ])
        .then((rs) => rs.map((r) => r.resource));
      assert.ok(created);
      assert.equal(created.metadata.generation, 1);
      assert.match(created.metadata.uid ?? '', /^[0-9a-f-]{36}$/);
      assert.ok(!Number.isNaN(Date.parse(created.metadata.creationTimestamp ?? '')));
      assert.match(created.metadata.resourceVersion ?? '', /^\d+$/);

      const got = await store.get('Node', 'b-1');
      assert.deepEqual(got, created);
      assert.equal(await store.get('Node', 'nope'), undefined);
      assert.equal(await store.get('Network', 'b-1'), undefined);

      assert.deepEqual(
        (await store.list('Node')).map((r) => r.metadata.name),
        ['B-3', 'a-2', 'b-1'],
      );
      assert.deepEqual(
        (await store.list('Node', { labels: { rack: 'r1' } })).map((r) => r.metadata.name),
        ['B-3', 'b-1'],
      );
      assert.deepEqual(
        (await store.list('Node', { labels: { rack: 'r1', role: 'worker' } })).map((r) => r.metadata.name),
        ['b-1'],
      );
      assert.deepEqual(await store.list('Node', { labels: { rack: 'r9' } }), []);
      assert.equal((await store.list('Node', { labels: {} })).length, 3);
      assert.deepEqual(await store.list('Network'), []);
    });

    it('update replaces spec and metadata, keeps status, uid and creationTimestamp, bumps rv and generation', async () => {
      const [c] = await store.write([{ op: 'create', resource: node('upd', { image: 'v1' }) }]);
      const [s] = await store.write([{ op: 'status', kind: 'Node', name: 'upd', status: { state: 3 } }]);
      const before = s!.resource;
      const [u] = await store.write([
        {
          op: 'update',
          resource: {
            ...node('upd', { image: 'v2' }, { env: 'lab' }),
            metadata: {
              name: 'upd',
              labels: { env: 'lab' },
              uid: 'forged',
              creationTimestamp: '1999-01-01T00:00:00Z',
            },
          },
          expectedVersion: before.metadata.resourceVersion!,
        },
      ]);
      const after = u!.resource;
      assert.deepEqual(after.spec, { image: 'v2' });
      assert.deepEqual(after.status, { state: 3 });
      assert.deepEqual(after.metadata.labels, { env: 'lab' });
      assert.equal(after.metadata.uid, c!.resource.metadata.uid);
      assert.equal(after.metadata.creationTimestamp, c!.resource.metadata.creationTimestamp);
      assert.equal(after.metadata.generation, 2);
      assert.ok(Number(after.metadata.resourceVersion) > Number(before.metadata.resourceVersion));
      assert.deepEqual(await store.get('Node', 'upd'), after);

      // Same spec, new labels: rv moves, generation does not.
      await store.write([{ op: 'update', resource: node('upd', { image: 'v2' }, { env: 'prod' }) }]);
      const [same] = await store.write([
        { op: 'update', resource: node('upd', { image: 'v2' }, { env: 'prod' }) },
      ]);
      assert.equal(same!.resource.metadata.generation, 2);
      assert.ok(Number(same!.resource.metadata.resourceVersion) > Number(after.metadata.resourceVersion));
    });

    it('status write keeps spec and metadata, bumps rv but not generation', async () => {
      const [c] = await store.write([{ op: 'create', resource: node('st', { image: 'v1' }, { a: 'b' }) }]);
      const [s] = await store.write([
        {
          op: 'status',
          kind: 'Node',
          name: 'st',
          status: { conditions: [{ type: 'Ready', status: 'True' }] },
          expectedVersion: c!.resource.metadata.resourceVersion!,
        },
      ]);
      const r = (await store.get('Node', 'st'))!;
      assert.deepEqual(r, s!.resource);
      assert.deepEqual(r.spec, { image: 'v1' });
      assert.deepEqual(r.metadata.labels, { a: 'b' });
      assert.equal(r.metadata.generation, 1);
      assert.deepEqual(r.status, { conditions: [{ type: 'Ready', status: 'True' }] });
      assert.ok(Number(r.metadata.resourceVersion) > Number(c!.resource.metadata.resourceVersion));
    });

    it('refuses a stale expectedVersion with Conflict, for update, status and delete', async () => {
      const [c] = await store.write([{ op: 'create', resource: node('cf', { v: 1 }) }]);
      const stale = c!.resource.metadata.resourceVersion!;
      await store.write([{ op: 'update', resource: node('cf', { v: 2 }), expectedVersion: stale }]);
      const e = await rejectsWith(
        store.write([{ op: 'update', resource: node('cf', { v: 3 }), expectedVersion: stale }]),
        'Conflict',
      );
      assert.equal(e.status, 409);
      assert.match(e.message, /node "cf".*modified/);
      await rejectsWith(
        store.write([{ op: 'status', kind: 'Node', name: 'cf', status: {}, expectedVersion: stale }]),
        'Conflict',
      );
      await rejectsWith(
        store.write([{ op: 'delete', kind: 'Node', name: 'cf', expectedVersion: stale }]),
        'Conflict',
      );
      assert.deepEqual((await store.get('Node', 'cf'))!.spec, { v: 2 });
    });

    it('create of an existing name → AlreadyExists; update/delete of a missing one → NotFound', async () => {
      await store.write([{ op: 'create', resource: node('dup') }]);
      const e = await rejectsWith(
        store.write([{ op: 'create', resource: node('dup', { x: 1 }) }]),
        'AlreadyExists',
      );
      assert.equal(e.status, 409);
      assert.deepEqual((await store.get('Node', 'dup'))!.spec, {});
      await rejectsWith(store.write([{ op: 'update', resource: node('ghost') }]), 'NotFound');
      await rejectsWith(store.write([{ op: 'status', kind: 'Node', name: 'ghost', status: {} }]), 'NotFound');
      await rejectsWith(store.write([{ op: 'delete', kind: 'Node', name: 'ghost' }]), 'NotFound');
    });

    it('delete returns the object as it was, with a version of its own, and removes it', async () => {
      const [c] = await store.write([{ op: 'create', resource: node('del', { a: 1 }) }]);
      const [d] = await store.write([
        { op: 'delete', kind: 'Node', name: 'del', expectedVersion: c!.resource.metadata.resourceVersion! },
      ]);
      const { resourceVersion: deletedAt, ...meta } = d!.resource.metadata;
      const { resourceVersion: createdAt, ...before } = c!.resource.metadata;
      assert.deepEqual({ ...d!.resource, metadata: meta }, { ...c!.resource, metadata: before });
      assert.ok(BigInt(deletedAt!) > BigInt(createdAt!), 'a delete is a change with a later version');
      assert.equal(await store.get('Node', 'del'), undefined);
      await store.write([{ op: 'create', resource: node('del') }]);
    });

    it('a multi-op write is all or nothing', async () => {
      await store.write([{ op: 'create', resource: node('aon-existing', { v: 1 }) }]);
      await rejectsWith(
        store.write([
          { op: 'create', resource: node('aon-new') },
          { op: 'update', resource: node('aon-existing', { v: 2 }) },
          { op: 'create', resource: node('aon-existing') },
        ]),
        'AlreadyExists',
      );
      assert.equal(await store.get('Node', 'aon-new'), undefined);
      assert.deepEqual((await store.get('Node', 'aon-existing'))!.spec, { v: 1 });

      const results = await store.write([
        { op: 'create', resource: node('aon-new') },
        { op: 'status', kind: 'Node', name: 'aon-new', status: { ok: true } },
      ]);
      assert.deepEqual(
        results.map((r) => r.op),
        ['create', 'status'],
      );
      assert.deepEqual((await store.get('Node', 'aon-new'))!.status, { ok: true });
      assert.deepEqual(await store.write([]), []);
    });

    it('creates in a row are all-or-nothing: one that exists, or a name twice, fails the write and names it', async () => {
      await store.write([{ op: 'create', resource: node('row-3', { v: 'old' }) }]);
      const names = ['row-0', 'row-1', 'row-2', 'row-3', 'row-4'];
      await assert.rejects(
        store.write(names.map((n) => ({ op: 'create' as const, resource: node(n, { v: 'new' }) }))),
        (e: unknown) => e instanceof StrataError && e.reason === 'AlreadyExists' && /row-3/.test(e.message),
      );
      for (const n of ['row-0', 'row-1', 'row-2', 'row-4'])
        assert.equal(await store.get('Node', n), undefined);
      assert.deepEqual((await store.get('Node', 'row-3'))!.spec, { v: 'old' });
      await assert.rejects(
        store.write(
          ['twice-a', 'twice-b', 'twice-a'].map((n) => ({ op: 'create' as const, resource: node(n) })),
        ),
        (e: unknown) => e instanceof StrataError && e.reason === 'AlreadyExists' && /twice-a/.test(e.message),
      );
      assert.equal(await store.get('Node', 'twice-b'), undefined);
      // Landed, they come back in the order asked, each with its own increasing version and its own uid.
      const made = await store.write(
        ['row-4', 'row-2', 'row-0'].map((n) => ({ op: 'create' as const, resource: node(n, { n }) })),
      );
      assert.deepEqual(
        made.map((w) => [w.resource.metadata.name, w.resource.spec]),
        [
          ['row-4', { n: 'row-4' }],
          ['row-2', { n: 'row-2' }],
          ['row-0', { n: 'row-0' }],
        ],
      );
      const rvs = made.map((w) => Number(w.resource.metadata.resourceVersion));
      assert.ok(rvs[0]! < rvs[1]! && rvs[1]! < rvs[2]!, rvs.join(' < '));
      assert.equal(new Set(made.map((w) => w.resource.metadata.uid)).size, 3);
      assert.deepEqual(await store.get('Node', 'row-2'), made[1]!.resource);
    });

    it('writes asked for together stand alone: a failing one leaves nothing of its own and takes none of the others', async () => {
      await store.write([{ op: 'create', resource: node('tog-existing', { v: 1 }) }]);
      // Asked for in one turn of the loop (SQLite commits them as one group, each in a savepoint).
      const [a, bad, b, c] = await Promise.allSettled([
        store.write([{ op: 'create', resource: node('tog-a') }]),
        store.write([
          { op: 'create', resource: node('tog-b-half') },
          { op: 'update', resource: node('tog-existing', { v: 2 }) },
          { op: 'create', resource: node('tog-existing') },
        ]),
        store.write([{ op: 'status', kind: 'Node', name: 'tog-existing', status: { seen: true } }]),
        store.write([{ op: 'create', resource: node('tog-c') }]),
      ]);
      assert.equal(a.status, 'fulfilled');
      assert.equal(b.status, 'fulfilled');
      assert.equal(c.status, 'fulfilled');
      assert.equal(bad.status, 'rejected');
      assert.ok(
        (bad as PromiseRejectedResult).reason instanceof StrataError &&
          (bad as PromiseRejectedResult).reason.reason === 'AlreadyExists',
      );
      assert.equal(await store.get('Node', 'tog-b-half'), undefined, "the failed write's first op is undone");
      const existing = (await store.get('Node', 'tog-existing'))!;
      assert.deepEqual(existing.spec, { v: 1 }, "the failed write's update is undone");
      assert.deepEqual(existing.status, { seen: true }, 'the write after it landed');
      assert.ok(await store.get('Node', 'tog-a'));
      assert.ok(await store.get('Node', 'tog-c'));
      // Each landed write has its own version, in the order asked.
      const rv = (r: PromiseSettledResult<WriteResult[]>) =>
        Number((r as PromiseFulfilledResult<WriteResult[]>).value[0]!.resource.metadata.resourceVersion);
      assert.ok(rv(a) < rv(b) && rv(b) < rv(c), `${rv(a)} < ${rv(b)} < ${rv(c)}`);
    });

    it('a write or list of thousands gives the event loop turns; what runs meanwhile sees all of the write or none', async () => {
      // Enough for SQLite's synchronous work to last many slices; PostgreSQL waits on its socket anyway.
      const n = driver.name === 'sqlite' ? 3000 : 500;
      const bulk = (name: string): Resource => ({ ...node(name), kind: 'Bulk' });
      const ops = (fail: boolean) => [
        ...Array.from({ length: n }, (_, i) => ({ op: 'create' as const, resource: bulk(`b-${i}`) })),
        // The last op of the failing batch names an object that does not exist: the whole batch rolls back.
        ...(fail ? [{ op: 'delete' as const, kind: 'Bulk', name: 'missing' }] : []),
      ];
      /** Runs `work`, counting turns of the loop and reading (an object, a list) at each while it runs. */
      const during = async (work: Promise<unknown>) => {
        let done = false;
        const settled = work.then(
          () => (done = true),
          () => (done = true),
        );
        let turns = 0;
        const reads: Promise<[boolean, number]>[] = [];
        while (!done) {
          await new Promise((r) => setTimeout(r, 1));
          if (done) break;
          turns++;
          reads.push(
            Promise.all([
              store.get('Bulk', `b-${n - 1}`),
              store.listVersioned('Bulk', { limit: n + 1 }),
            ]).then(([z, all]) => [z !== undefined, all.items.length]),
          );
        }
        await settled;
        return { turns, reads: await Promise.all(reads) };
      };

      const failing = store.write(ops(true));
      const failed = await during(failing);
      await rejectsWith(failing, 'NotFound');
      assert.ok(failed.turns > 0, `the loop got a turn during a failing write of ${n} objects`);
      for (const r of failed.reads) assert.deepEqual(r, [false, 0], 'nothing of a rolled-back write');
      assert.deepEqual(await store.list('Bulk'), []);

      const written = await during(store.write(ops(false)));
      assert.ok(written.turns > 0, `the loop got a turn during a write of ${n} objects`);
      // A versioned list is one snapshot: all of the write or none (a get is a read of its own).
      for (const [, count] of written.reads)
        assert.ok(count === 0 || count === n, `a list during the write saw ${count} of ${n}`);
      const t0 = performance.now();
      const listed = await during(store.listVersioned('Bulk'));
      // A list that lasted a few slices (8 ms each) gave a turn; a fast one may end before a 1 ms timer is
      // due (PostgreSQL's is one round trip, waiting on a socket).
      if (performance.now() - t0 > 30)
        assert.ok(listed.turns > 0, `the loop got a turn during a list of ${n} objects`);
      // A plain list lets other operations run between its slices (a get is answered before it ends), and
      // still sees each object once.
      const order: string[] = [];
      const t1 = performance.now();
      const plain = store.list('Bulk').then((all) => {
        order.push('list');
        return all;
      });
      await new Promise((r) => setTimeout(r, 1));
      await store.get('Bulk', 'b-0').then(() => order.push('get'));
      const all = await plain;
      assert.equal(new Set(all.map((r) => r.metadata.name)).size, n);
      if (performance.now() - t1 > 30) assert.deepEqual(order, ['get', 'list']);
      assert.equal((await store.list('Bulk')).length, n);
      await store.write(
        Array.from({ length: n }, (_, i) => ({ op: 'delete' as const, kind: 'Bulk', name: `b-${i}` })),
      );
    });

    it('a versioned list as JSON text gives each object exactly as listVersioned does, in pages of any size', async () => {
      const kind = 'Text';
      const obj = (
        name: string,
        labels: Record<string, string>,
        spec: Record<string, unknown>,
      ): Resource => ({
        ...node(name, spec, labels),
        kind,
      });
      await store.write([
        { op: 'create', resource: obj('t-plain', {}, {}) },
        {
          op: 'create',
          resource: {
            ...obj(
              't-rich',
              { tier: 'a', 'x.io/k': 'v' },
              { n: 1.5, big: 12345678901, deep: { a: [1, 'é', null] } },
            ),
            metadata: {
              name: 't-rich',
              labels: { tier: 'a' },
              annotations: { note: 'quote " and \\ and \u2028' },
            },
          },
        },
        // A label that mentions resourceVersion: the text is then made the slow way, with the same result.
        { op: 'create', resource: obj('t-rv', { tier: 'a', resourceVersion: 'x' }, { resourceVersion: 1 }) },
        { op: 'create', resource: obj('t-unicode', { tier: 'b' }, { name: '日本語 🚀', empty: {} }) },
      ]);
      await store.write([
        { op: 'status', kind, name: 't-rich', status: { phase: 'Ready', n: [1, { b: 2 }] } },
      ]);
      // More than a page of the PostgreSQL driver (500 rows a statement) and of an SQLite chunk.
      await store.write(
        Array.from({ length: 1100 }, (_, i) => ({
          op: 'create' as const,
          resource: obj(`u-${String(i).padStart(4, '0')}`, { tier: 'c' }, { i }),
        })),
      );
      for (const opts of [
        undefined,
        { labels: { tier: 'a' } },
        { labels: { tier: 'c' }, limit: 3 },
        { after: 't-rich', limit: 2 },
        { after: 'u-0400', limit: 600 },
        { labels: { tier: 'nope' } },
      ]) {
        const json = await store.listVersionedJson(kind, opts);
        const objects = await store.listVersioned(kind, opts);
        assert.equal(json.resourceVersion, objects.resourceVersion);
        assert.deepEqual(
          json.items.map((i) => i.name),
          objects.items.map((r) => r.metadata.name),
        );
        assert.deepEqual(
          json.items.map((i) => JSON.parse(i.json)),
          objects.items,
          `listVersionedJson(${JSON.stringify(opts)})`,
        );
        // SQLite keeps the text JSON.stringify made, so the text is the same to the byte; PostgreSQL's
        // JSONB prints its own spacing and key order (the same values).
        if (driver.name === 'sqlite')
          assert.deepEqual(
            json.items.map((i) => i.json),
            objects.items.map((r) => JSON.stringify(r)),
          );
      }
      assert.equal((await store.listVersionedJson(kind)).items.length, 1104);
      assert.equal((await store.list(kind)).length, 1104);
      assert.deepEqual((await store.listVersionedJson('Nothing')).items, []);
      await store.write(
        (await store.list(kind)).map((r) => ({ op: 'delete' as const, kind, name: r.metadata.name })),
      );
    });

    it('appends events and lists them per object, following with afterId and limit', async () => {
      const ev = (name: string, reason: string, extra: Partial<StrataEvent> = {}): StrataEvent => ({
        time: new Date().toISOString(),
        kind: 'Node',
        name,
        source: 'test',
        type: 'Normal',
        reason,
        message: `${reason} happened`,
        ...extra,
      });
      const batch = [
        ev('n1', 'Created'),
        ev('n2', 'Other'),
        ev('n1', 'DHCPOffer', { step: 'boot.firmware', data: { ip: '10.0.0.5', nested: { a: [1, 2] } } }),
        ev('n1', 'Failed', { type: 'Warning' }),
      ];
      await store.appendEvents(batch);
      assert.ok(batch.every((e) => typeof e.id === 'number'));
      assert.ok(
        batch[0]!.id! < batch[1]!.id! && batch[1]!.id! < batch[2]!.id! && batch[2]!.id! < batch[3]!.id!,
      );

      const all = await store.listEvents({ kind: 'Node', name: 'n1' });
      assert.deepEqual(
        all.map((e) => e.reason),
        ['Created', 'DHCPOffer', 'Failed'],
      );
      assert.deepEqual(all[1], batch[2]);
      assert.deepEqual(all[0], batch[0]);
      assert.equal(all[2]!.type, 'Warning');

      const followed = await store.listEvents({ kind: 'Node', name: 'n1', afterId: all[0]!.id! });
      assert.deepEqual(
        followed.map((e) => e.reason),
        ['DHCPOffer', 'Failed'],
      );
      assert.deepEqual(
        (await store.listEvents({ kind: 'Node', name: 'n1', limit: 1 })).map((e) => e.reason),
        ['Created'],
      );
      assert.deepEqual(await store.listEvents({ kind: 'Node', name: 'n1', afterId: all[2]!.id! }), []);
      await store.appendEvents([]);
    });

    it('parallel event appends from several stores all land, each with its own increasing id', async () => {
      const others = await Promise.all(Array.from({ length: 3 }, () => openStore(spec, dataDir)));
      try {
        const stores = [store, ...others];
        const batches = Array.from({ length: 12 }, (_, b) =>
          Array.from(
            { length: 5 },
            (_, i): StrataEvent => ({
              time: new Date().toISOString(),
              kind: 'Node',
              name: 'busy',
              source: `manager-${b % stores.length}`,
              type: 'Normal',
              reason: `b${b}e${i}`,
              message: 'm',
            }),
          ),
        );
        await Promise.all(batches.map((batch, b) => stores[b % stores.length]!.appendEvents(batch)));
        const listed = await store.listEvents({ kind: 'Node', name: 'busy' });
        assert.equal(listed.length, 60);
        const ids = listed.map((e) => e.id!);
        assert.deepEqual(
          ids,
          [...ids].sort((a, b) => a - b),
        );
        assert.equal(new Set(ids).size, 60);
        for (const batch of batches) {
          for (let i = 1; i < batch.length; i++) assert.ok(batch[i]!.id! > batch[i - 1]!.id!);
        }
      } finally {
        await Promise.all(others.map((s) => s.close()));
      }
    });

    it('puts, gets, lists and deletes records', async () => {
      await store.putRecords('leases', [
        { key: '52:54:00:00:00:02', value: { ip: '10.0.0.2' } },
        { key: '52:54:00:00:00:01', value: { ip: '10.0.0.1', tags: ['a'] } },
        { key: 'str', value: 'plain string' },
        { key: 'num', value: 42 },
      ]);
      await store.putRecords('other', [{ key: 'x', value: true }]);
      assert.deepEqual(await store.getRecord('leases', '52:54:00:00:00:01'), { ip: '10.0.0.1', tags: ['a'] });
      assert.equal(await store.getRecord('leases', 'str'), 'plain string');
      assert.equal(await store.getRecord('leases', 'num'), 42);
      assert.equal(await store.getRecord('leases', 'x'), undefined);
      assert.deepEqual(
        (await store.listRecords('leases')).map((r) => r.key),
        ['52:54:00:00:00:01', '52:54:00:00:00:02', 'num', 'str'],
      );

      await store.putRecords('leases', [
        { key: 'num', value: 1 },
        { key: 'num', value: 2 },
      ]);
      assert.equal(await store.getRecord('leases', 'num'), 2);

      await store.deleteRecords('leases', ['str', 'num', 'missing']);
      assert.deepEqual(await store.listRecords('leases'), [
        { key: '52:54:00:00:00:01', value: { ip: '10.0.0.1', tags: ['a'] } },
        { key: '52:54:00:00:00:02', value: { ip: '10.0.0.2' } },
      ]);
      assert.deepEqual(await store.listRecords('other'), [{ key: 'x', value: true }]);
      assert.deepEqual(await store.listRecords('none'), []);
    });

    it('20 parallel updates with the same expectedVersion: exactly one succeeds, the rest get Conflict', async () => {
      const [c] = await store.write([{ op: 'create', resource: node('race', { n: -1 }) }]);
      const rv = c!.resource.metadata.resourceVersion!;
      // Separate store instances, as separate managers would be.
      const others = await Promise.all(Array.from({ length: 4 }, () => openStore(spec, dataDir)));
      try {
        const stores = [store, ...others];
        const outcomes = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) =>
            stores[i % stores.length]!.write([
              { op: 'update', resource: node('race', { n: i }), expectedVersion: rv },
            ]),
          ),
        );
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o) => o.status === 'rejected');
        assert.equal(won.length, 1, `winners: ${won.length}`);
        for (const l of lost) {
          const e = (l as PromiseRejectedResult).reason;
          assert.ok(e instanceof StrataError && e.reason === 'Conflict', String(e));
        }
        const winner = (won[0] as PromiseFulfilledResult<{ resource: Resource }[]>).value[0]!.resource;
        assert.deepEqual(await store.get('Node', 'race'), winner);
        assert.equal(winner.metadata.generation, 2);
      } finally {
        await Promise.all(others.map((s) => s.close()));
      }
    });

    it('20 parallel creates of one name: exactly one succeeds, the rest get AlreadyExists', async () => {
      const others = await Promise.all(Array.from({ length: 4 }, () => openStore(spec, dataDir)));
      try {
        const stores = [store, ...others];
        const outcomes = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) =>
            stores[i % stores.length]!.write([{ op: 'create', resource: node('race-create', { n: i }) }]),
          ),
        );
        assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
        for (const o of outcomes) {
          if (o.status === 'rejected') assert.equal((o.reason as StrataError).reason, 'AlreadyExists');
        }
      } finally {
        await Promise.all(others.map((s) => s.close()));
      }
    });

    it('logs every write as a change in version order; a versioned list names the version to watch from', async () => {
      const { resourceVersion: v0 } = await store.listVersioned('Node');
      const rvOf = (w: { resource: Resource }[]) => w[0]!.resource.metadata.resourceVersion!;
      const a = rvOf(await store.write([{ op: 'create', resource: node('log-a', {}, { app: 'x' }) }]));
      const b = rvOf(await store.write([{ op: 'update', resource: node('log-a', { v: 2 }, { app: 'x' }) }]));
      const c = rvOf(
        await store.write([{ op: 'status', kind: 'Node', name: 'log-a', status: { state: 1 } }]),
      );
      const d = rvOf(await store.write([{ op: 'delete', kind: 'Node', name: 'log-a' }]));
      await store.write([{ op: 'create', resource: { ...node('log-net'), kind: 'Network' } }]);
      const got = await store.changes({ afterRv: v0, kind: 'Node', name: 'log-a' });
      assert.ok(got !== 'expired');
      assert.deepEqual(
        got.map((ch) => [ch.type, ch.rv, ch.object.metadata.resourceVersion]),
        [
          ['ADDED', a, a],
          ['MODIFIED', b, b],
          ['MODIFIED', c, c],
          ['DELETED', d, d],
        ],
      );
      assert.deepEqual(got[1]!.object.spec, { v: 2 });
      assert.deepEqual(got[2]!.object.status, { state: 1 });
      const all = await store.changes({ afterRv: v0 });
      assert.ok(all !== 'expired');
      assert.equal(all.at(-1)!.object.kind, 'Network');
      const listed = await store.listVersioned('Network');
      assert.equal(listed.resourceVersion, all.at(-1)!.rv);
      assert.equal(await store.version(), listed.resourceVersion);
      // A page, and an empty one, name the same version.
      assert.equal(
        (await store.listVersioned('Network', { limit: 10 })).resourceVersion,
        listed.resourceVersion,
      );
      assert.deepEqual(await store.listVersioned('Nothing', { limit: 10 }), {
        items: [],
        resourceVersion: listed.resourceVersion,
      });
      assert.deepEqual(await store.listVersionedJson('Nothing', { limit: 10 }), {
        items: [],
        resourceVersion: listed.resourceVersion,
      });
      assert.deepEqual(await store.changes({ afterRv: listed.resourceVersion }), []);
    });

    it('a write of more objects than one statement carries logs and indexes every one of them', async () => {
      const n = 1201;
      const mac = (i: number) =>
        `52:54:00:bb:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      const { resourceVersion: v0 } = await store.listVersioned('Node');
      const written = await store.write(
        Array.from({ length: n }, (_, i) => ({
          op: 'create' as const,
          resource: node(`many-${i}`, { macAddresses: [mac(i)] }),
        })),
      );
      const log = await store.changes({ afterRv: v0, limit: n + 1 });
      assert.ok(log !== 'expired');
      assert.deepEqual(
        log.map((ch) => [ch.type, ch.object.metadata.name, ch.rv]),
        written.map((w) => ['ADDED', w.resource.metadata.name, w.resource.metadata.resourceVersion]),
      );
      for (const i of [0, 499, 500, 1000, n - 1])
        assert.deepEqual(
          (await store.lookup('Node', 'mac', mac(i))).map((r) => r.metadata.name),
          [`many-${i}`],
        );
      await store.write(
        Array.from({ length: n }, (_, i) => ({ op: 'delete' as const, kind: 'Node', name: `many-${i}` })),
      );
      for (const i of [0, 600, n - 1]) assert.deepEqual(await store.lookup('Node', 'mac', mac(i)), []);
    });

    it('pages a list by name with after and limit, the label filter applied before the limit', async () => {
      await store.write(
        Array.from({ length: 5 }, (_, i) => ({
          op: 'create' as const,
          resource: node(`page-${i}`, {}, i === 2 ? { page: 'no' } : { page: 'yes' }),
        })),
      );
      const names = (rs: Resource[]) => rs.map((r) => r.metadata.name);
      const sel = { labels: { page: 'yes' } };
      assert.deepEqual(names(await store.list('Node', { ...sel, limit: 2 })), ['page-0', 'page-1']);
      assert.deepEqual(names(await store.list('Node', { ...sel, after: 'page-1', limit: 2 })), [
        'page-3',
        'page-4',
      ]);
      assert.deepEqual(names((await store.listVersioned('Node', { ...sel, after: 'page-4' })).items), []);
    });

    it('versions are a cursor: a reader following the log during concurrent writes from 4 stores sees each once, in order', async () => {
      const from = await store.version();
      const others = await Promise.all(Array.from({ length: 3 }, () => openStore(spec, dataDir)));
      try {
        const stores = [store, ...others];
        const seen: string[] = [];
        let cursor = from;
        const follow = async () => {
          const ch = await store.changes({ afterRv: cursor, kind: 'Node', limit: 1000 });
          assert.ok(ch !== 'expired');
          for (const c of ch) {
            seen.push(c.rv);
            cursor = c.rv;
          }
        };
        let writing = true;
        const follower = (async () => {
          while (writing) {
            await follow();
            await new Promise((r) => setTimeout(r, 1));
          }
        })();
        const written = (
          await Promise.all(
            stores.map(async (st, i) => {
              const rvs: string[] = [];
              const [c] = await st.write([{ op: 'create', resource: node(`cursor-${i}`) }]);
              rvs.push(c!.resource.metadata.resourceVersion!);
              for (let n = 0; n < 25; n++) {
                const [u] = await st.write([
                  { op: 'status', kind: 'Node', name: `cursor-${i}`, status: { n } },
                ]);
                rvs.push(u!.resource.metadata.resourceVersion!);
              }
              return rvs;
            }),
          )
        ).flat();
        writing = false;
        await follower;
        await follow();
        assert.deepEqual(
          seen,
          [...seen].sort((x, y) => Number(x) - Number(y)),
          `versions arrive in increasing order: ${seen.join(' ')}`,
        );
        assert.equal(new Set(seen).size, seen.length, 'no change twice');
        assert.deepEqual([...seen].sort(), [...written].sort(), 'every write seen');
      } finally {
        await Promise.all(others.map((s) => s.close()));
      }
    });

    it('the log is bounded: reading from before what it keeps answers expired (relist)', async () => {
      const small = await openStore(spec, dataDir, { changeLogKeep: 8 });
      try {
        const from = await small.version();
        await small.write([{ op: 'create', resource: node('bounded') }]);
        for (let n = 0; n < 30; n++) {
          await small.write([{ op: 'status', kind: 'Node', name: 'bounded', status: { n } }]);
        }
        assert.equal(await small.changes({ afterRv: from }), 'expired');
        const now = await small.version();
        const recent = await small.changes({ afterRv: String(Number(now) - 3) });
        assert.ok(recent !== 'expired');
        assert.deepEqual(
          recent.map((c) => c.object.status),
          [{ n: 27 }, { n: 28 }, { n: 29 }],
        );
      } finally {
        await small.close();
      }
    });

    it('looks Nodes up by MAC and by address in one indexed read, following every write in its transaction', async () => {
      const names = async (s: Store, index: string, value: string) =>
        (await s.lookup('Node', index, value)).map((r) => r.metadata.name);
      await store.write([
        {
          op: 'create',
          resource: node('ix-1', {
            macAddresses: ['52:54:00:aa:00:01', '52:54:00:aa:00:02'],
            ipAddress: '10.9.0.5',
          }),
        },
        { op: 'create', resource: node('ix-2', { macAddresses: ['52:54:00:aa:00:03'] }) },
      ]);
      assert.deepEqual(await names(store, 'mac', '52:54:00:aa:00:02'), ['ix-1']);
      assert.deepEqual(await names(store, 'address', '10.9.0.5'), ['ix-1']);
      assert.deepEqual(await names(store, 'mac', '52:54:00:aa:00:99'), []);
      assert.deepEqual(await store.lookup('Node', 'mac', '52:54:00:aa:00:03'), [
        await store.get('Node', 'ix-2'),
      ]);

      // A status write indexes the addresses the node reported.
      await store.write([{ op: 'status', kind: 'Node', name: 'ix-2', status: { addresses: ['10.9.0.7'] } }]);
      assert.deepEqual(await names(store, 'address', '10.9.0.7'), ['ix-2']);

      // Moving a MAC from one node to another in one write: the index follows both.
      const ix1 = (await store.get('Node', 'ix-1'))!;
      const ix2 = (await store.get('Node', 'ix-2'))!;
      const withMacs = (r: Resource, macAddresses: string[]) => ({ ...r, spec: { ...r.spec, macAddresses } });
      await store.write([
        { op: 'update', resource: withMacs(ix1, ['52:54:00:aa:00:01']) },
        { op: 'update', resource: withMacs(ix2, ['52:54:00:aa:00:03', '52:54:00:aa:00:02']) },
      ]);
      assert.deepEqual(await names(store, 'mac', '52:54:00:aa:00:02'), ['ix-2']);
      assert.deepEqual(await names(store, 'address', '10.9.0.7'), ['ix-2'], 'status addresses kept');

      // A write that fails leaves the index as it was.
      const cur = (await store.get('Node', 'ix-1'))!;
      await rejectsWith(
        store.write([
          { op: 'update', resource: withMacs(cur, ['52:54:00:aa:00:ff']) },
          { op: 'create', resource: node('ix-2') },
        ]),
        'AlreadyExists',
      );
      assert.deepEqual(await names(store, 'mac', '52:54:00:aa:00:ff'), []);
      assert.deepEqual(await names(store, 'mac', '52:54:00:aa:00:01'), ['ix-1']);

      await store.write([{ op: 'delete', kind: 'Node', name: 'ix-2' }]);
      assert.deepEqual(await names(store, 'mac', '52:54:00:aa:00:02'), []);
      assert.deepEqual(await names(store, 'address', '10.9.0.7'), []);
      await assert.rejects(store.lookup('Node', 'colour', 'x'), /no index colour on Node/);

      // A database whose index rows predate this index version (or were lost) is re-indexed on open.
      await rawSql(
        spec,
        "DELETE FROM resource_index; UPDATE counters SET value = 0 WHERE name = 'index_version'",
      );
      assert.deepEqual(await names(store, 'mac', '52:54:00:aa:00:01'), [], 'the rows are really gone');
      const reopened = await openStore(spec, dataDir);
      try {
        assert.deepEqual(await names(reopened, 'mac', '52:54:00:aa:00:01'), ['ix-1']);
        assert.deepEqual(await names(reopened, 'address', '10.9.0.5'), ['ix-1']);
      } finally {
        await reopened.close();
      }
    });

    it('data survives closing and reopening; migrations are idempotent on reopen', async () => {
      const before = await store.list('Node');
      const events = await store.listEvents({ kind: 'Node', name: 'n1' });
      const records = await store.listRecords('leases');
      await store.close();
      await store.close(); // closing twice is harmless
      // Several instances opening at once (managers starting together) all see a migrated schema.
      const reopened = await Promise.all(Array.from({ length: 3 }, () => openStore(spec, dataDir)));
      for (const s of reopened.slice(1)) await s.close();
      store = reopened[0]!;
      assert.deepEqual(await store.list('Node'), before);
      assert.deepEqual(await store.listEvents({ kind: 'Node', name: 'n1' }), events);
      assert.deepEqual(await store.listRecords('leases'), records);
      // Versions keep increasing after a reopen.
      const maxRv = Math.max(...before.map((r) => Number(r.metadata.resourceVersion)));
      const [c] = await store.write([{ op: 'create', resource: node('after-reopen') }]);
      assert.ok(Number(c!.resource.metadata.resourceVersion) > maxRv);
    });
  });
}

describe('store conformance: migrations under concurrency', { skip: await postgresSkipReason() }, () => {
  it('several PostgreSQL stores opening an empty database at once apply each migration once', async (t) => {
    const db = await withPostgres(t);
    const stores = await Promise.all(Array.from({ length: 6 }, () => openStore(db.url, '/nonexistent')));
    try {
      await stores[0]!.write([{ op: 'create', resource: node('m') }]);
      for (const s of stores) assert.equal((await s.get('Node', 'm'))?.metadata.name, 'm');
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});

describe('PostgreSQL store: writes waiting for their turn', { skip: await postgresSkipReason() }, () => {
  it('leave the pool to reads: a get and a list are answered while more writes wait than it has connections', async () => {
    const db = await withPostgres();
    const { PostgresStore } = await import('../../../src/core/store/postgres.ts');
    const store = await PostgresStore.open(db.url, { poolSize: 2 });
    // Another manager holds the write lock (the advisory lock every write takes first, "rvs").
    const other = new pg.Client({ connectionString: db.url });
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await other.query('COMMIT');
    };
    // Lets the writes go after a while whatever happens, so a store that starves reads fails instead of hanging.
    const fallback = setTimeout(() => void release(), 10_000);
    try {
      await store.write([{ op: 'create', resource: node('seen') }]);
      await other.connect();
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock($1)', [0x727673]);
      const writes = Promise.all(
        Array.from({ length: 4 }, (_, i) => store.write([{ op: 'create', resource: node(`w-${i}`) }])),
      );
      assert.equal((await store.get('Node', 'seen'))?.metadata.name, 'seen');
      assert.deepEqual(
        (await store.listVersioned('Node')).items.map((r) => r.metadata.name),
        ['seen'],
      );
      assert.equal(released, false, 'the reads waited until the writes had the lock');
      await release();
      assert.equal((await writes).length, 4);
      assert.equal((await store.list('Node')).length, 5);
    } finally {
      clearTimeout(fallback);
      await release().catch(() => {});
      await other.end().catch(() => {});
      await store.close();
      await db.cleanup();
    }
  });
});

describe('PostgreSQL store: group commit', { skip: await postgresSkipReason() }, () => {
  const ev = (name: string, message: string): StrataEvent => ({
    time: new Date().toISOString(),
    kind: 'Node',
    name,
    source: 'test',
    type: 'Normal',
    reason: 'Seen',
    message,
  });

  it('writes and appends that queue up behind a commit share the next transaction', async () => {
    const db = await withPostgres();
    const { PostgresStore } = await import('../../../src/core/store/postgres.ts');
    const store = await PostgresStore.open(db.url);
    const sql = new pg.Client({ connectionString: db.url });
    try {
      await sql.connect();
      const out = await Promise.all(
        Array.from({ length: 40 }, (_, i) => store.write([{ op: 'create', resource: node(`g-${i}`) }])),
      );
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.appendEvents([ev(`g-${i}`, 'seen')])));
      // Rows a transaction writes outside its savepoints carry its id (xmin), as the change log's do: 40
      // writes asked for at once took at most two (the first alone, the rest grouped behind it), not 40.
      const txs = async (table: string) =>
        Number(
          (await sql.query(`SELECT count(DISTINCT xmin::text) AS n FROM ${table} WHERE name LIKE 'g-%'`))
            .rows[0].n,
        );
      assert.ok((await txs('changes')) <= 2, `${await txs('changes')} transactions for 40 writes`);
      assert.ok((await txs('events')) <= 2, `${await txs('events')} transactions for 40 appends`);
      // Each write still got its own version, in the order asked.
      const rvs = out.map((w) => Number(w[0]!.resource.metadata.resourceVersion));
      assert.deepEqual(
        rvs,
        [...rvs].sort((a, b) => a - b),
      );
      assert.equal(new Set(rvs).size, 40);
    } finally {
      await sql.end().catch(() => {});
      await store.close();
      await db.cleanup();
    }
  });

  it('a value the server refuses fails only its own write or append in a group', async () => {
    const db = await withPostgres();
    const { PostgresStore } = await import('../../../src/core/store/postgres.ts');
    const store = await PostgresStore.open(db.url);
    try {
      // JSONB refuses the NUL character: a server-side error in one write of the group.
      const writes = await Promise.allSettled([
        store.write([{ op: 'create', resource: node('r-first') }]),
        store.write([{ op: 'create', resource: node('r-a') }]),
        store.write([
          { op: 'create', resource: node('r-bad-half') },
          { op: 'create', resource: node('r-bad', { note: 'a\u0000b' }) },
        ]),
        store.write([{ op: 'create', resource: node('r-b') }]),
      ]);
      assert.deepEqual(
        writes.map((w) => w.status),
        ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
      );
      assert.equal(
        await store.get('Node', 'r-bad-half'),
        undefined,
        "the refused write's first op is undone",
      );
      assert.ok(await store.get('Node', 'r-a'));
      assert.ok(await store.get('Node', 'r-b'));
      const good = [ev('r-x', 'first'), ev('r-x', 'one'), ev('r-x', 'two')];
      const bad = { ...ev('r-x', 'bad'), data: { note: 'a\u0000b' } };
      const appends = await Promise.allSettled([
        store.appendEvents([good[0]!]),
        store.appendEvents([good[1]!]),
        store.appendEvents([bad]),
        store.appendEvents([good[2]!]),
      ]);
      assert.deepEqual(
        appends.map((a) => a.status),
        ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
      );
      const listed = await store.listEvents({ kind: 'Node', name: 'r-x' });
      assert.deepEqual(
        listed.map((e) => e.message),
        ['first', 'one', 'two'],
      );
      assert.deepEqual(
        listed.map((e) => e.id),
        good.map((e) => e.id),
        'each appended event got back the id it was stored with',
      );
    } finally {
      await store.close();
      await db.cleanup();
    }
  });
});

describe('PostgreSQL store: writes queued during an outage', { skip: await postgresSkipReason() }, () => {
  it('fail together with the one that found the server unreachable, not one connect timeout after another', async () => {
    const db = await withPostgres();
    const target = new URL(db.url);
    // A proxy to the server that, once cut, drops what it carried and holds new connections unanswered
    // (a host that does not answer), counting them.
    let cut = false;
    let attempts = 0;
    const carried = new Set<Socket>();
    const proxy = createServer((inbound) => {
      carried.add(inbound);
      inbound.on('close', () => carried.delete(inbound));
      inbound.on('error', () => {});
      if (cut) {
        attempts++;
        return;
      }
      const out = connect(Number(target.port), target.hostname);
      out.on('error', () => inbound.destroy());
      inbound.pipe(out).pipe(inbound);
      inbound.on('close', () => out.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const via = new URL(db.url);
    via.port = String((proxy.address() as AddressInfo).port);
    const { PostgresStore } = await import('../../../src/core/store/postgres.ts');
    const store = await PostgresStore.open(via.toString(), { poolSize: 4 });
    try {
      await store.write([{ op: 'create', resource: node('before') }]);
      cut = true;
      for (const s of carried) s.destroy();
      const writes = await Promise.allSettled(
        Array.from({ length: 4 }, (_, i) => store.write([{ op: 'create', resource: node(`q-${i}`) }])),
      );
      for (const w of writes) {
        assert.equal(w.status, 'rejected');
        assert.match(String((w as PromiseRejectedResult).reason), /unreachable/);
      }
      assert.ok(attempts <= 1, `${attempts} connections tried in turn for four writes`);
    } finally {
      for (const s of carried) s.destroy();
      proxy.close();
      await store.close().catch(() => {});
      await db.cleanup();
    }
  });
});

describe('openStore', () => {
  it('opens SQLite at <dataDir>/strata.db by default and rejects unknown schemes', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-open-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const s = await openStore('', dir);
    assert.equal(s.driver, 'sqlite');
    await s.write([{ op: 'create', resource: node('x') }]);
    await s.close();
    const again = await openStore(`sqlite:${join(dir, 'strata.db')}`, '/elsewhere');
    assert.equal((await again.get('Node', 'x'))?.metadata.name, 'x');
    await again.close();
    await assert.rejects(openStore('mysql://x', dir), /unknown store/);
  });
});
