/**
 * Bearer-token auth for the API. The admin token is made on first start, printed once, and kept only as a
 * SHA-256 hash in the store; a copy readable only by root sits in the data directory for the local CLI
 * (as k3s does with its server token). Comparison is constant-time.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../core/store/types.ts';
import { hashToken, tokenMatches } from '../core/tokens.ts';

export { hashToken };

const COLLECTION = 'auth.tokens';

export function tokenFile(dataDir: string): string {
  return join(dataDir, 'admin-token');
}

/** Returns the new token when one was created (the caller prints it once), else undefined. */
export async function ensureAdminToken(
  store: Store,
  dataDir: string,
  fixed?: string,
): Promise<string | undefined> {
  if (fixed) {
    await store.putRecords(COLLECTION, [{ key: 'admin', value: { hash: hashToken(fixed) } }]);
    return undefined;
  }
  if (await store.getRecord(COLLECTION, 'admin')) return undefined;
  const token = `strata_${randomBytes(24).toString('base64url')}`;
  await store.putRecords(COLLECTION, [
    { key: 'admin', value: { hash: hashToken(token), createdAt: new Date().toISOString() } },
  ]);
  writeFileSync(tokenFile(dataDir), token + '\n', { mode: 0o600 });
  return token;
}

export function readLocalToken(dataDir: string): string | undefined {
  const f = tokenFile(dataDir);
  return existsSync(f) ? readFileSync(f, 'utf8').trim() : undefined;
}

export class TokenAuth {
  #hashes: string[] = [];
  readonly #store: Store;
  constructor(store: Store) {
    this.#store = store;
  }

  async load(): Promise<void> {
    const recs = await this.#store.listRecords(COLLECTION);
    this.#hashes = recs.map((r) => (r.value as { hash: string }).hash);
  }

  /** True when the Authorization header carries a known token. */
  check(header: string | undefined): boolean {
    return this.#hashes.some((h) => tokenMatches(h, header));
  }
}
