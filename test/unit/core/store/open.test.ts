/**
 * `openStore` picks the driver from one setting; only the SQLite cases need no server.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openStore } from '../../../../src/core/store/index.ts';

describe('openStore', () => {
  it('opens SQLite at <dataDir>/strata.db for an empty spec or a bare "sqlite:"', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-open-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    for (const spec of ['', '  ', 'sqlite:']) {
      const s = await openStore(spec, dir);
      assert.equal(s.driver, 'sqlite');
      await s.close();
    }
    assert.ok(existsSync(join(dir, 'strata.db')));
  });

  it('opens SQLite at the given path, or in memory', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-open-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const s = await openStore(`sqlite:${join(dir, 'sub', 'x.db')}`, '/nonexistent');
    await s.close();
    assert.ok(existsSync(join(dir, 'sub', 'x.db')));
    const m = await openStore('sqlite::memory:', '/nonexistent');
    assert.equal(m.driver, 'sqlite');
    await m.close();
  });

  it('rejects an unknown scheme, naming the accepted ones', async () => {
    await assert.rejects(
      openStore('mysql://db/strata', '/data'),
      /unknown store "mysql:\/\/db\/strata": use postgres:\/\//,
    );
  });
});
