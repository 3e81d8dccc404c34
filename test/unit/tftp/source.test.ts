import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../../src/core/log.ts';
import {
  chainSources,
  DirectorySource,
  memorySource,
  mountSources,
  type OpenFile,
  TftpError,
} from '../../../src/tftp/source.ts';

const client = { address: '192.0.2.10', port: 2070 };

async function readAll(f: OpenFile): Promise<string> {
  const buf = Buffer.alloc(f.size);
  const n = await f.read(buf, 0);
  await f.close();
  return buf.subarray(0, n).toString();
}

const refused = (err: unknown) => err instanceof TftpError && err.code === 2;

describe('DirectorySource', () => {
  let base: string;
  let root: string;
  const logLines: string[] = [];
  let src: DirectorySource;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'strata-tftp-src-'));
    root = join(base, 'root');
    await mkdir(join(root, 'efi', 'x64'), { recursive: true });
    await writeFile(join(root, 'ipxe.efi'), 'IPXE');
    await writeFile(join(root, 'efi', 'x64', 'boot.efi'), 'BOOT');
    await writeFile(join(base, 'secret'), 'SECRET');
    await symlink('ipxe.efi', join(root, 'alias.efi'));
    await symlink('../secret', join(root, 'escape'));
    await symlink(base, join(root, 'up'));
    await symlink('/etc/passwd', join(root, 'passwd'));
    src = new DirectorySource(root, { logger: createLogger({}, (l) => logLines.push(l)) });
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('serves files and subdirectories with positional reads', async () => {
    assert.equal(await readAll((await src.open('ipxe.efi', client))!), 'IPXE');
    assert.equal(await readAll((await src.open('efi/x64/boot.efi', client))!), 'BOOT');
    assert.equal(await readAll((await src.open('./efi//x64/./boot.efi', client))!), 'BOOT');
    const f = (await src.open('ipxe.efi', client))!;
    const b = Buffer.alloc(2);
    assert.equal(await f.read(b, 2), 2);
    assert.equal(b.toString(), 'XE');
    assert.equal(await f.read(b, 4), 0);
    await f.close();
  });

  it('serves a file rewritten in place, or replaced by a rename, new at the next open', async () => {
    const dir = join(base, 'cache');
    await mkdir(dir);
    const cached = new DirectorySource(dir);
    await writeFile(join(dir, 'undionly.kpxe'), 'FIRST');
    assert.equal(await readAll((await cached.open('undionly.kpxe', client))!), 'FIRST');
    assert.equal(await readAll((await cached.open('undionly.kpxe', client))!), 'FIRST');
    await writeFile(join(dir, 'undionly.kpxe'), 'SECND'); // same size, same inode
    assert.equal(await readAll((await cached.open('undionly.kpxe', client))!), 'SECND');
    await writeFile(join(dir, 'next'), 'THIRD!');
    await rename(join(dir, 'next'), join(dir, 'undionly.kpxe'));
    assert.equal(await readAll((await cached.open('undionly.kpxe', client))!), 'THIRD!');
    await rm(join(dir, 'undionly.kpxe'));
    assert.equal(await cached.open('undionly.kpxe', client), null, 'a removed file is gone');
    // A file too big for the memory it may use is read from disk, block by block, as before.
    await writeFile(join(dir, 'vmlinuz'), 'KERNEL');
    const small = new DirectorySource(dir, { cacheBytes: 16 });
    assert.equal(await readAll((await small.open('vmlinuz', client))!), 'KERNEL');
    await writeFile(join(dir, 'vmlinuz'), 'KERNEX');
    assert.equal(await readAll((await small.open('vmlinuz', client))!), 'KERNEX');
  });

  it('treats backslashes as separators (Windows-built loaders)', async () => {
    assert.equal(await readAll((await src.open('efi\\x64\\boot.efi', client))!), 'BOOT');
    await assert.rejects(src.open('..\\secret', client), refused);
  });

  it('follows symlinks that stay inside the root', async () => {
    assert.equal(await readAll((await src.open('alias.efi', client))!), 'IPXE');
  });

  it('refuses parent segments, absolute paths and NUL bytes with error 2, and logs them', async () => {
    for (const p of [
      '../secret',
      '../../etc/passwd',
      'efi/../../secret',
      'efi/..',
      '/etc/passwd',
      '/ipxe.efi',
      'a\0b',
    ]) {
      await assert.rejects(src.open(p, client), refused, p);
    }
    assert.ok(logLines.some((l) => l.includes('"reason":"parent directory segment"')));
    assert.ok(logLines.some((l) => l.includes('"reason":"absolute path"') && l.includes('192.0.2.10:2070')));
  });

  it('refuses symlinks that resolve outside the root', async () => {
    await assert.rejects(src.open('escape', client), refused);
    await assert.rejects(src.open('up/secret', client), refused);
    await assert.rejects(src.open('passwd', client), refused);
    assert.ok(logLines.some((l) => l.includes('"reason":"resolves outside root"')));
  });

  it('answers null (file not found) for missing files and directories', async () => {
    assert.equal(await src.open('nope', client), null);
    assert.equal(await src.open('efi', client), null);
    assert.equal(await src.open('ipxe.efi/x', client), null);
    assert.equal(await src.open('.', client), null);
  });

  it('allowLeadingSlash maps /x to root/x like in.tftpd -s', async () => {
    const s = new DirectorySource(root, { allowLeadingSlash: true });
    assert.equal(await readAll((await s.open('/ipxe.efi', client))!), 'IPXE');
    assert.equal(await s.open('/etc/passwd', client), null);
    await assert.rejects(s.open('/../secret', client), refused);
  });

  it('mountSources maps prefixes onto roots; chainSources falls through', async () => {
    const builtins = memorySource({ 'undionly.kpxe': Buffer.from('KPXE') });
    const m = mountSources([
      { prefix: 'ipxe/', source: builtins },
      { prefix: '', source: src },
    ]);
    assert.equal(await readAll((await m.open('ipxe/undionly.kpxe', client))!), 'KPXE');
    assert.equal(await readAll((await m.open('ipxe.efi', client))!), 'IPXE');
    assert.equal(await m.open('ipxe/../../secret', client), null); // memorySource: names, not paths
    await assert.rejects(m.open('../secret', client), refused);
    const c = chainSources(builtins, src);
    assert.equal(await readAll((await c.open('undionly.kpxe', client))!), 'KPXE');
    assert.equal(await readAll((await c.open('ipxe.efi', client))!), 'IPXE');
    assert.equal(await c.open('missing', client), null);
  });
});
