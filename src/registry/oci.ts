/**
 * Container images on the registry: the OCI Distribution Specification (v1.1) endpoints under `/v2/`, so
 * containerd, skopeo, crane and the like push and pull images as from any registry. Written by hand: no
 * maintained TypeScript library serves the protocol (the npm packages for it are clients), and the part a
 * server needs is small once the store exists. Everything lands on the same content-addressed store as
 * the other artifacts:
 *
 * - layers and configs are blobs, stored (and verified) by digest like any artifact;
 * - a manifest is a blob too, named by two references: `oci-manifests/REPO:HEX` for each manifest pushed
 *   to a repository (what GET by digest and garbage collection consult, with its media type), and
 *   `oci/REPO:TAG` for a tag. `strata registry ls` shows both; garbage collection keeps what a kept
 *   manifest points to (see `manifestChildren`).
 *
 * The global registry mounts these routes read-write on the manager's API (`/v2/`), a site's local
 * registry read-only on its boot worker's server (`/registry/v2/`), where a miss pulls through from the
 * global registry (tags and manifests as references, layers as blobs), which is what containerd's
 * `hosts.toml` mirror entry points at (see containerd.ts). Errors are the specification's JSON error codes
 * (DIGEST_INVALID, MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_INVALID, ...). A blob read with a Range header is
 * served from the backend as is (a partial read cannot be checked against the digest); a whole read is
 * verified while it streams, as everywhere in the registry. The specification's names, media types and
 * grammar, which clients share, are in oci-spec.ts.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Router } from '../core/http.ts';
import type { Logger } from '../core/log.ts';
import { counter } from '../core/metrics.ts';
import { StrataError } from '../core/resources/errors.ts';
import { DigestMismatchError, hexOf, isDigest, sha256Digest } from './digest.ts';
import { isRepoName, isTag, manifestRefName, OCI_INDEX, OCI_MANIFEST, tagRefName } from './oci-spec.ts';
import type { ArtifactRef, ArtifactStore } from './store.ts';

/** Manifests are small JSON documents; the spec suggests registries accept at least 4 MiB. */
const MAX_MANIFEST = 4 * 1024 * 1024;

const requests = counter('strata_registry_oci_requests_total', 'OCI distribution requests by outcome', [
  'op',
  'code',
]);

/** An error as the Distribution Specification words it: `{errors: [{code, message, detail}]}`. */
export class OciError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: unknown;
  constructor(status: number, code: string, message: string, detail?: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/** What the OCI routes read and, for the global registry, write. */
export interface OciSource {
  /** Where blobs are (the global store, or the site's cache). */
  store: ArtifactStore;
  getRef(name: string, version: string): Promise<ArtifactRef | undefined>;
  listRefs(): Promise<ArtifactRef[]>;
  /** True once the blob is in `store` (a local registry pulls it through first); false when it is nowhere. */
  haveBlob(digest: string): Promise<boolean>;
}

export interface OciRouteOptions {
  /** `/v2` on the manager, `/registry/v2` at a site. */
  prefix: string;
  source: OciSource;
  /** The global registry: pushes allowed, upload sessions kept in this directory. */
  uploadsDir?: string;
  /** Throws an OciError (401 or 403) when the request may not `need`. */
  authorize?: (req: IncomingMessage, need: 'pull' | 'push') => Promise<void>;
  log: Logger;
}

interface Upload {
  repo: string;
  file: string;
  size: number;
  /** Last time a chunk came (ms): a session idle for UPLOAD_IDLE_MS is dropped. */
  at: number;
}

/** An upload session nobody has added to for this long is abandoned: its file is removed. */
const UPLOAD_IDLE_MS = 60 * 60 * 1000;

type Parsed =
  | { op: 'manifest'; repo: string; ref: string }
  | { op: 'blob'; repo: string; digest: string }
  | { op: 'tags'; repo: string }
  | { op: 'upload'; repo: string; id?: string }
  | { op: 'referrers'; repo: string; digest: string };

/** Splits the path after `/v2/` into repository and operation; the repository is everything before it. */
export function parseOciPath(rest: string): Parsed {
  const m = /^(.+)\/(manifests|blobs|tags|referrers)\/(.*)$/.exec(rest) ?? ([] as unknown as RegExpExecArray);
  const [, repo, kind, tail] = m;
  if (!repo || !kind || tail === undefined) throw new OciError(404, 'NOT_FOUND', `no endpoint /v2/${rest}`);
  if (kind === 'blobs' && (tail === 'uploads/' || tail === 'uploads' || tail.startsWith('uploads/'))) {
    const id = tail.replace(/^uploads\/?/, '');
    checkRepo(repo);
    return id ? { op: 'upload', repo, id } : { op: 'upload', repo };
  }
  checkRepo(repo);
  if (kind === 'tags' && tail === 'list') return { op: 'tags', repo };
  if (kind === 'manifests' && tail) return { op: 'manifest', repo, ref: tail };
  if (kind === 'blobs' && tail) return { op: 'blob', repo, digest: tail };
  if (kind === 'referrers' && tail) return { op: 'referrers', repo, digest: tail };
  throw new OciError(404, 'NOT_FOUND', `no endpoint /v2/${rest}`);
}

function checkRepo(repo: string): void {
  if (!isRepoName(repo)) {
    throw new OciError(
      400,
      'NAME_INVALID',
      `invalid repository name "${repo.slice(0, 80)}": lower-case letters, digits, separators . _ __ - and / between parts, like library/busybox`,
    );
  }
}

/** The specification's digest grammar; only sha256 is stored here (see checkDigest). */
const DIGEST_ANY_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** True for a well-formed digest of an algorithm this registry does not store (sha512): it is unknown here. */
function otherAlgorithm(d: string): boolean {
  return !isDigest(d) && DIGEST_ANY_RE.test(d) && !d.startsWith('sha256:');
}

function checkDigest(d: string, what = 'digest'): string {
  if (!isDigest(d)) {
    if (otherAlgorithm(d))
      throw new OciError(
        400,
        'DIGEST_INVALID',
        `${what}: "${d.slice(0, 80)}" uses an algorithm this registry does not store: use sha256`,
      );
    throw new OciError(
      400,
      'DIGEST_INVALID',
      `${what}: invalid digest "${d.slice(0, 80)}": expected sha256: and 64 lower-case hex digits`,
    );
  }
  return d;
}

function sendOciError(res: ServerResponse, err: unknown, log: Logger): void {
  let e: OciError;
  if (err instanceof OciError) e = err;
  else if (err instanceof DigestMismatchError) e = new OciError(400, 'DIGEST_INVALID', err.message);
  else if (err instanceof StrataError && err.status < 500)
    e = new OciError(err.status, 'DENIED', err.message);
  else if (err instanceof StrataError) e = new OciError(err.status, 'UNAVAILABLE', err.message);
  else {
    log.error('OCI request failed', { err: (err as Error).message });
    e = new OciError(500, 'UNKNOWN', 'internal error');
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({
    errors: [{ code: e.code, message: e.message, ...(e.detail !== undefined ? { detail: e.detail } : {}) }],
  });
  if (e.status === 401) res.setHeader('www-authenticate', 'Basic realm="strata registry"');
  res.writeHead(e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

async function readAll(req: IncomingMessage, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) {
      req.resume();
      throw new OciError(413, 'SIZE_INVALID', `manifest over ${max} bytes`);
    }
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

/** `bytes=START-END` (END optional) → an inclusive range within `size`, or undefined for none/unsatisfiable. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'bad' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'bad';
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return 'bad';
  return { start, end };
}

/** Adds the `/v2/` endpoints under `o.prefix` to `router` (every route public: the handler checks tokens). */
export function addOciRoutes(router: Router, o: OciRouteOptions): void {
  const { prefix, source, log } = o;
  const store = source.store;
  const uploads = new Map<string, Upload>();
  const writable = o.uploadsDir !== undefined;
  if (o.uploadsDir) void rm(o.uploadsDir, { recursive: true, force: true }).catch(() => {});

  const common = (res: ServerResponse) => res.setHeader('docker-distribution-api-version', 'registry/2.0');
  const guard = async (req: IncomingMessage, need: 'pull' | 'push') => {
    if (need === 'push' && !writable) {
      throw new OciError(
        405,
        'UNSUPPORTED',
        "this is a site's read-only mirror: push to the global registry (the manager's /v2/)",
      );
    }
    await o.authorize?.(req, need);
  };

  const wrap =
    (op: (req: IncomingMessage, res: ServerResponse, rest: string, q: URLSearchParams) => Promise<void>) =>
    async ({
      req,
      res,
      params,
      query,
    }: {
      req: IncomingMessage;
      res: ServerResponse;
      params: Record<string, string>;
      query: URLSearchParams;
    }) => {
      common(res);
      try {
        // Credentials first, so a caller without them learns nothing about what exists.
        await guard(req, req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'push');
        await op(req, res, params.rest ?? '', query);
        requests.inc({ op: req.method ?? 'GET', code: String(res.statusCode) });
      } catch (err) {
        sendOciError(res, err, log);
        requests.inc({ op: req.method ?? 'GET', code: String(res.statusCode) });
      }
    };
  const pub = (operationId: string, summary: string) => ({
    public: true,
    // What the authorizer enforces (any token reads; admin pushes), as the OpenAPI document declares it.
    role: operationId === 'Get' ? ('viewer' as const) : ('admin' as const),
    operationId: `${o.uploadsDir ? 'oci' : 'ociMirror'}${operationId}`,
    summary,
    tags: ['registry'],
    ownCheck:
      'any API token or the registry pull token (Bearer, or Basic with the token as password); pushes need an admin token',
  });

  const resolveManifest = async (repo: string, ref: string): Promise<ArtifactRef> => {
    let found: ArtifactRef | undefined;
    if (ref.includes(':')) {
      checkDigest(ref, 'manifest reference');
      found = await source.getRef(manifestRefName(repo), hexOf(ref));
    } else {
      if (!isTag(ref)) throw new OciError(400, 'TAG_INVALID', `invalid tag "${ref.slice(0, 80)}"`);
      found = await source.getRef(tagRefName(repo), ref);
    }
    if (!found) throw new OciError(404, 'MANIFEST_UNKNOWN', `manifest ${repo}:${ref} is not in the registry`);
    return found;
  };

  const sendBlob = async (
    req: IncomingMessage,
    res: ServerResponse,
    digest: string,
    headers: Record<string, string | number>,
    unknown: OciError,
  ) => {
    if (!(await source.haveBlob(digest))) throw unknown;
    const info = await store.backend.stat(digest);
    if (!info) throw unknown;
    const base = {
      ...headers,
      'docker-content-digest': digest,
      etag: `"${digest}"`,
      'accept-ranges': 'bytes',
    };
    const range = parseRange(req.headers.range, info.size);
    if (range === 'bad') {
      res.writeHead(416, { 'content-range': `bytes */${info.size}` });
      res.end();
      return;
    }
    let stream: Readable | undefined;
    if (range) {
      res.writeHead(206, {
        ...base,
        'content-length': range.end - range.start + 1,
        'content-range': `bytes ${range.start}-${range.end}/${info.size}`,
      });
      if (req.method === 'HEAD') return void res.end();
      stream = await store.backend.read(digest, { offset: range.start, length: range.end - range.start + 1 });
    } else {
      res.writeHead(200, { ...base, 'content-length': info.size });
      if (req.method === 'HEAD') return void res.end();
      stream = (await store.openBlob(digest))?.stream;
    }
    if (!stream) return void res.destroy();
    try {
      await pipeline(stream, res);
    } catch (err) {
      log.warn('blob transfer ended early', { digest, err: (err as Error).message });
      res.destroy();
    }
  };

  const get = wrap(async (req, res, rest, q) => {
    // `/v2/` itself is the version check: clients ask it first to learn whether and how to authenticate.
    if (rest === '') return end(res, 200, { 'content-type': 'application/json' }, '{}');
    const p = parseOciPath(rest);
    if (p.op === 'manifest') {
      const ref = await resolveManifest(p.repo, p.ref);
      await sendBlob(
        req,
        res,
        ref.digest,
        { 'content-type': ref.mediaType },
        new OciError(
          404,
          'MANIFEST_UNKNOWN',
          `manifest ${p.repo}:${p.ref} is named but its content is missing`,
        ),
      );
      return;
    }
    if (p.op === 'blob') {
      if (otherAlgorithm(p.digest))
        throw new OciError(
          404,
          'BLOB_UNKNOWN',
          `blob ${p.digest} is not in the registry (it stores sha256 only)`,
        );
      const digest = checkDigest(p.digest);
      await sendBlob(
        req,
        res,
        digest,
        { 'content-type': 'application/octet-stream' },
        new OciError(404, 'BLOB_UNKNOWN', `blob ${digest} is not in the registry`),
      );
      return;
    }
    if (p.op === 'tags') {
      const name = tagRefName(p.repo);
      let tags = (await source.listRefs())
        .filter((r) => r.name === name)
        .map((r) => r.version)
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      if (!tags.length && !(await hasManifests(source, p.repo)))
        throw new OciError(404, 'NAME_UNKNOWN', `repository ${p.repo} is not in the registry`);
      const last = q.get('last');
      if (last) tags = tags.filter((t) => t > last);
      const n = q.get('n');
      if (n !== null && /^\d+$/.test(n) && tags.length > Number(n)) {
        tags = tags.slice(0, Number(n));
        const next = `${prefix}/${p.repo}/tags/list?n=${n}&last=${encodeURIComponent(tags.at(-1) ?? '')}`;
        if (tags.length) res.setHeader('link', `<${next}>; rel="next"`);
      }
      end(res, 200, { 'content-type': 'application/json' }, JSON.stringify({ name: p.repo, tags }));
      return;
    }
    if (p.op === 'upload') {
      const u = session(p.repo, p.id);
      end(res, 204, { location: uploadUrl(p.repo, p.id!), range: rangeOf(u), 'docker-upload-uuid': p.id! });
      return;
    }
    // Referrers: an empty index (the spec allows a registry without the referrers index to answer so).
    checkDigest(p.digest);
    end(
      res,
      200,
      { 'content-type': OCI_INDEX },
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }),
    );
  });
  router.add(
    'GET',
    `${prefix}/:rest*`,
    get,
    pub('Get', 'OCI Distribution: version check (/v2/), manifests, blobs, tags, referrers, upload status'),
  );

  const uploadUrl = (repo: string, id: string) => `${prefix}/${repo}/blobs/uploads/${id}`;
  const blobUrl = (repo: string, digest: string) => `${prefix}/${repo}/blobs/${digest}`;
  const rangeOf = (u: Upload) => `0-${Math.max(0, u.size - 1)}`;
  const session = (repo: string, id: string | undefined): Upload => {
    const u = id ? uploads.get(id) : undefined;
    if (!u || u.repo !== repo)
      throw new OciError(404, 'BLOB_UPLOAD_UNKNOWN', `upload ${id ?? ''} is not in progress in ${repo}`);
    return u;
  };

  const storeBlob = async (res: ServerResponse, repo: string, body: Readable, digest: string) => {
    await store.putBlob(body, digest);
    end(res, 201, { location: blobUrl(repo, digest), 'docker-content-digest': digest });
  };

  router.add(
    'POST',
    `${prefix}/:rest*`,
    wrap(async (req, res, rest, q) => {
      const p = parseOciPath(rest);
      if (p.op !== 'upload' || p.id)
        throw new OciError(405, 'UNSUPPORTED', `POST is not allowed on /v2/${rest}`);
      const mount = q.get('mount');
      if (mount) {
        // Cross-repository mount: one content-addressed store, so a blob anywhere is a blob here.
        if (isDigest(mount) && (await store.backend.stat(mount))) {
          req.resume();
          end(res, 201, { location: blobUrl(p.repo, mount), 'docker-content-digest': mount });
          return;
        }
      }
      const digest = q.get('digest');
      if (digest) {
        await storeBlob(res, p.repo, req, checkDigest(digest));
        return;
      }
      req.resume();
      await dropIdleUploads();
      await mkdir(o.uploadsDir!, { recursive: true });
      const id = randomUUID();
      const u: Upload = { repo: p.repo, file: join(o.uploadsDir!, id), size: 0, at: Date.now() };
      await pipeline([], createWriteStream(u.file));
      uploads.set(id, u);
      end(res, 202, { location: uploadUrl(p.repo, id), range: '0-0', 'docker-upload-uuid': id });
    }),
    pub('Post', 'OCI Distribution: start or finish a blob upload, mount a blob'),
  );

  const dropIdleUploads = async () => {
    const now = Date.now();
    for (const [id, u] of uploads) {
      if (now - u.at < UPLOAD_IDLE_MS) continue;
      uploads.delete(id);
      await rm(u.file, { force: true });
      log.info('abandoned image upload dropped', { repo: u.repo, bytes: u.size });
    }
  };

  /** Appends the request body to the session file; a Content-Range must start where the upload stands. */
  const append = async (req: IncomingMessage, u: Upload) => {
    const cr = req.headers['content-range'];
    if (cr) {
      const m = /^(?:bytes[ =])?(\d+)-(\d+)$/.exec(String(cr).trim());
      if (!m || Number(m[1]) !== u.size) {
        req.resume();
        throw new OciError(
          416,
          'BLOB_UPLOAD_INVALID',
          `Content-Range ${cr} does not continue the upload, which holds ${u.size} bytes: send from byte ${u.size}`,
        );
      }
    }
    u.at = Date.now();
    await pipeline(req, createWriteStream(u.file, { flags: 'a' }));
    u.size = (await stat(u.file)).size;
    u.at = Date.now();
  };

  router.add(
    'PATCH',
    `${prefix}/:rest*`,
    wrap(async (req, res, rest) => {
      const p = parseOciPath(rest);
      if (p.op !== 'upload' || !p.id)
        throw new OciError(405, 'UNSUPPORTED', `PATCH is not allowed on /v2/${rest}`);
      const u = session(p.repo, p.id);
      await append(req, u);
      end(res, 202, { location: uploadUrl(p.repo, p.id), range: rangeOf(u), 'docker-upload-uuid': p.id });
    }),
    pub('Patch', 'OCI Distribution: upload a chunk'),
  );

  router.add(
    'PUT',
    `${prefix}/:rest*`,
    wrap(async (req, res, rest, q) => {
      const p = parseOciPath(rest);
      if (p.op === 'upload' && p.id) {
        const u = session(p.repo, p.id);
        const digest = checkDigest(q.get('digest') ?? '', 'digest query parameter');
        await append(req, u);
        try {
          await storeBlob(res, p.repo, createReadStream(u.file), digest);
        } finally {
          uploads.delete(p.id);
          await rm(u.file, { force: true });
        }
        return;
      }
      if (p.op !== 'manifest') throw new OciError(405, 'UNSUPPORTED', `PUT is not allowed on /v2/${rest}`);
      await putManifest(req, res, p.repo, p.ref);
    }),
    pub('Put', 'OCI Distribution: finish an upload, push a manifest'),
  );

  const putManifest = async (req: IncomingMessage, res: ServerResponse, repo: string, ref: string) => {
    const body = await readAll(req, MAX_MANIFEST);
    const digest = sha256Digest(body);
    const byDigest = ref.includes(':');
    if (byDigest && checkDigest(ref, 'manifest reference') !== digest) {
      throw new OciError(
        400,
        'DIGEST_INVALID',
        `manifest body has digest ${digest}, not ${ref} as the URL says`,
      );
    }
    if (!byDigest && !isTag(ref)) throw new OciError(400, 'TAG_INVALID', `invalid tag "${ref.slice(0, 80)}"`);
    let doc: {
      mediaType?: unknown;
      schemaVersion?: unknown;
      layers?: unknown;
      manifests?: unknown;
      config?: unknown;
    };
    try {
      doc = JSON.parse(body.toString('utf8')) as typeof doc;
    } catch (e) {
      throw new OciError(400, 'MANIFEST_INVALID', `manifest is not JSON: ${(e as Error).message}`);
    }
    if (!doc || typeof doc !== 'object' || doc.schemaVersion !== 2)
      throw new OciError(400, 'MANIFEST_INVALID', 'manifest: schemaVersion must be 2');
    const header = String(req.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim();
    const mediaType =
      header && header !== 'application/octet-stream'
        ? header
        : typeof doc.mediaType === 'string'
          ? doc.mediaType
          : Array.isArray(doc.manifests)
            ? OCI_INDEX
            : OCI_MANIFEST;
    if (typeof doc.mediaType === 'string' && doc.mediaType !== mediaType)
      throw new OciError(
        400,
        'MANIFEST_INVALID',
        `Content-Type ${mediaType} differs from the manifest's mediaType ${doc.mediaType}`,
      );
    if (!/^[\w.+-]+\/[\w.+-]+$/.test(mediaType))
      throw new OciError(400, 'MANIFEST_INVALID', `Content-Type "${mediaType}" is not a media type`);
    // An image manifest's config and layers must be here already (except layers kept elsewhere: those
    // with `urls`, the non-distributable kind); an index's manifests may come later.
    if (!Array.isArray(doc.manifests)) await checkBlobsPresentIn(store, doc);
    await store.putBlob(Readable.from([body]), digest);
    await store.tag(manifestRefName(repo), hexOf(digest), digest, mediaType);
    if (!byDigest) await store.tag(tagRefName(repo), ref, digest, mediaType);
    log.info('image manifest pushed', { repo, ref, digest });
    const subject = (doc as { subject?: { digest?: unknown } }).subject?.digest;
    end(res, 201, {
      location: `${prefix}/${repo}/manifests/${digest}`,
      'docker-content-digest': digest,
      ...(typeof subject === 'string' ? { 'oci-subject': subject } : {}),
    });
  };

  router.add(
    'DELETE',
    `${prefix}/:rest*`,
    wrap(async (_req, res, rest) => {
      const p = parseOciPath(rest);
      if (p.op === 'upload' && p.id) {
        const u = session(p.repo, p.id);
        uploads.delete(p.id);
        await rm(u.file, { force: true });
        end(res, 204, {});
        return;
      }
      if (p.op === 'manifest') {
        const ref = await resolveManifest(p.repo, p.ref);
        if (p.ref.includes(':')) {
          // Deleting a manifest deletes the tags that name it; its blobs go at the next collection.
          for (const r of await store.refs.list())
            if (r.name === tagRefName(p.repo) && r.digest === ref.digest)
              await store.refs.delete(r.name, r.version);
          await store.refs.delete(manifestRefName(p.repo), hexOf(ref.digest));
        } else {
          await store.refs.delete(tagRefName(p.repo), p.ref);
        }
        end(res, 202, {});
        return;
      }
      if (p.op === 'blob') {
        checkDigest(p.digest);
        throw new OciError(
          405,
          'UNSUPPORTED',
          'blobs are shared by every repository here: delete manifests and run `strata registry gc`',
        );
      }
      throw new OciError(405, 'UNSUPPORTED', `DELETE is not allowed on /v2/${rest}`);
    }),
    pub('Delete', 'OCI Distribution: delete a manifest or tag, cancel an upload'),
  );
}

type Descriptor = { digest?: unknown; mediaType?: unknown; urls?: unknown };

async function checkBlobsPresentIn(store: ArtifactStore, doc: unknown): Promise<void> {
  const m = doc as { config?: Descriptor; layers?: Descriptor[] };
  const layers = Array.isArray(m.layers) ? m.layers : [];
  const wanted = [m.config, ...layers.filter((l) => !Array.isArray(l?.urls))];
  for (const desc of wanted) {
    const d = desc?.digest;
    if (typeof d !== 'string' || !DIGEST_ANY_RE.test(d))
      throw new OciError(
        400,
        'MANIFEST_INVALID',
        `manifest names an invalid digest "${String(d).slice(0, 80)}"`,
      );
    if (!isDigest(d) || !(await store.backend.stat(d)))
      throw new OciError(400, 'MANIFEST_BLOB_UNKNOWN', `manifest names blob ${d}, which was not pushed`, {
        digest: d,
      });
  }
}

async function hasManifests(source: OciSource, repo: string): Promise<boolean> {
  const name = manifestRefName(repo);
  return (await source.listRefs()).some((r) => r.name === name);
}

function end(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | number>,
  body?: string,
): void {
  res.writeHead(status, { 'content-length': body ? Buffer.byteLength(body) : 0, ...headers });
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}
