/**
 * The S3-compatible blob backend (AWS S3, MinIO, Ceph RGW...), for sites whose artifacts live in object
 * storage. It uses AWS's own @aws-sdk/client-s3: maintained by AWS, tested against S3's quirks (signing,
 * XML errors, pagination, retries), where a hand-rolled SigV4 client would have to re-learn each of them.
 * It is imported lazily, so the CLI and a directory-backed Strata never load it.
 *
 * A put sends `x-amz-checksum-sha256` (the digest the store already verified): the server recomputes it and
 * refuses a body damaged in transit, so the object under a digest key is the digest's bytes.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { BlobBackend, BlobInfo, ByteRange } from './backend.ts';
import { hexOf, isDigest } from './digest.ts';

export interface S3Config {
  bucket: string;
  /** Key prefix, e.g. `strata/` (blobs go under `<prefix>blobs/sha256/`). */
  prefix?: string;
  /** MinIO and other non-AWS services: `http://host:9000`. */
  endpoint?: string;
  region?: string;
  /** Without it the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles) is used. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** `s3://bucket/prefix` plus STRATA_S3_ENDPOINT / AWS_REGION from the environment. */
export function parseS3Url(url: string, env: NodeJS.ProcessEnv = process.env): S3Config {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) {
    throw new Error(
      `registry backend "${url}": expected s3://BUCKET[/PREFIX] with a valid bucket name (lower-case letters, digits, . and -)`,
    );
  }
  const prefix = m[2] ? m[2].replace(/\/*$/, '/') : '';
  return {
    bucket: m[1]!,
    ...(prefix ? { prefix } : {}),
    ...(env.STRATA_S3_ENDPOINT ? { endpoint: env.STRATA_S3_ENDPOINT } : {}),
    ...(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
  };
}

type Sdk = typeof import('@aws-sdk/client-s3');

export class S3Backend implements BlobBackend {
  readonly location: string;
  readonly #sdk: Sdk;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;

  private constructor(sdk: Sdk, cfg: S3Config) {
    this.#sdk = sdk;
    this.#bucket = cfg.bucket;
    this.#prefix = `${cfg.prefix ?? ''}blobs/sha256/`;
    this.location = `s3://${cfg.bucket}/${cfg.prefix ?? ''}`;
    this.#client = new sdk.S3Client({
      region: cfg.region ?? 'us-east-1',
      ...(cfg.endpoint ? { endpoint: cfg.endpoint, forcePathStyle: true } : {}),
      ...(cfg.credentials ? { credentials: cfg.credentials } : {}),
    });
  }

  static async open(cfg: S3Config): Promise<S3Backend> {
    return new S3Backend(await import('@aws-sdk/client-s3'), cfg);
  }

  #key(digest: string): string {
    return this.#prefix + hexOf(digest);
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    try {
      const r = await this.#client.send(
        new this.#sdk.HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(digest) }),
      );
      return { digest, size: r.ContentLength ?? 0, modifiedMs: r.LastModified?.getTime() ?? 0 };
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  async read(digest: string, range?: ByteRange): Promise<Readable | undefined> {
    try {
      const r = await this.#client.send(
        new this.#sdk.GetObjectCommand({
          Bucket: this.#bucket,
          Key: this.#key(digest),
          ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
        }),
      );
      return r.Body as Readable;
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  async putFile(digest: string, path: string, size: number): Promise<void> {
    if (await this.stat(digest)) return;
    await this.#client.send(
      new this.#sdk.PutObjectCommand({
        Bucket: this.#bucket,
        Key: this.#key(digest),
        Body: createReadStream(path),
        ContentLength: size,
        ChecksumSHA256: Buffer.from(hexOf(digest), 'hex').toString('base64'),
      }),
    );
  }

  async delete(digest: string): Promise<void> {
    await this.#client.send(
      new this.#sdk.DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#key(digest) }),
    );
  }

  async *list(): AsyncIterable<BlobInfo> {
    for await (const page of this.#sdk.paginateListObjectsV2(
      { client: this.#client },
      { Bucket: this.#bucket, Prefix: this.#prefix },
    )) {
      for (const o of page.Contents ?? []) {
        const digest = `sha256:${(o.Key ?? '').slice(this.#prefix.length)}`;
        if (!isDigest(digest)) continue;
        yield { digest, size: o.Size ?? 0, modifiedMs: o.LastModified?.getTime() ?? 0 };
      }
    }
  }

  close(): void {
    this.#client.destroy();
  }
}

function isMissing(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata?.httpStatusCode === 404;
}
