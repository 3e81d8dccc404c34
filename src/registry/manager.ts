/**
 * The registry layer's manager: the global registry, served on the manager's API under
 * /api/v1/registry (see protocol.ts), with references as records of the Strata store and blobs in the
 * configured backend (STRATA_REGISTRY_BACKEND: a directory under the data dir by default, or
 * s3://BUCKET/PREFIX). Writes need the admin token; reads take the admin token or the registry's own
 * read-only pull token, which sites' local registries get from the manager over the transport together with
 * the global registry's address (STRATA_REGISTRY_URL: how sites reach this API). Without an address the
 * same reads are answered over the transport (`registry.read`). Local registries run inside the boot
 * workers (local.ts), so this layer has no worker role of its own.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { ManagerContext, Stoppable } from '../core/layer.ts';
import { StrataError } from '../core/resources/errors.ts';
import { seconds } from '../core/resources/fields.ts';
import type { Store } from '../core/store/types.ts';
import { hashToken, tokenMatches } from '../core/tokens.ts';
import { API_TOKENS_COLLECTION as API_TOKENS, SECRETS_COLLECTION as SECRETS } from '../core/wire.ts';
import { mustDigest, mustName, mustVersion } from './digest.ts';
import { addReadRoutes, refParams } from './http.ts';
import { addOciRoutes, OciError } from './oci.ts';
import { OCI_PREFIX } from './oci-spec.ts';
import {
  type ChunkReply,
  type GcReport,
  PULL_TOKEN_KEY,
  READ_CHUNK,
  REGISTRY_API_BASE,
  type ReadRequest,
  subjects,
  type UpstreamInfo,
} from './protocol.ts';
import { type ArtifactStore, openArtifactStore, StoreRefs } from './store.ts';

/** The registry's read-only pull token, made on first start and kept as a secret record. */
export async function ensurePullToken(store: Store): Promise<string> {
  const rec = (await store.getRecord(SECRETS, PULL_TOKEN_KEY)) as { token?: string } | undefined;
  if (rec?.token) return rec.token;
  const token = `strata_pull_${randomBytes(24).toString('base64url')}`;
  await store.putRecords(SECRETS, [
    { key: PULL_TOKEN_KEY, value: { token, createdAt: new Date().toISOString() } },
  ]);
  return token;
}

function readAuthorizer(store: Store, pullToken: string) {
  const pullHash = hashToken(pullToken);
  return async (req: IncomingMessage): Promise<void> => {
    const header = req.headers.authorization;
    if (tokenMatches(pullHash, header)) return;
    for (const r of await store.listRecords(API_TOKENS)) {
      if (tokenMatches((r.value as { hash?: string }).hash, header)) return;
    }
    throw new StrataError(
      401,
      'Unauthorized',
      'missing or invalid bearer token: the registry takes the admin token or its pull token',
    );
  };
}

/** The token in `Authorization: Bearer T` or `Basic base64(ANY:T)` (how skopeo and containerd send one). */
export function tokenOf(header: string | undefined): string | undefined {
  if (header?.startsWith('Bearer ')) return header.slice(7).trim();
  if (!header?.startsWith('Basic ')) return undefined;
  const pair = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const i = pair.indexOf(':');
  return i >= 0 ? pair.slice(i + 1) : undefined;
}

/**
 * Who may do what on the image endpoints (oci.ts): pulls take the pull token or any API token, pushes an
 * admin token (as the artifact writes do). Tokens come as Bearer or as a Basic password, since container
 * clients answer a Basic challenge with the credentials they are given (`skopeo --creds strata:TOKEN`).
 */
function ociAuthorizer(store: Store, pullToken: string) {
  const pullHash = hashToken(pullToken);
  return async (req: IncomingMessage, need: 'pull' | 'push'): Promise<void> => {
    const token = tokenOf(req.headers.authorization);
    const bearer = token === undefined ? undefined : `Bearer ${token}`;
    let role: string | undefined;
    if (tokenMatches(pullHash, bearer)) role = 'pull';
    else if (bearer) {
      const admin = (await store.getRecord(API_TOKENS, 'admin')) as { hash?: string } | undefined;
      if (tokenMatches(admin?.hash, bearer)) role = 'admin';
      else {
        const rec = (await store.getRecord(API_TOKENS, `sha256:${hashToken(token!)}`)) as
          | { role?: string; networks?: string[] }
          | undefined;
        if (rec) role = rec.networks ? 'scoped' : rec.role;
      }
    }
    if (!role)
      throw new OciError(
        401,
        'UNAUTHORIZED',
        'missing or invalid token: give an API token or the registry pull token as a Bearer token or as the Basic password',
      );
    if (need === 'push' && role !== 'admin')
      throw new OciError(403, 'DENIED', 'pushing images needs an admin token without network limits');
  };
}

/** `30s`, `10m`, `2h`, `1d` or plain seconds → milliseconds. */
export function parseMinAge(v: string): number {
  if (!/^\d+[smhd]?$/.test(v)) {
    throw new StrataError(
      400,
      'BadRequest',
      `minAge: "${v}" is not a duration: expected seconds or one like 30s, 10m, 2h, 1d`,
    );
  }
  return seconds(/\d$/.test(v) ? Number(v) : v) * 1000;
}

function routes(ctx: ManagerContext, artifacts: ArtifactStore, pullToken: string): void {
  const base = REGISTRY_API_BASE;
  addReadRoutes(
    ctx.router,
    base,
    {
      listRefs: async () => ({ items: await artifacts.refs.list() }),
      getRef: (name, version) => artifacts.refs.get(name, version),
      openBlob: (digest) => artifacts.openBlob(digest),
    },
    { authorize: readAuthorizer(ctx.store, pullToken), log: ctx.log },
  );
  addOciRoutes(ctx.router, {
    prefix: OCI_PREFIX,
    source: {
      store: artifacts,
      getRef: (name, version) => artifacts.refs.get(name, version),
      listRefs: () => artifacts.refs.list(),
      haveBlob: async (digest) => !!(await artifacts.backend.stat(digest)),
    },
    uploadsDir: join(ctx.dataDir, 'registry', 'uploads'),
    authorize: ociAuthorizer(ctx.store, pullToken),
    log: ctx.log,
  });
  ctx.router.add('PUT', `${base}/blobs/:digest`, async ({ req, res, params }) => {
    const digest = mustDigest(params.digest ?? '', 'URL digest');
    const out = await artifacts.putBlob(req, digest);
    res.statusCode = 201;
    return { kind: 'Blob', ...out };
  });
  ctx.router.add('PUT', `${base}/refs/:name/:version`, async ({ params, json }) => {
    const { name, version } = refParams(params);
    const body = await json<{ digest?: string; mediaType?: string; createdAt?: string }>();
    const digest = mustDigest(String(body.digest ?? ''), 'digest');
    const mediaType = body.mediaType ?? 'application/octet-stream';
    if (!/^[\w.+-]+\/[\w.+-]+$/.test(mediaType)) {
      throw new StrataError(
        400,
        'BadRequest',
        `mediaType: "${mediaType}" is not a media type like application/gzip`,
      );
    }
    const ref = await artifacts.tag(name, version, digest, mediaType);
    if (body.createdAt && !Number.isNaN(Date.parse(body.createdAt))) {
      // A bundle import keeps the reference as it was made, so the registry it reproduces is the same one.
      ref.createdAt = body.createdAt;
      await artifacts.refs.put(ref);
    }
    return ref;
  });
  ctx.router.add('DELETE', `${base}/refs/:name/:version`, async ({ params }) => {
    const name = mustName(params.name ?? '');
    const version = mustVersion(params.version ?? '');
    if (!(await artifacts.refs.delete(name, version))) {
      throw new StrataError(404, 'NotFound', `artifact ${name}:${version} is not in the registry`);
    }
    return { kind: 'Status', status: 'Success', details: { name, version } };
  });
  ctx.router.add('POST', `${base}/gc`, async ({ query }) => {
    const minAgeMs = parseMinAge(query.get('minAge') ?? '10m');
    const r = await artifacts.gc(minAgeMs);
    const report: GcReport = {
      kind: 'RegistryGc',
      freed: r.freed.map((b) => ({ digest: b.digest, size: b.size })),
      bytes: r.bytes,
      kept: r.kept,
    };
    if (r.freed.length) ctx.log.info('registry gc', { freed: r.freed.length, bytes: r.bytes });
    return report;
  });
  for (const path of [`${base}/refs`, `${base}/refs/:name/:version`, `${base}/blobs/:digest`])
    ctx.router.describe('GET', path, { ownCheck: 'any API token or the registry pull token' });
  // Pushing, deleting and collecting change what every site installs from: admins only.
  for (const [method, path] of [
    ['PUT', `${base}/blobs/:digest`],
    ['PUT', `${base}/refs/:name/:version`],
    ['DELETE', `${base}/refs/:name/:version`],
    ['POST', `${base}/gc`],
  ] as const)
    ctx.router.describe(method, path, { role: 'admin' });
}

/** Answers a site's reads over the transport (see protocol.ts); a missing thing is a 404 StrataError. */
export async function readOverTransport(artifacts: ArtifactStore, r: ReadRequest): Promise<unknown> {
  if (r.op === 'list') return artifacts.refs.list();
  if (r.op === 'ref') {
    const ref = await artifacts.refs.get(mustName(r.name), mustVersion(r.version));
    if (!ref)
      throw new StrataError(404, 'NotFound', `artifact ${r.name}:${r.version} is not in the registry`);
    return ref;
  }
  const digest = mustDigest(r.digest);
  const info = await artifacts.backend.stat(digest);
  if (!info) throw new StrataError(404, 'NotFound', `blob ${digest} is not in the registry`);
  const offset = Math.max(0, Math.floor(r.offset));
  const length = Math.min(READ_CHUNK, Math.max(0, Math.floor(r.length)), info.size - offset);
  if (length <= 0) return { size: info.size, data: '' } satisfies ChunkReply;
  const stream = await artifacts.backend.read(digest, { offset, length });
  const parts: Buffer[] = [];
  for await (const c of stream ?? []) parts.push(c as Buffer);
  return { size: info.size, data: Buffer.concat(parts).toString('base64') } satisfies ChunkReply;
}

/** Opens the artifact store, adds the routes and serves sites' upstream and read requests until stopped. */
export async function startRegistryManager(ctx: ManagerContext): Promise<Stoppable> {
  const artifacts = await openArtifactStore({
    root: join(ctx.dataDir, 'registry'),
    refs: new StoreRefs(ctx.store),
    backendUrl: process.env.STRATA_REGISTRY_BACKEND,
    onCorrupt: (digest, err) =>
      ctx.log.error('registry blob does not match its digest', { digest, err: err.message }),
  });
  const pullToken = await ensurePullToken(ctx.store);
  routes(ctx, artifacts, pullToken);
  const url = process.env.STRATA_REGISTRY_URL;
  const sub = await ctx.transport.serve<unknown, UpstreamInfo>(subjects.upstream, async () => ({
    ...(url
      ? { url: url.replace(/\/$/, '') + (url.includes(REGISTRY_API_BASE) ? '' : REGISTRY_API_BASE) }
      : {}),
    token: pullToken,
  }));
  const reads = await ctx.transport.serve<ReadRequest, unknown>(subjects.read, (r) =>
    readOverTransport(artifacts, r),
  );
  ctx.log.info('global registry ready', { backend: artifacts.backend.location, ...(url ? { url } : {}) });
  return {
    stop: async () => {
      await sub.unsubscribe();
      await reads.unsubscribe();
    },
  };
}
