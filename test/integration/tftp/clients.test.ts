/**
 * The server against the TFTP clients people and scripts actually use: tftp-hpa and atftp, as separate
 * processes on 127.0.0.1, fetching files of awkward sizes with and without blksize/windowsize; every
 * download is compared by sha256.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { FILES, type Harness, makeTree, sha256, startServer, waitForSummary } from './helpers.ts';

const run = promisify(execFile);

async function has(bin: string): Promise<boolean> {
  try {
    await run('which', [bin]);
    return true;
  } catch {
    return false;
  }
}
const hasTftp = await has('tftp');
const hasAtftp = await has('atftp');
const missing = (bin: string, ok: boolean) =>
  ok ? false : `${bin} not installed (apt-get install tftp-hpa atftp)`;

let tree: Awaited<ReturnType<typeof makeTree>>;
let h: Harness;
let out: string;
let n = 0;

before(async () => {
  tree = await makeTree();
  h = await startServer(tree.root);
  out = join(tree.root, '..', `${tree.root.split('/').pop()}-out`);
  await run('mkdir', ['-p', out]);
});
after(async () => {
  await h.server.stop();
  await rm(tree.root, { recursive: true, force: true });
  await rm(out, { recursive: true, force: true });
});

/** tftp-hpa exits 0 even on errors: the output says what happened. */
async function tftpHpa(file: string, mode = 'binary'): Promise<{ dest: string; output: string }> {
  const dest = join(out, `hpa-${n++}`);
  const r = await run('tftp', ['-m', mode, '127.0.0.1', String(h.port), '-c', 'get', file, dest], {
    timeout: 60_000,
  });
  return { dest, output: r.stdout + r.stderr };
}

async function atftp(
  file: string,
  options: string[] = [],
): Promise<{ dest: string; output: string; code: number }> {
  const dest = join(out, `atftp-${n++}`);
  const args = [
    '--get',
    '-r',
    file,
    '-l',
    dest,
    ...options.flatMap((o) => ['--option', o]),
    '127.0.0.1',
    String(h.port),
  ];
  try {
    const r = await run('atftp', args, { timeout: 60_000 });
    return { dest, output: r.stdout + r.stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { dest, output: (e.stdout ?? '') + (e.stderr ?? ''), code: e.code ?? -1 };
  }
}

async function hashOf(path: string): Promise<string> {
  return sha256(await readFile(path));
}

const names = [...Object.keys(FILES), 'sub/dir/nested.bin'];

describe('tftp-hpa client', { skip: missing('tftp', hasTftp) }, () => {
  for (const name of names) {
    it(`gets ${name} (${FILES[name] ?? 3000} bytes, blksize 512) intact`, async () => {
      const { dest, output } = await tftpHpa(name);
      assert.equal(output, '');
      assert.equal(await hashOf(dest), tree.hashes.get(name));
    });
  }

  it('netascii mode is accepted (served as octet; LF-only text arrives unchanged)', async () => {
    const { dest, output } = await tftpHpa('script.ipxe', 'ascii');
    assert.equal(output, '');
    assert.equal(await hashOf(dest), tree.hashes.get('script.ipxe'));
  });

  it('path traversal and absolute paths are refused with error 2', async () => {
    for (const p of ['../../etc/passwd', '/etc/passwd', 'sub/../../etc/passwd']) {
      const { dest, output } = await tftpHpa(p);
      assert.match(output, /Error code 2: access violation/, p);
      assert.equal((await stat(dest)).size, 0);
    }
  });

  it('a missing file is error 1', async () => {
    const { output } = await tftpHpa('no-such-file');
    assert.match(output, /Error code 1: file not found/);
  });

  it('put is refused: the server is read-only', async () => {
    const r = await run(
      'tftp',
      ['-m', 'binary', '127.0.0.1', String(h.port), '-c', 'put', join(tree.root, 'odd1000'), 'x'],
      {
        timeout: 30_000,
      },
    );
    assert.match(r.stdout + r.stderr, /Error code 2/);
  });
});

describe('atftp client', { skip: missing('atftp', hasAtftp) }, () => {
  const variants: [string, string[]][] = [
    ['no options', []],
    ['blksize 1428', ['blksize 1428']],
    ['blksize 1428, windowsize 8', ['blksize 1428', 'windowsize 8']],
    ['tsize, blksize 8', ['tsize enable', 'blksize 8']],
    ['blksize 65464, windowsize 4', ['blksize 65464', 'windowsize 4']],
  ];
  for (const [label, options] of variants) {
    for (const name of names) {
      if (options.includes('blksize 8') && (FILES[name] ?? 0) > 100_000) continue; // 1.3M packets: pointless
      it(`gets ${name} with ${label} intact`, async () => {
        const { dest, code, output } = await atftp(name, options);
        assert.equal(code, 0, output);
        assert.equal(await hashOf(dest), tree.hashes.get(name));
      });
    }
  }

  it('reports the agreed options to the observer', async () => {
    const earlier = new Set(h.summaries);
    const { code } = await atftp('one-meg', ['blksize 1428', 'windowsize 8']);
    assert.equal(code, 0);
    const s = await waitForSummary(h, (x) => !earlier.has(x) && x.path === 'one-meg');
    assert.ok(s);
    assert.equal(s.ok, true);
    assert.equal(s.bytes, 1024 * 1024);
    assert.equal(s.blksize, 1428);
    assert.equal(s.windowsize, 8);
    assert.equal(s.client.address, '127.0.0.1');
    assert.ok(s.durationMs > 0);
  });

  it('path traversal and absolute paths are refused', async () => {
    for (const p of ['../../etc/passwd', '/etc/passwd']) {
      const { dest, code, output } = await atftp(p);
      assert.notEqual(code, 0);
      assert.match(output, /access violation/, p);
      assert.equal((await stat(dest).catch(() => ({ size: 0 }))).size, 0);
    }
  });
});

describe('many concurrent transfers', { skip: missing('tftp and atftp', hasTftp && hasAtftp) }, () => {
  it('20 parallel clients (tftp-hpa and atftp with windowsize) all get the file intact', async () => {
    const earlier = new Set(h.summaries);
    const jobs = Array.from({ length: 20 }, (_, i) =>
      i % 2 === 0
        ? tftpHpa('one-meg').then((r) => r.dest)
        : atftp('one-meg', ['blksize 1428', 'windowsize 8']).then((r) => r.dest),
    );
    const dests = await Promise.all(jobs);
    for (const d of dests) assert.equal(await hashOf(d), tree.hashes.get('one-meg'));
    const mine = () => h.summaries.filter((s) => !earlier.has(s) && s.path === 'one-meg');
    await waitForSummary(h, () => mine().length >= 20);
    assert.equal(mine().length, 20);
    assert.ok(mine().every((s) => s.ok));
    assert.equal(new Set(mine().map((s) => s.client.port)).size, 20);
  });
});
