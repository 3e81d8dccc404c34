/**
 * Secrets sealed at rest. Records in the `secrets` collection and every `secrets.*` one (SSH private keys
 * now; install attempts; BMC credentials and overlay keys to come) are written as AES-256-GCM ciphertext
 * under a key kept outside the database: a key file in the data directory (0600, made on first use) or the
 * file STRATA_SECRET_KEY_FILE names. A copy of strata.db, a PostgreSQL dump or a backup therefore holds no
 * usable secret without the key file. The record's collection and key are the cipher's associated data, so
 * a sealed value cannot be moved to another record.
 *
 * It wraps either driver (one implementation, the same for SQLite and PostgreSQL). The key is loaded on
 * the first secret read or write, so a store that holds no secret needs no key file; a check value sealed
 * with the first key refuses a different key with a clear error instead of unreadable secrets. Plaintext
 * secrets an older Strata wrote are sealed on open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SECRETS_COLLECTION } from '../wire.ts';
import type { Store, StoredRecord } from './types.ts';

const KEYCHECK = 'secrets.keycheck';
const KEYCHECK_TEXT = 'strata secret key check v1';

export function isSecretCollection(c: string): boolean {
  return c === SECRETS_COLLECTION || c.startsWith(`${SECRETS_COLLECTION}.`);
}

interface Sealed {
  sealed: string;
}
const isSealed = (v: unknown): v is Sealed =>
  typeof v === 'object' && v !== null && typeof (v as Sealed).sealed === 'string';

/** Reads the 32-byte key (base64 or hex) from `file`, creating it (0600) when it does not exist. */
export function loadSecretKey(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another process made it meanwhile
    }
    text = readFileSync(file, 'utf8');
  }
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  const t = text.trim();
  const key = /^[0-9a-f]{64}$/i.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (key.length !== 32)
    throw new Error(
      `secret key file ${file} must hold 32 bytes in base64 or hex (e.g. \`head -c 32 /dev/urandom | base64\`)`,
    );
  return key;
}

export class SecretBox {
  readonly #key: Buffer;
  constructor(key: Buffer) {
    this.#key = key;
  }

  seal(plain: string, aad: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#key, iv).setAAD(Buffer.from(aad));
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `v1.${Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64')}`;
  }

  open(sealed: string, aad: string): string {
    if (!sealed.startsWith('v1.')) throw new Error('unknown sealed-secret format');
    const b = Buffer.from(sealed.slice(3), 'base64');
    const d = createDecipheriv('aes-256-gcm', this.#key, b.subarray(0, 12)).setAAD(Buffer.from(aad));
    d.setAuthTag(b.subarray(12, 28));
    return Buffer.concat([d.update(b.subarray(28)), d.final()]).toString('utf8');
  }
}

/** A store whose secret collections are sealed; everything else passes through unchanged. */
export class SealedStore implements Store {
  readonly #inner: Store;
  readonly #keyFile: string;
  #box: Promise<SecretBox> | undefined;

  constructor(inner: Store, keyFile: string) {
    this.#inner = inner;
    this.#keyFile = keyFile;
  }

  get driver() {
    return this.#inner.driver;
  }

  /**
   * Checks the key against the database when it holds sealed secrets (a wrong key fails at start, not at
   * the first SSH call), and seals secrets an older Strata stored in plaintext.
   */
  async migrate(): Promise<number> {
    if (await this.#inner.getRecord(KEYCHECK, 'key')) await this.#boxed();
    const plain = (await this.#inner.listRecords(SECRETS_COLLECTION)).filter((r) => !isSealed(r.value));
    if (plain.length) await this.putRecords(SECRETS_COLLECTION, plain);
    return plain.length;
  }

  #boxed(): Promise<SecretBox> {
    this.#box ??= (async () => {
      const box = new SecretBox(loadSecretKey(this.#keyFile));
      const check = await this.#inner.getRecord(KEYCHECK, 'key');
      if (!isSealed(check)) {
        await this.#inner.putRecords(KEYCHECK, [
          { key: 'key', value: { sealed: box.seal(KEYCHECK_TEXT, `${KEYCHECK}/key`) } },
        ]);
      } else {
        let ok = false;
        try {
          ok = box.open(check.sealed, `${KEYCHECK}/key`) === KEYCHECK_TEXT;
        } catch {}
        if (!ok)
          throw new Error(
            `the secret key ${this.#keyFile} does not open the secrets in this database: give the key it was made with (STRATA_SECRET_KEY_FILE, or secret.key in the data directory)`,
          );
      }
      return box;
    })();
    this.#box.catch(() => {
      this.#box = undefined;
    });
    return this.#box;
  }

  async #open(collection: string, r: StoredRecord): Promise<StoredRecord> {
    if (!isSecretCollection(collection) || !isSealed(r.value)) return r;
    const box = await this.#boxed();
    return { key: r.key, value: JSON.parse(box.open(r.value.sealed, `${collection}/${r.key}`)) };
  }

  async putRecords(collection: string, records: StoredRecord[]): Promise<void> {
    if (!isSecretCollection(collection) || !records.length)
      return this.#inner.putRecords(collection, records);
    const box = await this.#boxed();
    await this.#inner.putRecords(
      collection,
      records.map((r) => ({
        key: r.key,
        value: { sealed: box.seal(JSON.stringify(r.value), `${collection}/${r.key}`) },
      })),
    );
  }

  async getRecord(collection: string, key: string): Promise<unknown | undefined> {
    const v = await this.#inner.getRecord(collection, key);
    return v === undefined ? undefined : (await this.#open(collection, { key, value: v })).value;
  }

  async listRecords(collection: string): Promise<StoredRecord[]> {
    const rs = await this.#inner.listRecords(collection);
    return Promise.all(rs.map((r) => this.#open(collection, r)));
  }

  deleteRecords(collection: string, keys: string[]): Promise<void> {
    return this.#inner.deleteRecords(collection, keys);
  }
  get: Store['get'] = (kind, name) => this.#inner.get(kind, name);
  list: Store['list'] = (kind, opts) => this.#inner.list(kind, opts);
  lookup: Store['lookup'] = (kind, index, value) => this.#inner.lookup(kind, index, value);
  listVersioned: Store['listVersioned'] = (kind, opts) => this.#inner.listVersioned(kind, opts);
  listVersionedJson: Store['listVersionedJson'] = (kind, opts) => this.#inner.listVersionedJson(kind, opts);
  version: Store['version'] = () => this.#inner.version();
  changes: Store['changes'] = (q) => this.#inner.changes(q);
  write: Store['write'] = (ops) => this.#inner.write(ops);
  appendEvents: Store['appendEvents'] = (events) => this.#inner.appendEvents(events);
  listEvents: Store['listEvents'] = (q) => this.#inner.listEvents(q);
  close: Store['close'] = () => this.#inner.close();
}
