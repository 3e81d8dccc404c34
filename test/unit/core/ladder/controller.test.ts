/**
 * The core controller on a real store, event hub and resource service (SQLite in memory): a burst of
 * changes to one object is reconciled once or twice (coalesced), never twice at once; a failing reconcile
 * is retried with growing backoff until it works; unchanged objects are reconciled again on resync; a
 * deleted object is reconciled by name so its controller can clean up; and a change to a kind in `resyncOn`
 * reconciles every object at once, without waiting for the resync.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventHub } from '../../../../src/core/events.ts';
import '../../../../src/core/kinds/index.ts';
import {
  type Controller,
  type ControllerSpec,
  controller,
  RESYNC_ON_MS,
} from '../../../../src/core/ladder/controller.ts';
import { silentLogger } from '../../../../src/core/log.ts';
import { ResourceService } from '../../../../src/core/resources/service.ts';
import { API_VERSION } from '../../../../src/core/resources/types.ts';
import { SqliteStore } from '../../../../src/core/store/sqlite.ts';

function core(t: { after(fn: () => Promise<void> | void): void }) {
  const store = new SqliteStore(':memory:');
  const hub = new EventHub(store, silentLogger);
  const resources = new ResourceService(store, hub);
  const started: Controller[] = [];
  t.after(async () => {
    for (const c of started) c.stop();
    await hub.flush();
    await store.close();
  });
  return {
    resources,
    async start(spec: ControllerSpec): Promise<Controller> {
      const c = controller({ hub, resources, log: silentLogger }, spec);
      started.push(c);
      await c.start();
      return c;
    },
  };
}

const key = (name: string, comment = 'c') => ({
  apiVersion: API_VERSION,
  kind: 'SSHKey',
  metadata: { name },
  spec: {
    publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJ3b4Jt8xW6bRkq2s8C1p7vGx1VxJ1r2lq7oXn0e1Yd',
    comment,
  },
});

async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A controller of SSHKeys that also resyncs on Node changes, noting each reconcile in `seen`. */
const keysFollowingNodes = (c: ReturnType<typeof core>, seen: string[]) =>
  c.start({
    kind: 'SSHKey',
    resyncOn: ['Node'],
    resyncMs: 60_000,
    reconcile: async (name) => void seen.push(name),
  });

describe('controller', () => {
  it('coalesces a burst of changes to one object and never runs it twice at once', async (t) => {
    const c = core(t);
    const seen: string[] = [];
    let active = 0;
    let overlapped = false;
    const ctl = await c.start({
      kind: 'SSHKey',
      resyncMs: 60_000,
      reconcile: async (name) => {
        if (++active > 1) overlapped = true;
        const k = await c.resources.get('SSHKey', name);
        await new Promise((r) => setTimeout(r, 30));
        seen.push(String((k?.spec as { comment?: string } | undefined)?.comment));
        active--;
      },
    });
    for (let i = 0; i < 20; i++) await c.resources.apply([key('k1', `v${i}`)]);
    await until('the last version reconciled', () => seen.at(-1) === 'v19');
    await ctl.whenIdle();
    assert.equal(overlapped, false, 'one object is never reconciled twice at once');
    assert.ok(seen.length < 20, `20 changes, ${seen.length} reconciles`);
    assert.equal(seen.at(-1), 'v19');
  });

  it('retries a failing reconcile with growing backoff until it works', async (t) => {
    const c = core(t);
    const tries: number[] = [];
    await c.start({
      kind: 'SSHKey',
      resyncMs: 60_000,
      backoffBaseMs: 40,
      reconcile: async () => {
        tries.push(Date.now());
        if (tries.length <= 3) throw new Error('not yet');
      },
    });
    await c.resources.apply([key('k2')]);
    await until('the fourth try', () => tries.length >= 4);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(tries.length, 4, 'no more tries once it worked');
    // Attempt n waits at least half of base·2^(n-1) (full jitter over the upper half).
    for (let i = 1; i < 4; i++) assert.ok(tries[i]! - tries[i - 1]! >= 20 * 2 ** (i - 1) - 2);
  });

  it('reconciles unchanged objects again on resync, and deleted ones by name', async (t) => {
    const c = core(t);
    const seen: string[] = [];
    await c.resources.apply([key('k3')]);
    await c.start({
      kind: 'SSHKey',
      resyncMs: 50,
      reconcile: async (name) => {
        seen.push(`${name}:${(await c.resources.get('SSHKey', name)) ? 'present' : 'gone'}`);
      },
    });
    await until('three resyncs', () => seen.filter((s) => s === 'k3:present').length >= 3);
    await c.resources.delete('SSHKey', 'k3');
    await until('the deletion reconciled', () => seen.includes('k3:gone'));
  });

  it('reconciles every object when an object of a kind in resyncOn changes', async (t) => {
    const c = core(t);
    const seen: string[] = [];
    await c.resources.apply([key('k4'), key('k5')]);
    await keysFollowingNodes(c, seen);
    await until('the first pass', () => seen.length === 2);
    await c.resources.apply([
      { apiVersion: API_VERSION, kind: 'Node', metadata: { name: 'n1' }, spec: { ipAddress: '10.0.0.1' } },
    ]);
    await until('both keys again', () => seen.length === 4);
    assert.deepEqual(seen.slice(2).sort(), ['k4', 'k5']);
  });

  it('answers a burst of changes to a resyncOn kind with one list, not one per change', async (t) => {
    const c = core(t);
    const seen: string[] = [];
    await c.resources.apply([key('k6')]);
    let lists = 0;
    const list = c.resources.list.bind(c.resources);
    c.resources.list = ((kind: string, labels?: Record<string, string>) => {
      if (kind === 'SSHKey') lists++;
      return list(kind, labels);
    }) as typeof c.resources.list;
    await keysFollowingNodes(c, seen);
    await until('the first pass', () => seen.length === 1);
    const nodes = Array.from({ length: 300 }, (_, i) => ({
      apiVersion: API_VERSION,
      kind: 'Node',
      metadata: { name: `burst-${i}` },
      spec: { ipAddress: `10.0.${1 + (i >> 8)}.${i & 255}` },
    }));
    await c.resources.apply(nodes);
    await until('the key again', () => seen.length === 2);
    await new Promise((r) => setTimeout(r, 3 * RESYNC_ON_MS));
    assert.deepEqual(seen, ['k6', 'k6']);
    // One list at start, then one (or two, when the burst spans the coalescing window) for 300 changes.
    assert.ok(lists >= 2 && lists <= 3, `${lists} lists of SSHKey`);
  });
});
