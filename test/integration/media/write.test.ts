/**
 * `strata media write IMAGE DEVICE`: refuses a disk the kernel does not mark removable (a loop device here,
 * /sys/block/loopN/removable = 0) and anything that is not a block device, unless `--force`; with it, the
 * device ends up holding the image byte for byte. Needs root for the loop device (skipped without one).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli, suiteCleanup, tempDir } from '../../helpers/strata.ts';

function loopDevice(file: string): string | undefined {
  try {
    return execFileSync('losetup', ['-f', '--show', file], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

describe('strata media write', () => {
  const t = suiteCleanup();

  it('refuses fixed disks and plain files unless --force, then writes the image', async (tc) => {
    const dir = tempDir(t, 'strata-media-write-');
    const image = join(dir, 'm.img');
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 123);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 255;
    writeFileSync(image, bytes);

    const target = join(dir, 'target.bin');
    writeFileSync(target, '');
    const plain = await runCli(['media', 'write', image, target]);
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /is not a block device .*--force/);
    assert.equal(readFileSync(target).length, 0, 'nothing written');
    const forced = await runCli(['media', 'write', '--force', image, target]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, new RegExp(`wrote ${bytes.length} bytes`));
    assert.match(forced.stderr, /\] target\.bin done 100%: written and flushed\n/);
    assert.ok(readFileSync(target).equals(bytes));

    const missing = await runCli(['media', 'write', image, join(dir, 'nope')]);
    assert.match(missing.stderr, /nope does not exist/);

    const backing = join(dir, 'disk.bin');
    writeFileSync(backing, Buffer.alloc(8 * 1024 * 1024));
    const loop = loopDevice(backing);
    if (!loop) return tc.skip('no loop device here (needs root and the loop module)');
    t.after(() => execFileSync('losetup', ['-d', loop]));
    const name = loop.replace('/dev/', '');
    assert.equal(readFileSync(`/sys/block/${name}/removable`, 'utf8').trim(), '0');
    const fixed = await runCli(['media', 'write', image, loop]);
    assert.notEqual(fixed.code, 0);
    assert.match(fixed.stderr, new RegExp(`${loop} is not a removable disk .*removable is 0`));
    assert.ok(
      readFileSync(backing)
        .subarray(0, bytes.length)
        .every((b) => b === 0),
      'nothing written',
    );
    const ok = await runCli(['media', 'write', '--force', image, loop]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(readFileSync(backing).subarray(0, bytes.length).equals(bytes));
  });
});
