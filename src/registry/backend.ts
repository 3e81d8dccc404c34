/**
 * Where blobs live. One small interface, two implementations (a directory, S3-compatible object storage),
 * and one conformance suite runs against both. A backend only stores bytes under a digest: it is handed a
 * file whose digest the artifact store has already verified, and reads are verified by the store too, so
 * no backend has to be trusted to hash. Blobs are immutable: putting a digest that exists is a no-op.
 */
import type { Readable } from 'node:stream';

export interface BlobInfo {
  digest: string;
  size: number;
  /** When the blob was written (ms since the epoch): garbage collection spares young blobs. */
  modifiedMs: number;
}

export interface ByteRange {
  offset: number;
  length: number;
}

export interface BlobBackend {
  /** `dir:/path` or `s3://bucket/prefix`, for logs and `strata registry ls`. */
  readonly location: string;
  stat(digest: string): Promise<BlobInfo | undefined>;
  /** The blob's bytes (or `length` of them from `offset`), or undefined when it is not there. */
  read(digest: string, range?: ByteRange): Promise<Readable | undefined>;
  /** Stores the verified file `path` under `digest`; the backend may move or copy it (the caller removes it). */
  putFile(digest: string, path: string, size: number): Promise<void>;
  delete(digest: string): Promise<void>;
  list(): AsyncIterable<BlobInfo>;
}
