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

/**
 * API roles, weakest first: each one may do what the ones before it may. viewer reads (and never a
 * secret, whatever the role); operator does the day-to-day verbs (apply, patch, power, work orders, lab,
 * exec); admin also manages tokens and the registry. Routes declare the role they need (core/http.ts).
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** Who a request's token says it is: its name, role, and the networks it is limited to (all when absent). */
export interface Principal {
  name: string;
  role: Role;
  networks?: string[];
}
