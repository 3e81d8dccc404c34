/**
 * Resource operations shared by the API, the CLI's server side and the managers: validation, apply with
 * all-or-nothing semantics, optimistic concurrency, finalizer-aware delete, and change announcements.
 */

import { isDeepStrictEqual } from 'node:util';
import type { EventHub } from '../events.ts';
import type { Store, WriteOp } from '../store/types.ts';
import { notFound, StrataError } from './errors.ts';
import { getKind } from './kinds.ts';
import type { Resource } from './types.ts';

export type ApplyAction = 'created' | 'configured' | 'unchanged';

export class ResourceService {
  readonly store: Store;
  readonly hub: EventHub;
  constructor(store: Store, hub: EventHub) {
    this.store = store;
    this.hub = hub;
  }

  get<T = Resource>(kind: string, name: string): Promise<T | undefined> {
    return this.store.get(kind, name) as never;
  }

  async mustGet(kind: string, name: string): Promise<Resource> {
    const r = await this.store.get(kind, name);
    if (!r) throw notFound(kind, name);
    return r;
  }

  list<T = Resource>(kind: string, labels?: Record<string, string>): Promise<T[]> {
    return this.store.list(kind, labels ? { labels } : undefined) as never;
  }

  /**
   * Creates or updates every resource in one transaction. A resource that names a resourceVersion must
   * still be at it (otherwise Conflict); one that does not replaces the stored spec (kubectl apply).
   */
  async apply(resources: Resource[]): Promise<{ resource: Resource; action: ApplyAction }[]> {
    for (let attempt = 0; ; attempt++) {
      const ops: WriteOp[] = [];
      const actions: ApplyAction[] = [];
      const unchanged = new Map<number, Resource>();
      for (const r of resources) {
        const cur = await this.store.get(r.kind, r.metadata.name);
        if (!cur) {
          ops.push({ op: 'create', resource: withKindFinalizers(r) });
          actions.push('created');
          continue;
        }
        if (cur.metadata.deletionTimestamp) {
          throw new StrataError(
            409,
            'Conflict',
            `${r.kind.toLowerCase()} "${r.metadata.name}" is being deleted; wait until it is gone, then apply again`,
          );
        }
        const next: Resource = {
          ...r,
          metadata: {
            ...cur.metadata,
            labels: r.metadata.labels ?? {},
            ...(r.metadata.annotations ? { annotations: r.metadata.annotations } : {}),
          },
        };
        const same =
          sameJson(cur.spec, r.spec) &&
          sameJson(cur.metadata.labels ?? {}, next.metadata.labels) &&
          sameJson(cur.metadata.annotations ?? {}, next.metadata.annotations ?? {});
        if (same && !r.metadata.resourceVersion) {
          unchanged.set(actions.length, cur);
          actions.push('unchanged');
          continue;
        }
        ops.push({
          op: 'update',
          resource: next,
          expectedVersion: r.metadata.resourceVersion ?? cur.metadata.resourceVersion!,
        });
        actions.push(same ? 'unchanged' : 'configured');
      }
      try {
        const written = ops.length ? await this.store.write(ops) : [];
        let w = 0;
        return actions.map((action, i) => {
          const kept = unchanged.get(i);
          if (kept) return { resource: kept, action };
          const res = written[w++]!;
          this.hub.changed(res.op === 'create' ? 'ADDED' : 'MODIFIED', res.resource);
          return { resource: res.resource, action };
        });
      } catch (e) {
        // A concurrent writer slipped in between our read and write: re-read, unless the user pinned a version.
        const pinned = resources.some((r) => r.metadata.resourceVersion);
        if (e instanceof StrataError && e.reason === 'Conflict' && !pinned && attempt < 3) continue;
        throw e;
      }
    }
  }

  /** Creates one resource (AlreadyExists when taken), with its kind's finalizers, and announces it. */
  async create(r: Resource): Promise<Resource> {
    const [res] = await this.store.write([{ op: 'create', resource: withKindFinalizers(r) }]);
    this.hub.changed('ADDED', res!.resource);
    return res!.resource;
  }

  /** Read-modify-write of status with retry on conflict; `fn` returns the new status or undefined to skip. */
  async patchStatus<S extends object>(
    kind: string,
    name: string,
    fn: (status: S, r: Resource) => S | undefined,
  ): Promise<Resource | undefined> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.store.get(kind, name);
      if (!cur) return undefined;
      const next = fn(structuredClone((cur.status ?? {}) as S), cur);
      if (next === undefined) return cur;
      try {
        const [res] = await this.store.write([
          {
            op: 'status',
            kind,
            name,
            status: next as Record<string, unknown>,
            expectedVersion: cur.metadata.resourceVersion!,
          },
        ]);
        this.hub.changed('MODIFIED', res!.resource);
        return res!.resource;
      } catch (e) {
        if (e instanceof StrataError && e.reason === 'Conflict') continue;
        throw e;
      }
    }
    throw new StrataError(
      409,
      'Conflict',
      `could not update status of ${kind} "${name}": too many concurrent writers`,
    );
  }

  /** Updates metadata and spec at a known version (Conflict when stale). */
  async update(r: Resource): Promise<Resource> {
    const ops: WriteOp[] = [
      r.metadata.resourceVersion
        ? { op: 'update', resource: r, expectedVersion: r.metadata.resourceVersion }
        : { op: 'update', resource: r },
    ];
    const [res] = await this.store.write(ops);
    this.hub.changed('MODIFIED', res!.resource);
    return res!.resource;
  }

  /**
   * Deletes a resource. One with finalizers is only marked (deletionTimestamp) and its owner undoes what it
   * made, then calls `removeFinalizer`; the last removal deletes it.
   */
  async delete(
    kind: string,
    name: string,
    expectedVersion?: string,
  ): Promise<{ resource: Resource; pending: boolean }> {
    const cur = await this.mustGet(kind, name);
    if (cur.metadata.finalizers?.length) {
      if (cur.metadata.deletionTimestamp) return { resource: cur, pending: true };
      const marked = await this.update({
        ...cur,
        metadata: {
          ...cur.metadata,
          deletionTimestamp: new Date().toISOString(),
          resourceVersion: expectedVersion ?? cur.metadata.resourceVersion!,
        },
      });
      return { resource: marked, pending: true };
    }
    const [res] = await this.store.write([
      expectedVersion ? { op: 'delete', kind, name, expectedVersion } : { op: 'delete', kind, name },
    ]);
    this.hub.changed('DELETED', res!.resource);
    return { resource: res!.resource, pending: false };
  }

  async removeFinalizer(kind: string, name: string, finalizer: string): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.store.get(kind, name);
      if (!cur) return;
      const rest = (cur.metadata.finalizers ?? []).filter((f) => f !== finalizer);
      try {
        if (!rest.length && cur.metadata.deletionTimestamp) {
          const [res] = await this.store.write([
            { op: 'delete', kind, name, expectedVersion: cur.metadata.resourceVersion! },
          ]);
          this.hub.changed('DELETED', res!.resource);
        } else {
          await this.update({ ...cur, metadata: { ...cur.metadata, finalizers: rest } });
        }
        return;
      } catch (e) {
        if (e instanceof StrataError && e.reason === 'Conflict') continue;
        throw e;
      }
    }
  }
}

/** Equal as JSON values, whatever the key order (PostgreSQL's JSONB does not keep it). */
function sameJson(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(JSON.parse(JSON.stringify(a ?? null)), JSON.parse(JSON.stringify(b ?? null)));
}

/** A new object carries its kind's finalizers, so its owner gets to undo its work before it goes away. */
function withKindFinalizers(r: Resource): Resource {
  const finalizers = [...new Set([...(r.metadata.finalizers ?? []), ...(getKind(r.kind)?.finalizers ?? [])])];
  return finalizers.length ? { ...r, metadata: { ...r.metadata, finalizers } } : r;
}
