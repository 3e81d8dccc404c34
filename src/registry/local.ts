/**
 * A site's local registry: served by the segment's boot worker over HTTP under /registry/, so nodes fetch
 * artifacts from their own segment and never from outside it. It is a pull-through cache of the global
 * registry: a blob it lacks is fetched from the global one, verified against its digest while it is
 * written, and kept; a reference is asked of the global registry when it answers and served from the
 * cache when it does not, so a site keeps working while the global registry is away (what it has, it
 * serves; what it never had, it says plainly it cannot get). Blobs are immutable, so a cached blob never
 * needs revalidation; only references can move, and they are refreshed whenever the global one answers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Router } from '../core/http.ts';
import type { Logger } from '../core/log.ts';
import { counter } from '../core/metrics.ts';
import { StrataError } from '../core/resources/errors.ts';
import type { Transport } from '../core/transport/types.ts';
import { RegistryClient, RegistryHttpError } from './client.ts';
import { DigestMismatchError } from './digest.ts';
import { addReadRoutes, type RegistrySource, serveRouter } from './http.ts';
import { LOCAL_REGISTRY_BASE, subjects, type UpstreamInfo } from './protocol.ts';
import { type ArtifactStore, FileRefs, openArtifactStore } from './store.ts';

const pulls = counter(
  'strata_registry_pull_through_total',
  'Local registry fetches from the global registry',
  ['result'],
);

export interface LocalRegistryOptions {
  /** Cache directory (blobs and cached references). */
  root: string;
  /** The global registry, asked on every reference lookup and blob miss; undefined = not configured. */
  upstream: () => Promise<UpstreamInfo | undefined>;
  log: Logger;
  /** Metadata calls to the global registry give up after this long (the site then serves its cache). */
  upstreamTimeoutMs?: number;
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

  const client = async (): Promise<RegistryClient | undefined> => {
    const up = await o.upstream().catch(() => undefined);
    if (!up?.url) return undefined;
    return new RegistryClient({ url: up.url, token: up.token, timeoutMs: o.upstreamTimeoutMs ?? 5_000 });
  };

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
            `blob ${digest} is not cached at this site and no global registry is configured`,
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
  return {
    store,
    handle: (req, res) => void serveRouter(router, req, res, log),
  };
}

/**
 * Where the global registry is, for a worker: asked of the manager over the transport (which answers from
 * its STRATA_REGISTRY_URL and its pull token), remembered for a minute, and the last answer kept while the
 * manager does not answer.
 */
export function upstreamFromManager(transport: Transport): () => Promise<UpstreamInfo | undefined> {
  let cached: { at: number; info: UpstreamInfo } | undefined;
  return async () => {
    if (cached && Date.now() - cached.at < 60_000) return cached.info;
    try {
      const info = await transport.request<Record<string, never>, UpstreamInfo>(
        subjects.upstream,
        {},
        { timeout: 3_000 },
      );
      cached = { at: Date.now(), info };
      return info;
    } catch {
      return cached?.info;
    }
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
