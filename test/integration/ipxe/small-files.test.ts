/**
 * The small-artifact memory (src/ipxe/small-files.ts) on a real directory: what it declines to `send`,
 * what it holds within its budget, and a file changed under it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type SmallFile, SmallFiles } from '../../../src/ipxe/small-files.ts';

/** The file held for `rel`, failing if the memory says it is outside the root. */
async function held(files: SmallFiles, rel: string): Promise<SmallFile | undefined> {
  const got = await files.get(rel);
  assert.notEqual(got, 'outside', rel);
  return got === 'outside' ? undefined : got;
}

describe('small artifacts in memory', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'strata-small-'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'a.ipxe'), 'a'.repeat(400));
    writeFileSync(join(dir, 'b.cfg'), 'b'.repeat(400));
    writeFileSync(join(dir, 'c.bin'), 'c'.repeat(400));
    writeFileSync(join(dir, 'big.img'), Buffer.alloc(2000));
    writeFileSync(join(dir, '.hidden'), 'secret');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('leaves to send what send refuses or streams', async () => {
    const files = new SmallFiles(dir, { maxFileBytes: 1000 });
    for (const rel of [
      '/big.img',
      '/.hidden',
      '/sub',
      '/sub/',
      '/missing',
      '/%E0%A4%A',
      '/sub/../b.cfg',
      '/b.cfg/x',
    ])
      assert.equal(await files.get(rel), undefined, rel);
    assert.equal(files.size, 0);
  });

  it('holds files up to its budget, the least recently served going first', async () => {
    const files = new SmallFiles(dir, { maxFileBytes: 1000, maxBytes: 1000 });
    const a = await held(files, '/sub/a.ipxe');
    assert.equal(a?.bytes.toString(), 'a'.repeat(400));
    assert.equal(a?.contentType, 'application/octet-stream');
    assert.match(a?.etag ?? '', /^W\/"190-[0-9a-f]+"$/);
    assert.equal((await held(files, '/b.cfg'))?.bytes.length, 400);
    assert.equal(files.size, 800);
    await files.get('/sub/a.ipxe'); // a is now the most recent: c's arrival drops b
    await files.get('/c.bin');
    assert.equal(files.size, 800);
    // The same object while the file is unchanged; b is read again (and c dropped).
    assert.equal(await files.get('/sub/a.ipxe'), a);
    await files.get('/b.cfg');
    assert.equal(files.size, 800);
  });

  it('reads a file changed under it afresh', async () => {
    const files = new SmallFiles(dir);
    writeFileSync(join(dir, 'menu.txt'), 'one');
    assert.equal((await held(files, '/menu.txt'))?.bytes.toString(), 'one');
    writeFileSync(join(dir, 'menu.txt'), 'two');
    assert.equal((await held(files, '/menu.txt'))?.bytes.toString(), 'two');
    assert.equal((await held(files, '/menu.txt'))?.contentType, 'text/plain; charset=utf-8');
    rmSync(join(dir, 'menu.txt'));
    assert.equal(await files.get('/menu.txt'), undefined);
  });

  it('says when a link leaves the root, and holds nothing for it', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'strata-small-out-'));
    try {
      writeFileSync(join(outside, 'secret.txt'), 'not yours');
      symlinkSync(join(outside, 'secret.txt'), join(dir, 'escape.txt'));
      const files = new SmallFiles(dir);
      assert.equal(await files.get('/escape.txt'), 'outside');
      assert.equal(files.size, 0);
    } finally {
      rmSync(join(dir, 'escape.txt'), { force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('counts a file read by many requests at once once, and once again after it changed', async () => {
    const files = new SmallFiles(dir);
    writeFileSync(join(dir, 'many.txt'), 'x'.repeat(100));
    await Promise.all(Array.from({ length: 20 }, () => files.get('/many.txt')));
    assert.equal(files.size, 100);
    writeFileSync(join(dir, 'many.txt'), 'y'.repeat(300));
    const got = await Promise.all(Array.from({ length: 20 }, () => files.get('/many.txt')));
    for (const f of got) assert.equal(f === 'outside' ? f : f?.bytes.toString(), 'y'.repeat(300));
    assert.equal(files.size, 300);
  });
});
