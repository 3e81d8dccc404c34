/**
 * Bearer tokens kept only as SHA-256 hashes and compared in constant time: the API's admin token and the
 * per-node install tokens share this, so there is one way to store and check a secret credential.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** True when `Authorization: Bearer <token>` carries the token whose hash is `hash`. */
export function tokenMatches(hash: string | undefined, header: string | undefined): boolean {
  if (!hash || !header?.startsWith('Bearer ')) return false;
  const a = Buffer.from(hash, 'hex');
  const b = Buffer.from(hashToken(header.slice(7).trim()), 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
