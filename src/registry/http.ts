/**
 * The read side of the registry protocol, shared by both scopes: the global registry mounts it on the
 * manager's API router (behind a token check), a site's local registry on its own router served from the
 * boot worker's HTTP server. Each scope supplies a `RegistrySource`: the global one reads its store, the
 * local one pulls through. Blob bodies stream out verified; a blob found corrupted mid-stream ends the
 * connection before the last chunk, so the client sees a short body, never complete wrong bytes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Router, routeContext, sendError, sendJson } from '../core/http.ts';
import type { Logger } from '../core/log.ts';
import { StrataError } from '../core/resources/errors.ts';
import { mustDigest, mustName, mustVersion } from './digest.ts';
import { DIGEST_HEADER } from './protocol.ts';
import type { ArtifactRef } from './store.ts';

export interface RegistrySource {
  listRefs(): Promise<{ items: ArtifactRef[]; offline?: boolean }>;
  getRef(name: string, version: string): Promise<ArtifactRef | undefined>;
  openBlob(digest: string): Promise<{ size: number; stream: Readable } | undefined>;
}

export function refParams(params: Record<string, string>): { name: string; version: string } {
  return { name: mustName(params.name ?? ''), version: mustVersion(params.version ?? '') };
}

const missingBlob = (digest: string) =>
  new StrataError(404, 'NotFound', `blob ${digest} is not in the registry`);

/** Adds GET refs, GET refs/:name/:version and GET/HEAD blobs/:digest under `base`. */
export function addReadRoutes(
  router: Router,
  base: string,
  source: RegistrySource,
  opts: { authorize?: (req: IncomingMessage) => Promise<void>; log: Logger },
): void {
  const guard = async (req: IncomingMessage) => opts.authorize?.(req);
  const pub = { public: true };
  router.add(
    'GET',
    `${base}/refs`,
    async ({ req, res }) => {
      await guard(req);
      const { items, offline } = await source.listRefs();
      if (offline) res.setHeader('x-strata-registry', 'offline');
      return { kind: 'ArtifactList', items };
    },
    pub,
  );
  router.add(
    'GET',
    `${base}/refs/:name/:version`,
    async ({ req, params }) => {
      await guard(req);
      const { name, version } = refParams(params);
      const ref = await source.getRef(name, version);
      if (!ref) throw new StrataError(404, 'NotFound', `artifact ${name}:${version} is not in the registry`);
      return ref;
    },
    pub,
  );
  router.add(
    'GET',
    `${base}/blobs/:digest`,
    async ({ req, res, params }) => {
      await guard(req);
      const digest = mustDigest(params.digest ?? '');
      const blob = await source.openBlob(digest);
      if (!blob) throw missingBlob(digest);
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': blob.size,
        etag: `"${digest}"`,
        'cache-control': 'public, max-age=31536000, immutable',
        [DIGEST_HEADER]: digest,
      });
      if (req.method === 'HEAD') {
        blob.stream.destroy();
        res.end();
        return;
      }
      try {
        await pipeline(blob.stream, res);
      } catch (err) {
        opts.log.warn('blob transfer ended early', { digest, err: (err as Error).message });
        res.destroy();
      }
    },
    pub,
  );
}

/** Serves `router` on a bare node:http request (the local registry has no API server around it). */
export async function serveRouter(
  router: Router,
  req: IncomingMessage,
  res: ServerResponse,
  log: Logger,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const method = req.method ?? 'GET';
  try {
    const m = router.match(method, url.pathname);
    if (m === 'method')
      throw new StrataError(405, 'MethodNotAllowed', `${method} is not allowed on ${url.pathname}`);
    if (!m) throw new StrataError(404, 'NotFound', `no route for ${url.pathname}`);
    const ctx = routeContext(req, res, m.params, url.searchParams);
    const out = await m.route.handler(ctx);
    if (!res.headersSent && !res.writableEnded) sendJson(res, 200, out ?? {});
  } catch (err) {
    sendError(res, err, log);
  }
}
