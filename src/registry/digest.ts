/**
 * Digests and artifact names: the pure rules every part of the registry shares. A digest is written as
 * `sha256:<64 lower-case hex>` (the OCI form), so one string names a blob everywhere: in the store, on the
 * wire, in a bundle's manifest and in the node's fetch helper. Verification is a Transform that hashes what
 * passes through and holds back the last chunk until the digest is known: a reader of a corrupted blob
 * never receives the whole body, so a truncated transfer is the worst a client can see, never bad bytes
 * that look complete.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { StrataError } from '../core/resources/errors.ts';

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
/** Path-like: `/` groups (`debian/amd64/nebula`), `+` for Debian's `libstdc++6`; no spaces, no `..`. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*(\/[A-Za-z0-9][A-Za-z0-9._+-]*)*$/;
/** Debian versions carry an epoch (`1:2.3`), `~` and `+`. */
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+~:-]*$/;

export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** Throws a 400 naming the field when `s` is not `sha256:<64 hex>`. */
export function mustDigest(s: string, field = 'digest'): string {
  if (!isDigest(s)) {
    throw new StrataError(
      400,
      'BadRequest',
      `${field}: invalid digest "${s.slice(0, 80)}": expected sha256: and 64 lower-case hex digits`,
    );
  }
  return s;
}

export function hexOf(digest: string): string {
  return digest.slice('sha256:'.length);
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function mustName(s: string, field = 'name'): string {
  if (s.length > 200 || !NAME_RE.test(s)) {
    throw new StrataError(
      400,
      'BadRequest',
      `${field}: invalid artifact name "${s.slice(0, 80)}": use letters, digits, . _ + - and / between parts, like debian/amd64/nebula`,
    );
  }
  return s;
}

export function mustVersion(s: string, field = 'version'): string {
  if (s.length > 128 || !VERSION_RE.test(s)) {
    throw new StrataError(
      400,
      'BadRequest',
      `${field}: invalid version "${s.slice(0, 80)}": use letters, digits and . _ + ~ : -, like 1.6.1+dfsg-1`,
    );
  }
  return s;
}

/** `NAME:VERSION` → parts. Names hold no `:`, so the first one splits (versions may hold epochs). */
export function parseRef(s: string): { name: string; version: string } {
  const i = s.indexOf(':');
  if (i <= 0 || i === s.length - 1) {
    throw new StrataError(
      400,
      'BadRequest',
      `invalid reference "${s}": expected NAME:VERSION like tools/jq:1.7`,
    );
  }
  return { name: mustName(s.slice(0, i)), version: mustVersion(s.slice(i + 1)) };
}

export class DigestMismatchError extends StrataError {
  constructor(expected: string, actual: string, size: number) {
    super(
      400,
      'DigestMismatch',
      `content does not match its digest: expected ${expected}, got ${actual} (${size} bytes); it was refused`,
    );
  }
}

/**
 * Hashes the bytes flowing through. With `expected`, the last chunk is held back until the end and the
 * stream fails with DigestMismatchError instead of delivering it when the digest differs.
 */
export class DigestStream extends Transform {
  readonly #hash: Hash = createHash('sha256');
  readonly #expected: string | undefined;
  #held: Buffer | undefined;
  size = 0;
  digest: string | undefined;

  constructor(expected?: string) {
    super();
    this.#expected = expected;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.size += chunk.length;
    if (this.#expected === undefined) {
      cb(null, chunk);
      return;
    }
    const out = this.#held;
    this.#held = chunk;
    cb(null, out);
  }

  override _flush(cb: TransformCallback): void {
    this.digest = `sha256:${this.#hash.digest('hex')}`;
    if (this.#expected !== undefined && this.digest !== this.#expected) {
      cb(new DigestMismatchError(this.#expected, this.digest, this.size));
      return;
    }
    cb(null, this.#held);
  }
}
