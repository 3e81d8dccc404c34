/**
 * The content-addressed artifact store: blobs by SHA-256 digest in a backend, plus named, versioned
 * references (`name:version` → digest, media type, size) kept beside them. It is the one place that
 * hashes: every upload is hashed while it streams to a staging file and refused on a mismatch before any
 * backend sees it, and every read is hashed on the way out (see DigestStream), so neither a backend nor a
 * network in between is trusted. The global registry keeps references in the Strata store's records; a
 * site's local registry, run by a worker that holds no store, keeps its cached references in a file.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { counter } from '../core/metrics.ts';
import { StrataError } from '../core/resources/errors.ts';
import type { Store } from '../core/store/types.ts';
import type { BlobBackend, BlobInfo } from './backend.ts';
import { DigestMismatchError, DigestStream, mustDigest } from './digest.ts';
import { DirectoryBackend } from './dir-backend.ts';
import { MANIFEST_TYPES, manifestChildren } from './oci-spec.ts';
import { REFS_COLLECTION, refKey } from './protocol.ts';
import { parseS3Url, S3Backend } from './s3-backend.ts';

const refused = counter(
  'strata_registry_digest_mismatch_total',
  'Blobs refused because of a digest mismatch',
  ['when'],
);

export interface ArtifactRef {
  name: string;
  version: string;
  digest: string;
  size: number;
  mediaType: string;
  createdAt: string;
}

/** Where references live. */
export interface RefIndex {
  get(name: string, version: string): Promise<ArtifactRef | undefined>;
  put(ref: ArtifactRef): Promise<void>;
  delete(name: string, version: string): Promise<boolean>;
  list(): Promise<ArtifactRef[]>;
}

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** By name, then version, in code-point order: the same on every machine, whatever its locale. */
export function sortRefs(refs: ArtifactRef[]): ArtifactRef[] {
  return refs.sort((a, b) => byCodePoint(a.name, b.name) || byCodePoint(a.version, b.version));
}

/** References as records of the Strata store (SQLite or PostgreSQL): the global registry's. */
export class StoreRefs implements RefIndex {
  readonly #store: Store;
  constructor(store: Store) {
    this.#store = store;
  }
  async get(name: string, version: string): Promise<ArtifactRef | undefined> {
    return (await this.#store.getRecord(REFS_COLLECTION, refKey(name, version))) as ArtifactRef | undefined;
  }
  async put(ref: ArtifactRef): Promise<void> {
    await this.#store.putRecords(REFS_COLLECTION, [{ key: refKey(ref.name, ref.version), value: ref }]);
  }
  async delete(name: string, version: string): Promise<boolean> {
    if (!(await this.get(name, version))) return false;
    await this.#store.deleteRecords(REFS_COLLECTION, [refKey(name, version)]);
    return true;
  }
  async list(): Promise<ArtifactRef[]> {
    return sortRefs((await this.#store.listRecords(REFS_COLLECTION)).map((r) => r.value as ArtifactRef));
  }
}

/** References in one JSON file, replaced atomically: a local registry's cache of the global one's. */
export class FileRefs implements RefIndex {
  readonly #file: string;
  #cache: Map<string, ArtifactRef> | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.#file = file;
  }

  async #load(): Promise<Map<string, ArtifactRef>> {
    if (this.#cache) return this.#cache;
    let items: ArtifactRef[] = [];
    try {
      items = JSON.parse(await readFile(this.#file, 'utf8')) as ArtifactRef[];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    this.#cache = new Map(items.map((r) => [refKey(r.name, r.version), r]));
    return this.#cache;
  }

  async #save(): Promise<void> {
    const items = sortRefs([...(await this.#load()).values()]);
    const write = async () => {
      await mkdir(dirname(this.#file), { recursive: true });
      const tmp = `${this.#file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(items, null, 1));
      await rename(tmp, this.#file);
    };
    this.#writing = this.#writing.then(write, write);
    await this.#writing;
  }

  async get(name: string, version: string): Promise<ArtifactRef | undefined> {
    return (await this.#load()).get(refKey(name, version));
  }
  async put(ref: ArtifactRef): Promise<void> {
    (await this.#load()).set(refKey(ref.name, ref.version), ref);
    await this.#save();
  }
  async delete(name: string, version: string): Promise<boolean> {
    const had = (await this.#load()).delete(refKey(name, version));
    if (had) await this.#save();
    return had;
  }
  async list(): Promise<ArtifactRef[]> {
    return sortRefs([...(await this.#load()).values()]);
  }
}

export interface ArtifactStoreOptions {
  backend: BlobBackend;
  refs: RefIndex;
  /** Local directory for uploads being hashed; on the directory backend's file system so a put is a rename. */
  stagingDir: string;
  /** Delete a blob whose bytes no longer match its digest when it is read (a cache refetches it). */
  dropCorrupt?: boolean;
  onCorrupt?: (digest: string, err: Error) => void;
}

export interface GcResult {
  freed: BlobInfo[];
  bytes: number;
  kept: number;
}

export class ArtifactStore {
  readonly backend: BlobBackend;
  readonly refs: RefIndex;
  readonly #opts: ArtifactStoreOptions;

  constructor(opts: ArtifactStoreOptions) {
    this.backend = opts.backend;
    this.refs = opts.refs;
    this.#opts = opts;
  }

  /**
   * Streams `body` into the store, hashing it on the way. With `expected`, a body whose digest differs is
   * refused (DigestMismatchError) and nothing is kept.
   */
  async putBlob(body: Readable, expected?: string): Promise<{ digest: string; size: number }> {
    if (expected) mustDigest(expected);
    await mkdir(this.#opts.stagingDir, { recursive: true });
    const tmp = join(this.#opts.stagingDir, `${randomUUID()}.part`);
    const hash = new DigestStream();
    try {
      await pipeline(body, hash, createWriteStream(tmp, { mode: 0o644 }));
      const digest = hash.digest!;
      if (expected && digest !== expected) {
        refused.inc({ when: 'upload' });
        throw new DigestMismatchError(expected, digest, hash.size);
      }
      if (!(await this.backend.stat(digest))) await this.backend.putFile(digest, tmp, hash.size);
      return { digest, size: hash.size };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** The blob's bytes, verified while they are read (the stream errors instead of ending on a mismatch). */
  async openBlob(digest: string): Promise<{ size: number; stream: Readable } | undefined> {
    mustDigest(digest);
    const info = await this.backend.stat(digest);
    if (!info) return undefined;
    const raw = await this.backend.read(digest);
    if (!raw) return undefined;
    const check = new DigestStream(digest);
    raw.on('error', (e) => check.destroy(e));
    check.on('error', (err) => {
      if (!(err instanceof DigestMismatchError)) return;
      refused.inc({ when: 'read' });
      this.#opts.onCorrupt?.(digest, err);
      if (this.#opts.dropCorrupt) void this.backend.delete(digest).catch(() => {});
    });
    return { size: info.size, stream: raw.pipe(check) };
  }

  /** Reads the whole blob and says whether its bytes match its digest. */
  async verifyBlob(digest: string): Promise<boolean> {
    const b = await this.openBlob(digest);
    if (!b) return false;
    try {
      for await (const _ of b.stream);
      return true;
    } catch (e) {
      if (e instanceof DigestMismatchError) return false;
      throw e;
    }
  }

  /** Points `name:version` at a stored blob (replacing what it pointed at). */
  async tag(name: string, version: string, digest: string, mediaType: string): Promise<ArtifactRef> {
    const info = await this.backend.stat(mustDigest(digest));
    if (!info) {
      throw new StrataError(
        404,
        'NotFound',
        `blob ${digest} is not in the registry: upload it before naming it ${name}:${version}`,
      );
    }
    const ref: ArtifactRef = {
      name,
      version,
      digest,
      size: info.size,
      mediaType,
      createdAt: new Date().toISOString(),
    };
    await this.refs.put(ref);
    return ref;
  }

  /**
   * The digests references keep alive: what they name and, for image manifests and indexes (oci.ts), what
   * those point to, followed down to the layers.
   */
  async liveDigests(): Promise<Set<string>> {
    const refs = await this.refs.list();
    const live = new Set(refs.map((r) => r.digest));
    const todo = refs.filter((r) => MANIFEST_TYPES.includes(r.mediaType)).map((r) => r.digest);
    const seen = new Set<string>();
    for (let d = todo.pop(); d; d = todo.pop()) {
      if (seen.has(d)) continue;
      seen.add(d);
      const b = await this.openBlob(d).catch(() => undefined);
      if (!b || b.size > 4 * 1024 * 1024) {
        b?.stream.destroy();
        continue;
      }
      const parts: Buffer[] = [];
      try {
        for await (const c of b.stream) parts.push(c as Buffer);
      } catch {
        continue;
      }
      const { blobs, manifests } = manifestChildren(Buffer.concat(parts));
      for (const child of blobs) live.add(child);
      for (const child of manifests) {
        live.add(child);
        todo.push(child);
      }
    }
    return live;
  }

  /** Removes every blob nothing keeps alive (liveDigests) that is older than `minAgeMs` (an upload in flight). */
  async gc(minAgeMs = 0, now = Date.now()): Promise<GcResult> {
    const live = await this.liveDigests();
    const freed: BlobInfo[] = [];
    let kept = 0;
    for await (const b of this.backend.list()) {
      if (live.has(b.digest) || now - b.modifiedMs < minAgeMs) {
        kept++;
        continue;
      }
      await this.backend.delete(b.digest);
      freed.push(b);
    }
    return { freed, bytes: freed.reduce((n, b) => n + b.size, 0), kept };
  }
}

/**
 * Opens the artifact store for `root` (a directory), on the backend `backendUrl` names: empty or
 * `dir:PATH` for a directory, `s3://BUCKET/PREFIX` for S3-compatible storage.
 */
export async function openArtifactStore(o: {
  root: string;
  refs: RefIndex;
  backendUrl?: string | undefined;
  dropCorrupt?: boolean;
  onCorrupt?: (digest: string, err: Error) => void;
}): Promise<ArtifactStore> {
  const url = o.backendUrl ?? '';
  let backend: BlobBackend;
  let stagingDir = join(o.root, 'staging');
  if (url === '' || url.startsWith('dir:')) {
    const dir = new DirectoryBackend(url ? url.slice(4) : o.root);
    backend = dir;
    stagingDir = dir.stagingDir;
  } else if (url.startsWith('s3://')) {
    backend = await S3Backend.open(parseS3Url(url));
  } else {
    throw new Error(
      `registry backend "${url}": expected dir:PATH or s3://BUCKET[/PREFIX] (STRATA_REGISTRY_BACKEND)`,
    );
  }
  return new ArtifactStore({
    backend,
    refs: o.refs,
    stagingDir,
    ...(o.dropCorrupt ? { dropCorrupt: true } : {}),
    ...(o.onCorrupt ? { onCorrupt: o.onCorrupt } : {}),
  });
}
