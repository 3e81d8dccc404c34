/**
 * A site's local registry: served by the segment's boot worker over HTTP under /registry/, so nodes fetch
 * artifacts from their own segment and never from outside it. It is a pull-through cache of the global
 * registry: a blob it lacks is fetched from the global one, verified against its digest while it is
 * written, and kept; a reference is asked of the global registry when it answers and served from the
 * cache when it does not, so a site keeps working while the global registry is away (what it has, it
 * serves; what it never had, it says plainly it cannot get). Blobs are immutable, so a cached blob never
 * needs revalidation; only references can move, and they are refreshed whenever the global one answers.
 * Container images come the same way, under /registry/v2/ (oci.ts): a read-only mirror of the global
 * registry's /v2/, the one a node's containerd is pointed at (containerd.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Router } from '../core/http.ts';
import type { Logger } from '../core/log.ts';
import { counter } from '../core/metrics.ts';
import { StrataError } from '../core/resources/errors.ts';
import type { Transport } from '../core/transport/types.ts';
import { RegistryClient, RegistryHttpError } from './client.ts';
import { DigestMismatchError } from './digest.ts';
import { addReadRoutes, type RegistrySource, serveRouter } from './http.ts';
import { addOciRoutes } from './oci.ts';
import { LOCAL_OCI_PREFIX } from './oci-spec.ts';
import {
  type ChunkReply,
  LOCAL_REGISTRY_BASE,
  READ_CHUNK,
  type ReadRequest,
  subjects,
  type UpstreamInfo,
} from './protocol.ts';
import { type ArtifactRef, type ArtifactStore, FileRefs, openArtifactStore } from './store.ts';

const pulls = counter(
  'strata_registry_pull_through_total',
  'Local registry fetches from the global registry',
  ['result'],
);

/**
 * What a local registry reads from the global one: its HTTP client (RegistryClient), or the same reads
 * over the manager's transport. Failures are RegistryHttpErrors: status 0 or 5xx = away, 404 = not there.
 */
export interface Upstream {
  listRefs(): Promise<ArtifactRef[]>;
  getRef(name: string, version: string): Promise<ArtifactRef>;
  openBlob(digest: string): Promise<{ size: number; stream: Readable }>;
}

export interface LocalRegistryOptions {
  /** Cache directory (blobs and cached references). */
  root: string;
  /** The global registry, asked on every reference lookup and blob miss; undefined = not configured. */
  upstream: () => Promise<Upstream | undefined>;
  log: Logger;
}

export interface LocalRegistry {
  readonly store: ArtifactStore;
  /** Handles a request whose path starts with /registry/. */
  handle(req: IncomingMessage, res: ServerResponse): void;
}

/** True for "the global registry did not answer", as opposed to "it answered no". */
function away(e: unknown): boolean {
  return e instanceof RegistryHttpError && (e.status === 0 || e.status >= 500);
}

export async function createLocalRegistry(o: LocalRegistryOptions): Promise<LocalRegistry> {
  const log = o.log.child({ component: 'local-registry' });
  const store = await openArtifactStore({
    root: o.root,
    refs: new FileRefs(join(o.root, 'refs.json')),
    dropCorrupt: true,
    onCorrupt: (digest) =>
      log.error('cached blob no longer matches its digest: dropped, will refetch', { digest }),
  });
  const inflight = new Map<string, Promise<void>>();

  const client = (): Promise<Upstream | undefined> => o.upstream().catch(() => undefined);

  /** Fetches one blob from the global registry into the cache (once, however many ask at the same time). */
  const pull = (digest: string): Promise<void> => {
    let p = inflight.get(digest);
    if (!p) {
      p = (async () => {
        const c = await client();
        if (!c) {
          throw new StrataError(
            503,
            'ServiceUnavailable',
            `blob ${digest} is not cached at this site and no global registry is known`,
          );
        }
        try {
          const blob = await c.openBlob(digest);
          await store.putBlob(blob.stream, digest);
          pulls.inc({ result: 'ok' });
          log.info('pulled through from the global registry', { digest });
        } catch (e) {
          pulls.inc({ result: e instanceof DigestMismatchError ? 'mismatch' : 'error' });
          if (e instanceof DigestMismatchError) {
            throw new StrataError(502, 'DigestMismatch', `the global registry sent bad bytes: ${e.message}`);
          }
          if (e instanceof RegistryHttpError && e.status === 404) {
            throw new StrataError(
              404,
              'NotFound',
              `blob ${digest} is in neither this site's nor the global registry`,
            );
          }
          if (away(e)) {
            throw new StrataError(
              503,
              'ServiceUnavailable',
              `blob ${digest} is not cached at this site and the global registry is away (${(e as Error).message})`,
            );
          }
          // The transfer broke off: the global registry stops a blob it finds corrupted before its end.
          throw new StrataError(
            502,
            'BadGateway',
            `fetching blob ${digest} from the global registry failed: ${(e as Error).message}; nothing was cached`,
          );
        }
      })().finally(() => inflight.delete(digest));
      inflight.set(digest, p);
    }
    return p;
  };

  const source: RegistrySource = {
    async listRefs() {
      const c = await client();
      if (c) {
        try {
          return { items: await c.listRefs() };
        } catch (e) {
          if (!away(e)) throw e;
        }
      }
      return { items: await store.refs.list(), offline: true };
    },
    async getRef(name, version) {
      const c = await client();
      if (c) {
        try {
          const ref = await c.getRef(name, version);
          await store.refs.put(ref);
          return ref;
        } catch (e) {
          if (e instanceof RegistryHttpError && e.status === 404) {
            // The global registry is the authority while it answers: a reference it dropped goes here too.
            await store.refs.delete(name, version);
            return undefined;
          }
          if (!away(e)) throw e;
          log.warn('global registry away: serving the cached reference', { ref: `${name}:${version}` });
        }
      }
      return store.refs.get(name, version);
    },
    async openBlob(digest) {
      const have = await store.openBlob(digest);
      if (have) return have;
      await pull(digest);
      return store.openBlob(digest);
    },
  };

  const router = new Router();
  addReadRoutes(router, LOCAL_REGISTRY_BASE, source, { log });
  // Images: the same pull-through, read-only; tags and manifests are references, layers blobs.
  addOciRoutes(router, {
    prefix: LOCAL_OCI_PREFIX,
    source: {
      store,
      getRef: (name, version) => source.getRef(name, version),
      listRefs: async () => (await source.listRefs()).items,
      haveBlob: async (digest) => {
        if (await store.backend.stat(digest)) return true;
        try {
          await pull(digest);
          return true;
        } catch (e) {
          if (e instanceof StrataError && e.status === 404) return false;
          throw e;
        }
      },
    },
    log,
  });
  return {
    store,
    handle: (req, res) => void serveRouter(router, req, res, log),
  };
}

/** The global registry's reads over the manager's transport, for sites that cannot reach its API. */
export class TransportUpstream implements Upstream {
  readonly #transport: Transport;
  readonly #timeout: number;
  constructor(transport: Transport, timeoutMs = 5_000) {
    this.#transport = transport;
    this.#timeout = timeoutMs;
  }

  async #read<T>(r: ReadRequest, timeout = this.#timeout): Promise<T> {
    try {
      return await this.#transport.request<ReadRequest, T>(subjects.read, r, { timeout });
    } catch (e) {
      const st = e as { status?: number; reason?: string; message?: string };
      throw new RegistryHttpError(
        typeof st.status === 'number' ? st.status : 0,
        st.reason ?? 'Unreachable',
        `global registry over the transport: ${st.message ?? String(e)}`,
      );
    }
  }

  listRefs(): Promise<ArtifactRef[]> {
    return this.#read({ op: 'list' });
  }

  getRef(name: string, version: string): Promise<ArtifactRef> {
    return this.#read({ op: 'ref', name, version });
  }

  async openBlob(digest: string): Promise<{ size: number; stream: Readable }> {
    const first = await this.#read<ChunkReply>({ op: 'chunk', digest, offset: 0, length: READ_CHUNK });
    const read = (offset: number) =>
      this.#read<ChunkReply>({ op: 'chunk', digest, offset, length: READ_CHUNK }, 60_000);
    async function* chunks(): AsyncGenerator<Buffer> {
      let offset = 0;
      let reply = first;
      for (;;) {
        const data = Buffer.from(reply.data, 'base64');
        if (data.length) yield data;
        offset += data.length;
        if (offset >= first.size || data.length === 0) return;
        reply = await read(offset);
      }
    }
    return { size: first.size, stream: Readable.from(chunks(), { objectMode: false }) };
  }
}

/**
 * The global registry as a worker reaches it: asked of the manager over the transport (which answers with
 * its STRATA_REGISTRY_URL, if set, and its pull token; remembered for a minute, the last answer kept while
 * the manager does not answer). With an address, over HTTP; without one, over the transport itself.
 */
export function upstreamFromManager(transport: Transport, timeoutMs = 5_000): () => Promise<Upstream> {
  let cached: { at: number; info: UpstreamInfo } | undefined;
  return async () => {
    if (!cached || Date.now() - cached.at >= 60_000) {
      try {
        const info = await transport.request<Record<string, never>, UpstreamInfo>(
          subjects.upstream,
          {},
          { timeout: 3_000 },
        );
        cached = { at: Date.now(), info };
      } catch {
        // The manager is away: keep what it said last (its registry may still answer over HTTP).
      }
    }
    const info = cached?.info;
    if (info?.url) return new RegistryClient({ url: info.url, token: info.token, timeoutMs });
    return new TransportUpstream(transport, timeoutMs);
  };
}

/**
 * The boot worker's hook: the segment's local registry, cached in `<dataDir>/registry-cache/<network>` (one
 * cache per segment worker, so two worker processes never write one reference file), its upstream asked of
 * the manager.
 */
export function startLocalRegistry(o: {
  dataDir: string;
  network: string;
  transport: Transport;
  log: Logger;
}): Promise<LocalRegistry> {
  return createLocalRegistry({
    root: join(o.dataDir, 'registry-cache', o.network),
    upstream: upstreamFromManager(o.transport),
    log: o.log,
  });
}
