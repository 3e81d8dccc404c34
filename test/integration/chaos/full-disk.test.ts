/**
 * A full disk under the data directory: `strata up` runs on a 16 MiB ext4 filesystem loop-mounted in a
 * temporary directory (unmounted and removed afterwards, even on failure), which the test then fills.
 * Writes must fail with a clear answer naming the disk (507), reads keep working, the database stays
 * intact (PRAGMA integrity_check), and once space is freed writes succeed again without a restart.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { before, describe, it } from 'node:test';
import { type StrataServer, startStrata, suiteCleanup, tempDir } from '../../helpers/strata.ts';

const root = process.getuid?.() === 0;
const have = (cmd: string) => {
  try {
    execFileSync('which', [cmd], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const skip = !root ? 'needs root (mount)' : !have('mkfs.ext4') ? 'no mkfs.ext4' : false;

const node = (name: string, i: number) =>
  `apiVersion: strata.dev/v1alpha1
kind: Node
metadata: {name: ${name}, annotations: {note: "${'x'.repeat(2000)}"}}
spec:
  macAddresses: ["52:54:00:aa:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}"]
  hostname: ${name}.example
`;

describe('a full disk under the data directory', { skip }, () => {
  const t = suiteCleanup();
  let mnt: string;
  let strata: StrataServer;

  before(async () => {
    const dir = tempDir(t, 'strata-chaos-disk-');
    const image = join(dir, 'disk.img');
    mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    execFileSync('truncate', ['-s', '16M', image]);
    execFileSync('mkfs.ext4', ['-q', '-m', '0', '-F', image]);
    execFileSync('mount', ['-o', 'loop', image, mnt]);
    // Runs after the server stops (cleanups run in reverse order).
    t.after(() => {
      execFileSync('umount', [mnt], { stdio: 'ignore' });
    });
    const data = join(mnt, 'data');
    mkdirSync(data);
    strata = await startStrata(t, { dataDir: data });
  });

  const fill = () => {
    for (const [i, bs] of ['1M', '4k'].entries()) {
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, `fill${i}`)}`, `bs=${bs}`], { stdio: 'ignore' });
      } catch {
        // dd stops with ENOSPC: that is the point.
      }
    }
  };

  it('refuses writes with a clear 507 while full, stays intact, and resumes when space returns', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await strata.api('POST', '/api/v1/apply', node(`before-${i}`, i));
      assert.equal(r.status < 300, true, r.text);
    }
    fill();
    const refused: { status: number; text: string }[] = [];
    for (let i = 0; i < 200 && refused.length < 5; i++) {
      const r = await strata.api('POST', '/api/v1/apply', node(`full-${i}`, 1000 + i));
      if (r.status >= 300) refused.push({ status: r.status, text: r.text });
      // Fill what the server freed up or what the filesystem still had.
      if (i % 10 === 9) fill();
    }
    assert.ok(refused.length > 0, 'writes are refused once the disk is full');
    for (const r of refused) {
      assert.equal(r.status, 507, r.text);
      assert.match(r.text, /disk|space/i);
      assert.match(
        r.text,
        new RegExp(strata.dataDir.replace(/[/.]/g, '\\$&')),
        'the message names the data directory',
      );
    }
    // Reads still work and the server is alive.
    const h = await fetch(`${strata.url}/healthz`);
    assert.ok(h.status === 200 || h.status === 503, `healthz answers (${h.status})`);
    const list = await strata.api('GET', '/api/v1/nodes');
    assert.equal(list.status, 200, list.text);
    assert.equal(strata.child.exitCode, null, 'the server did not crash');

    // Space returns: writes succeed again, no restart.
    rmSync(join(mnt, 'fill0'), { force: true });
    rmSync(join(mnt, 'fill1'), { force: true });
    const pid = strata.child.pid;
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      const r = await strata.api('POST', '/api/v1/apply', node(`after-${i}`, 2000 + i));
      ok = r.status < 300;
      if (!ok) await new Promise((res) => setTimeout(res, 200));
    }
    assert.ok(ok, 'writes succeed again once space is freed');
    assert.equal(strata.child.pid, pid, 'same process');
    const after = await strata.api('GET', '/api/v1/nodes/after-0');
    assert.equal(after.status, 200);

    const db = new DatabaseSync(join(strata.dataDir, 'strata.db'), { readOnly: true });
    try {
      const rows = db.prepare('PRAGMA integrity_check').all();
      assert.deepEqual(
        rows.map((r) => ({ ...r })),
        [{ integrity_check: 'ok' }],
      );
    } finally {
      db.close();
    }
  });
});
