/**
 * Picks the store driver from one setting (`--store` / `STRATA_STORE`): a `postgres://` or
 * `postgresql://` URL opens PostgreSQL (several managers sharing one database); `sqlite:PATH` or nothing
 * opens SQLite, by default at `<dataDir>/strata.db` (the embedded, zero set-up default). The PostgreSQL
 * driver is loaded only when asked for, so the embedded default never loads `pg`.
 *
 * Either driver is wrapped so that secret collections are sealed at rest (sealed.ts) with the key in
 * STRATA_SECRET_KEY_FILE or `<dataDir>/secret.key`.
 */
import { join, resolve } from 'node:path';
import { SealedStore } from './sealed.ts';
import { SqliteStore } from './sqlite.ts';
import type { Store } from './types.ts';

export type { Store } from './types.ts';

export interface StoreOptions {
  /** Changes the log keeps for resuming watches (default CHANGE_LOG_KEEP). */
  changeLogKeep?: number;
}

/** Where the key that seals secrets lives. */
export function secretKeyFile(dataDir: string): string {
  return process.env.STRATA_SECRET_KEY_FILE || join(dataDir, 'secret.key');
}

export async function openStore(spec: string, dataDir: string, opts: StoreOptions = {}): Promise<Store> {
  const store = new SealedStore(await openDriver(spec, dataDir, opts), secretKeyFile(dataDir));
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

async function openDriver(spec: string, dataDir: string, opts: StoreOptions): Promise<Store> {
  const s = spec.trim();
  if (/^postgres(ql)?:\/\//i.test(s)) {
    const { PostgresStore } = await import('./postgres.ts');
    return PostgresStore.open(s, opts);
  }
  if (s === '' || /^sqlite:$/i.test(s)) return new SqliteStore(join(dataDir, 'strata.db'), opts);
  if (/^sqlite:/i.test(s)) {
    const path = s.slice('sqlite:'.length);
    return new SqliteStore(path === ':memory:' ? path : resolve(path), opts);
  }
  throw new Error(
    `unknown store "${s}": use postgres://USER:PASSWORD@HOST:PORT/DB, sqlite:PATH, or nothing for ${join(dataDir, 'strata.db')}`,
  );
}
