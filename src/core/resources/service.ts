/**
 * Resource operations shared by the API, the CLI's server side and the managers: apply with
 * all-or-nothing semantics and a dry run, paged lists with the version to watch from, merge patch,
 * optimistic concurrency, admission (integrity across resources) on what users write, finalizer-aware
 * delete that refuses to remove what nodes still use, and change announcements. Managers' own writes
 * (status, finalizers) skip admission: a check must never keep an owner from finishing its work.
 */

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import type { EventHub } from '../events.ts';
import type { JsonItem, JsonList, Store, WriteOp } from '../store/types.ts';
import { admit, type Limits, usersOf } from './admission.ts';
import { invalid, notFound, StrataError } from './errors.ts';
import { getKind } from './kinds.ts';
import { equalities, matchesSelector, type Selector } from './selector.ts';
import type { Resource } from './types.ts';

export type ApplyAction = 'created' | 'configured' | 'unchanged';

/** Bulk work (apply, change fan-out) gives the event loop a turn after this many objects. */
const CHUNK = 250;

/** A page of a list, its objects as JSON text (Store.listVersionedJson). */
export interface JsonPage extends JsonList {
  /** Opaque token for the next page; absent on the last one. */
  continue?: string;
}

export interface PageOptions {
  selector?: Selector;
  limit?: number;
  continue?: string;
}

export class ResourceService {
  readonly store: Store;
  readonly hub: EventHub;
  /**
   * What the running platform implements (highest state with steps, providers per layer), set by the
   * composition root; checks that need it are skipped while it is unset (a bare store in tests).
   */
  limits: Limits = {};
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

  /** The objects of `kind` under `value` in a secondary index of the store (src/core/store/indexes.ts). */
  lookup<T = Resource>(kind: string, index: string, value: string): Promise<T[]> {
    return this.store.lookup(kind, index, value) as never;
  }

  /**
   * One page of a list, with the version to watch from, each object as its JSON text (the API sends the
   * stored text as it is, not parsed and serialised again; only a selector beyond label equalities parses
   * an object, for its labels). Every page of one listing reports the version of its first page (carried
   * in the token), so a client that watches from it after the last page replays whatever changed while it
   * paged, and misses nothing.
   */
  async listPageJson(kind: string, opts: PageOptions = {}): Promise<JsonPage> {
    const sel = opts.selector ?? [];
    const token = opts.continue ? decodeContinue(opts.continue) : undefined;
    const labels = equalities(sel);
    // The store filters equalities; the rest of the selector is checked here, a chunk at a time.
    const rest = sel.filter(
      (r) => !(r.op === 'in' && r.values.length === 1 && labels[r.key] === r.values[0]),
    );
    const want = opts.limit && opts.limit > 0 ? opts.limit : undefined;
    const items: JsonItem[] = [];
    let after = token?.after;
    let version: string | undefined;
    for (;;) {
      const chunk = want ? Math.max(want - items.length + 1, 100) : undefined;
      const page = await this.store.listVersionedJson(kind, {
        ...(Object.keys(labels).length ? { labels } : {}),
        ...(after !== undefined ? { after } : {}),
        ...(chunk ? { limit: chunk } : {}),
      });
      version ??= page.resourceVersion;
      for (const r of page.items)
        if (!rest.length || matchesSelector((JSON.parse(r.json) as Resource).metadata.labels, rest))
          items.push(r);
      if (!chunk || page.items.length < chunk || (want && items.length > want)) break;
      after = page.items[page.items.length - 1]!.name;
    }
    const resourceVersion = token?.rv ?? version!;
    if (want && items.length > want) {
      items.length = want;
      const last = items[want - 1]!.name;
      return { items, resourceVersion, continue: encodeContinue({ rv: resourceVersion, after: last }) };
    }
    return { items, resourceVersion };
  }

  /**
   * Creates or updates every resource in one transaction. A resource that names a resourceVersion must
   * still be at it (otherwise Conflict); one that does not replaces the stored spec, labels and
   * annotations (kubectl apply). Integrity across resources (unique MACs and addresses, what the platform
   * implements) is checked first, over the store as the apply would leave it. `dryRun` writes nothing and
   * returns the objects as they would be stored. Bulk applies give the event loop a turn every few
   * hundred objects, so the API (and /healthz) stays responsive while thousands of nodes are written.
   */
  async apply(
    resources: Resource[],
    opts: { dryRun?: boolean } = {},
  ): Promise<{ resource: Resource; action: ApplyAction }[]> {
    await this.#admit(resources);
    for (let attempt = 0; ; attempt++) {
      const ops: WriteOp[] = [];
      const plan: { action: ApplyAction; resource: Resource; op?: number }[] = [];
      const current = await this.#current(resources);
      for (const [i, r] of resources.entries()) {
        if (i % CHUNK === CHUNK - 1) await yieldToLoop();
        const cur = current.get(`${r.kind}/${r.metadata.name}`);
        if (!cur) {
          const resource = withKindFinalizers(r);
          plan.push({ action: 'created', resource, op: ops.length });
          ops.push({ op: 'create', resource });
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
          ...(cur.status ? { status: cur.status } : {}),
          metadata: {
            ...cur.metadata,
            labels: r.metadata.labels ?? {},
            annotations: r.metadata.annotations ?? {},
          },
        };
        const same =
          sameJson(cur.spec, r.spec) &&
          sameJson(cur.metadata.labels ?? {}, next.metadata.labels) &&
          sameJson(cur.metadata.annotations ?? {}, next.metadata.annotations ?? {});
        if (same && !r.metadata.resourceVersion) {
          plan.push({ action: 'unchanged', resource: cur });
          continue;
        }
        plan.push({ action: same ? 'unchanged' : 'configured', resource: next, op: ops.length });
        ops.push({
          op: 'update',
          resource: next,
          expectedVersion: r.metadata.resourceVersion ?? cur.metadata.resourceVersion!,
        });
      }
      if (opts.dryRun) return plan.map(({ action, resource }) => ({ action, resource }));
      try {
        const written = ops.length ? await this.store.write(ops) : [];
        for (const [i, w] of written.entries()) {
          if (i % CHUNK === CHUNK - 1) await yieldToLoop();
          this.hub.changed(w.op === 'create' ? 'ADDED' : 'MODIFIED', w.resource);
        }
        return plan.map(({ action, resource, op }) => ({
          action,
          resource: op === undefined ? resource : written[op]!.resource,
        }));
      } catch (e) {
        // A concurrent writer slipped in between our read and write: re-read, unless the user pinned a version.
        const pinned = resources.some((r) => r.metadata.resourceVersion);
        if (e instanceof StrataError && e.reason === 'Conflict' && !pinned && attempt < 3) continue;
        throw e;
      }
    }
  }

  /** The stored objects of an apply, read a kind at a time (one query, not one per object). */
  async #current(resources: Resource[]): Promise<Map<string, Resource>> {
    const out = new Map<string, Resource>();
    const byKind = Map.groupBy(resources, (r) => r.kind);
    for (const [kind, rs] of byKind) {
      if (rs.length < 50) {
        for (const r of rs) {
          const cur = await this.store.get(kind, r.metadata.name);
          if (cur) out.set(`${kind}/${cur.metadata.name}`, cur);
        }
        continue;
      }
      for (const cur of await this.store.list(kind)) out.set(`${kind}/${cur.metadata.name}`, cur);
    }
    return out;
  }

  /** Refuses a batch that breaks integrity across resources, with every problem named (422 Invalid). */
  async #admit(batch: Resource[]): Promise<void> {
    const issues = await admit(batch, (kind) => this.store.list(kind), this.limits, {
      get: (kind, name) => this.store.get(kind, name),
      records: (collection) => this.store.listRecords(collection),
    });
    if (issues.length) throw invalid(issues);
  }

  /** A user's replace (PUT): checked like an apply, at a known version (Conflict when stale). */
  async replace(r: Resource): Promise<Resource> {
    await this.#admit([r]);
    return this.update(r);
  }

  /**
   * JSON merge patch (RFC 7386) of labels, annotations and spec; the result is validated by `validate`
   * (the manifest rules) and checked like an apply. `metadata.resourceVersion` in the patch pins it.
   */
  async patch(
    kind: string,
    name: string,
    patch: unknown,
    validate: (doc: Record<string, unknown>) => Resource,
  ): Promise<Resource> {
    if (!isObject(patch)) {
      throw new StrataError(400, 'BadRequest', 'a merge patch must be a JSON object, like {"spec": {...}}');
    }
    const issues: string[] = [];
    for (const k of Object.keys(patch)) {
      if (!['metadata', 'spec', 'apiVersion', 'kind'].includes(k)) issues.push(k);
    }
    if (isObject(patch.metadata)) {
      for (const k of Object.keys(patch.metadata)) {
        if (!['labels', 'annotations', 'resourceVersion', 'name'].includes(k)) issues.push(`metadata.${k}`);
      }
    }
    if (issues.length) {
      throw new StrataError(
        422,
        'Invalid',
        `${kind}/${name}: ${issues.join(', ')}: a patch may change metadata.labels, metadata.annotations and spec only`,
      );
    }
    const pinned = isObject(patch.metadata) && patch.metadata.resourceVersion !== undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#patchOnce(kind, name, patch, validate);
      } catch (e) {
        // A manager wrote (status) between our read and write: patch the fresh object, unless pinned.
        if (e instanceof StrataError && e.reason === 'Conflict' && !pinned && attempt < 5) continue;
        throw e;
      }
    }
  }

  async #patchOnce(
    kind: string,
    name: string,
    patch: Record<string, unknown>,
    validate: (doc: Record<string, unknown>) => Resource,
  ): Promise<Resource> {
    const cur = await this.mustGet(kind, name);
    const doc = mergePatch(
      {
        apiVersion: cur.apiVersion,
        kind,
        metadata: {
          name,
          labels: cur.metadata.labels ?? {},
          annotations: cur.metadata.annotations ?? {},
        },
        spec: cur.spec,
      },
      patch,
    ) as Record<string, unknown>;
    const next = validate(doc);
    if (next.metadata.name !== name) {
      throw new StrataError(
        422,
        'Invalid',
        `${kind}/${name}: metadata.name: a patch cannot rename an object`,
      );
    }
    return this.replace({
      ...cur,
      spec: next.spec,
      metadata: {
        ...cur.metadata,
        labels: next.metadata.labels ?? {},
        annotations: next.metadata.annotations ?? {},
        resourceVersion: next.metadata.resourceVersion ?? cur.metadata.resourceVersion!,
      },
    });
  }

  /** Creates one resource (AlreadyExists when taken), with its kind's finalizers, and announces it. */
  async create(r: Resource): Promise<Resource> {
    await this.#admit([r]);
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
    opts: { refuseInUse?: boolean } = {},
  ): Promise<{ resource: Resource; pending: boolean }> {
    const cur = await this.mustGet(kind, name);
    if (opts.refuseInUse) {
      const users = await usersOf(cur, (k) => this.store.list(k));
      if (users.length) {
        const shown =
          users.slice(0, 10).join(', ') + (users.length > 10 ? `, … (${users.length} in all)` : '');
        throw new StrataError(
          409,
          'InUse',
          `${kind.toLowerCase()} "${name}" is used by ${users.length === 1 ? 'node' : `${users.length} nodes`} ${shown}: ` +
            'change or delete them first, or delete with --force (?force=true)',
        );
      }
    }
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

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386 JSON merge patch: objects merge key by key, `null` deletes a key, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else
      Object.defineProperty(out, k, {
        value: mergePatch(out[k], v),
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return out;
}

/** A continue token: the version of the listing's first page and the last name served. */
function encodeContinue(t: { rv: string; after: string }): string {
  return Buffer.from(JSON.stringify(t)).toString('base64url');
}

function decodeContinue(s: string): { rv: string; after: string } {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as { rv?: unknown; after?: unknown };
    if (typeof t.rv === 'string' && /^\d+$/.test(t.rv) && typeof t.after === 'string') {
      return { rv: t.rv, after: t.after };
    }
  } catch {
    // fall through
  }
  throw new StrataError(
    400,
    'BadRequest',
    'invalid continue token: pass the metadata.continue of the previous page unchanged, or list again without it',
  );
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
