/**
 * The SQLite store's WAL is checkpointed by its own thread (src/core/store/checkpointer.ts), not inside a
 * commit on the event loop: writes land in the WAL, and within a few seconds they are in the database
 * file itself, without any further write or a close.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SqliteStore } from '../../../src/core/store/sqlite.ts';
import { tempDir } from '../../helpers/strata.ts';

const size = (f: string) => statSync(f).size;

describe('SQLite checkpointer thread', () => {
  it('copies committed writes into the database file by itself, off the event loop', async (t) => {
    const file = join(tempDir(t, 'strata-ckpt-'), 'strata.db');
    const store = new SqliteStore(file);
    t.after(() => store.close());
    await new Promise((r) => setTimeout(r, 1500)); // the checkpoint of the migrations
    const before = size(file);
    // ~1 MB: well under SQLite's automatic checkpoint (1,000 pages), which the store turns off anyway.
    await store.putRecords(
      'bulk',
      Array.from({ length: 500 }, (_, i) => ({ key: `k${i}`, value: { pad: 'x'.repeat(2000) } })),
    );
    assert.ok(size(`${file}-wal`) > 1_000_000, 'the write is in the WAL');
    const end = Date.now() + 5000;
    while (size(file) < before + 1_000_000 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    assert.ok(size(file) >= before + 1_000_000, `database file ${before} → ${size(file)} bytes`);
    assert.equal(((await store.getRecord('bulk', 'k499')) as { pad: string }).pad.length, 2000);
  });
});
