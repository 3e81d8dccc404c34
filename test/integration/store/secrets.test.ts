/**
 * Secrets at rest, as a local user or a stolen backup sees them: the database files' modes, what their raw
 * bytes (or the PostgreSQL table) hold, a deleted key, a plaintext secret from an older Strata, and a
 * wrong key file. Both drivers where the behaviour is theirs to give.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import { openStore } from '../../../src/core/store/index.ts';
import { SqliteStore } from '../../../src/core/store/sqlite.ts';
import { postgresSkipReason, withPostgres } from '../../helpers/services.ts';
import { suiteCleanup, tempDir } from '../../helpers/strata.ts';

const PRIVATE = [
  '-----BEGIN OPENSSH PRIVATE KEY-----',
  'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
  'QyNTUxOQAAACDsecuritybranchtestkeymaterialxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  '-----END OPENSSH PRIVATE KEY-----',
  '',
].join('\n');
const MARK = 'DsecuritybranchtestkeymaterialxxxxxxxxxxxxxxxxxxxxxxxxxxxX'.slice(1, 30);

/** Every byte SQLite keeps for a database: the file, its WAL and shared memory. */
function rawSqlite(db: string): string {
  return [db, `${db}-wal`, `${db}-shm`]
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f).toString('latin1'))
    .join('');
}

const mode = (f: string) => statSync(f).mode & 0o777;

describe('secrets at rest: SQLite', () => {
  const t = suiteCleanup();

  it('strata.db, -wal and -shm are 0600 whatever the umask and a 0755 directory', async () => {
    const dir = join(tempDir(t, 'security-store-'), 'data');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const old = process.umask(0o022);
    try {
      for (const spec of ['', `sqlite:${join(dir, 'other', 'x.db')}`]) {
        const s = await openStore(spec, dir);
        await s.putRecords('secrets', [{ key: 'sshkey/a', value: { privateKey: PRIVATE } }]);
        const db = spec ? join(dir, 'other', 'x.db') : join(dir, 'strata.db');
        for (const f of [db, `${db}-wal`, `${db}-shm`]) {
          assert.ok(existsSync(f), f);
          assert.equal(mode(f).toString(8), '600', f);
        }
        assert.equal(mode(join(dir, 'secret.key')).toString(8), '600');
        await s.close();
      }
    } finally {
      process.umask(old);
    }
  });

  it('a private key is sealed in the file, readable through the store, and gone once deleted', async () => {
    const dir = tempDir(t, 'security-store-');
    const db = join(dir, 'strata.db');
    const s = await openStore('', dir);
    await s.putRecords('secrets', [{ key: 'sshkey/a', value: { privateKey: PRIVATE } }]);
    assert.deepEqual(await s.getRecord('secrets', 'sshkey/a'), { privateKey: PRIVATE });
    assert.deepEqual(await s.listRecords('secrets'), [{ key: 'sshkey/a', value: { privateKey: PRIVATE } }]);
    const raw = rawSqlite(db);
    assert.ok(!raw.includes(MARK), 'no plaintext key material in strata.db, -wal or -shm');
    assert.ok(!raw.includes('PRIVATE KEY'));
    // The longest sealed value is the key's (the other one is the key check).
    const sealed = [...raw.matchAll(/v1\.[A-Za-z0-9+/=]+/g)]
      .map((m) => m[0])
      .sort((a, b) => b.length - a.length)[0];
    assert.ok(sealed && sealed.length > PRIVATE.length, 'the sealed value is there');
    await s.deleteRecords('secrets', ['sshkey/a']);
    assert.equal(await s.getRecord('secrets', 'sshkey/a'), undefined);
    assert.ok(!rawSqlite(db).includes(sealed), 'not even the ciphertext is left in the files');
    await s.close();
  });

  it('plaintext secrets of an older Strata are sealed on start', async () => {
    const dir = tempDir(t, 'security-store-');
    const db = join(dir, 'strata.db');
    const old = new SqliteStore(db);
    await old.putRecords('secrets', [{ key: 'sshkey/old', value: { privateKey: PRIVATE } }]);
    await old.close();
    assert.ok(rawSqlite(db).includes(MARK), 'the old layout is plaintext');
    const s = await openStore('', dir);
    assert.deepEqual(await s.getRecord('secrets', 'sshkey/old'), { privateKey: PRIVATE });
    await s.close();
    assert.ok(!rawSqlite(db).includes(MARK), 'sealed after one start');
  });

  it('a different key file is refused with a clear error, and STRATA_SECRET_KEY_FILE is honoured', async () => {
    const dir = tempDir(t, 'security-store-');
    const keyFile = join(tempDir(t, 'security-key-'), 'k');
    process.env.STRATA_SECRET_KEY_FILE = keyFile;
    try {
      const s = await openStore('', dir);
      await s.putRecords('secrets', [{ key: 'x', value: { v: 1 } }]);
      await s.close();
      assert.ok(existsSync(keyFile) && !existsSync(join(dir, 'secret.key')));
      writeFileSync(keyFile, `${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
      await assert.rejects(openStore('', dir), /does not open the secrets in this database/);
    } finally {
      delete process.env.STRATA_SECRET_KEY_FILE;
    }
  });
});

describe('secrets at rest: PostgreSQL', { skip: await postgresSkipReason() }, () => {
  const t = suiteCleanup();

  it('the records table holds ciphertext only; plaintext from an older Strata is sealed on start', async () => {
    const db = await withPostgres(t);
    const dir = tempDir(t, 'security-pg-');
    const { PostgresStore } = await import('../../../src/core/store/postgres.ts');
    const old = await PostgresStore.open(db.url);
    await old.putRecords('secrets', [{ key: 'sshkey/old', value: { privateKey: PRIVATE } }]);
    await old.close();
    const s = await openStore(db.url, dir);
    await s.putRecords('secrets', [{ key: 'sshkey/new', value: { privateKey: PRIVATE } }]);
    assert.deepEqual(await s.getRecord('secrets', 'sshkey/old'), { privateKey: PRIVATE });
    assert.deepEqual(await s.getRecord('secrets', 'sshkey/new'), { privateKey: PRIVATE });
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      const rows = (
        await c.query<{ v: string }>("SELECT value::text AS v FROM records WHERE collection = 'secrets'")
      ).rows;
      assert.equal(rows.length, 2);
      for (const r of rows) {
        assert.ok(!r.v.includes(MARK) && !r.v.includes('PRIVATE KEY'), r.v);
        assert.match(r.v, /"sealed": "v1\./);
      }
      await s.deleteRecords('secrets', ['sshkey/new']);
      const left = await c.query("SELECT key FROM records WHERE collection = 'secrets'");
      assert.deepEqual(
        left.rows.map((r) => r.key),
        ['sshkey/old'],
      );
    } finally {
      await c.end();
      await s.close();
    }
  });
});
