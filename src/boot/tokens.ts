/**
 * Per-node install tokens: issued with each install boot script, checked on every installer call, kept only
 * as hashes. A token works for the node it was issued to and for no other.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const INSTALL_TOKENS = 'install.tokens';
export const INSTALLED_TOKENS = 'install.installed-tokens';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function tokenMatches(hash: string | undefined, header: string | undefined): boolean {
  if (!hash || !header?.startsWith('Bearer ')) return false;
  const a = Buffer.from(hash, 'hex');
  const b = Buffer.from(hashToken(header.slice(7).trim()), 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
