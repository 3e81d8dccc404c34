/**
 * The registry's wire contract. Both scopes speak the same small HTTP protocol under their base path
 * (the global registry at `/api/v1/registry` on the manager's API, a site's local registry at `/registry`
 * on its boot worker's HTTP server), so a node, the CLI and a local registry pulling through all use one
 * client:
 *
 *   GET  {base}/refs                      → {kind: 'ArtifactList', items: ArtifactRef[]}
 *   GET  {base}/refs/{name}/{version}     → ArtifactRef          (name and version URL-encoded)
 *   GET  {base}/blobs/{digest}            → the bytes (HEAD: size only); X-Strata-Digest names them
 *   PUT  {base}/blobs/{digest}            → {digest, size}       (global only; refused on a mismatch)
 *   PUT  {base}/refs/{name}/{version}     ← {digest, mediaType?, createdAt?} (global only)
 *   DELETE {base}/refs/{name}/{version}   (global only)
 *   POST {base}/gc?minAge=10m             → GcReport             (global only)
 *
 * A worker asks the manager over the transport where the global registry is and with which read token.
 * Where no address is configured (or a segment's namespace cannot reach it, as in `strata up` on one
 * machine), the same reads go over the transport itself (`registry.read`): references, and blobs in
 * chunks small enough for any transport (NATS caps a message at 1 MiB). The site verifies the whole blob
 * against its digest either way.
 */
import { SECRETS_COLLECTION, type WireContract, wireContract } from '../core/wire.ts';

export const REGISTRY_API_BASE = '/api/v1/registry';
export const LOCAL_REGISTRY_BASE = '/registry';
export const DIGEST_HEADER = 'x-strata-digest';

export const subjects = {
  /** Request {} → UpstreamInfo: the global registry as a site's local registry reaches it. */
  upstream: 'registry.upstream',
  /** Request ReadRequest → ArtifactRef[] | ArtifactRef | ChunkReply: reads over the transport. */
  read: 'registry.read',
} as const;

/** Artifact references, key `<name>:<version>`; blobs live in the backend, not in the store. */
export const REFS_COLLECTION = 'registry.refs';
export const refKey = (name: string, version: string) => `${name}:${version}`;
/** The registry's read-only pull token, in the store's secret records. */
export const PULL_TOKEN_KEY = 'registry/pull-token';

export const wire: WireContract = wireContract(
  'registry',
  subjects,
  {
    upstream: {
      kind: 'request',
      from: ['boot'],
      to: ['manager'],
      message: '{} → UpstreamInfo, asked by the local registry a boot worker runs',
    },
    read: {
      kind: 'request',
      from: ['boot'],
      to: ['manager'],
      message: 'ReadRequest → ArtifactRef[] | ArtifactRef | ChunkReply',
    },
  },
  [
    {
      name: REFS_COLLECTION,
      key: refKey('<name>', '<version>'),
      holds: 'ArtifactRef: the digest and media type a name and version stand for',
      writers: ['manager'],
      readers: ['manager'],
    },
    {
      name: SECRETS_COLLECTION,
      key: PULL_TOKEN_KEY,
      holds:
        "{token, createdAt}: the registry's read-only pull token, handed to sites over `registry.upstream`",
      writers: ['manager'],
      readers: ['manager'],
    },
  ],
);

/** Bytes per `registry.read` chunk: 256 KiB, about 350 KB of base64, under NATS's 1 MiB message cap. */
export const READ_CHUNK = 256 * 1024;

export type ReadRequest =
  | { op: 'list' }
  | { op: 'ref'; name: string; version: string }
  | { op: 'chunk'; digest: string; offset: number; length: number };

/** `chunk`: base64 bytes and the blob's whole size; `ref`: the reference (404 StrataError when absent). */
export interface ChunkReply {
  size: number;
  data: string;
}

export interface UpstreamInfo {
  /** Base URL of the global registry (`http://manager:7420/api/v1/registry`); absent when not configured. */
  url?: string;
  /** Read-only pull token for it. */
  token?: string;
}

export interface GcReport {
  kind: 'RegistryGc';
  freed: { digest: string; size: number }[];
  bytes: number;
  kept: number;
}

export function refPath(name: string, version: string): string {
  return `/refs/${encodeURIComponent(name)}/${encodeURIComponent(version)}`;
}

export function blobPath(digest: string): string {
  return `/blobs/${digest}`;
}

export const DEBIAN_PACKAGE_TYPE = 'application/vnd.debian.binary-package';

/** A media type from a file name, for pushes that do not name one. */
export function mediaTypeFor(file: string): string {
  if (file.endsWith('.deb')) return DEBIAN_PACKAGE_TYPE;
  if (file.endsWith('.tar.gz') || file.endsWith('.tgz')) return 'application/gzip';
  if (file.endsWith('.tar.zst')) return 'application/zstd';
  if (file.endsWith('.tar')) return 'application/x-tar';
  if (file.endsWith('.sh')) return 'text/x-shellscript';
  if (file.endsWith('.json')) return 'application/json';
  if (file.endsWith('.yaml') || file.endsWith('.yml')) return 'application/yaml';
  return 'application/octet-stream';
}
