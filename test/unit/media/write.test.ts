/**
 * What `strata media write` refuses before touching anything, with the mount table in a temporary file:
 * a target that does not exist, a non-block target without --force, and a mounted one even with --force.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeRefusal } from '../../../src/media/write.ts';

describe('media write refusals', () => {
  const root = mkdtempSync(join(tmpdir(), 'strata-sys-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const sys = join(root, 'sys');
  const mounts = join(root, 'mounts');
  mkdirSync(sys);
  // The refusals that need a block device (not removable, a partition) are tested on a real loop device in
  // test/integration/media/write.test.ts.

  it('refuses a device that does not exist, and a non-block file without --force', async () => {
    writeFileSync(mounts, '');
    assert.match(
      (await writeRefusal(join(root, 'nope'), { sysRoot: sys, mountsFile: mounts }))!,
      /does not exist/,
    );
    assert.match(
      (await writeRefusal('/dev/null', { sysRoot: sys, mountsFile: mounts }))!,
      /not a block device/,
    );
    assert.equal(
      await writeRefusal('/dev/null', { sysRoot: sys, mountsFile: mounts, force: true }),
      undefined,
    );
  });

  it('refuses a mounted target even with --force', async () => {
    writeFileSync(mounts, '/dev/null /mnt vfat rw 0 0\n');
    assert.match(
      (await writeRefusal('/dev/null', { sysRoot: sys, mountsFile: mounts, force: true }))!,
      /in use: \/dev\/null mounted .*--force does not override/,
    );
  });
});
