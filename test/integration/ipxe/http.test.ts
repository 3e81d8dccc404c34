/**
 * The HTTP boot handler on loopback, fetched with the real `curl`: a node's script, a byte range of a
 * kernel, caching by ETag, small artifacts from memory, and refused traversal.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createBootHttpHandler, type FetchSummary } from '../../../src/ipxe/http.ts';
import { renderBootScript } from '../../../src/ipxe/script.ts';

const run = promisify(execFile);

/** curl -i: returns status, headers (lower-cased) and body bytes. */
async function curl(url: string, ...args: string[]) {
  const { stdout } = await run('curl', ['-sS', '-i', '--path-as-is', ...args, url], {
    encoding: 'buffer',
    maxBuffer: 8 << 20,
  });
  const sep = stdout.indexOf('\r\n\r\n');
  const head = stdout.subarray(0, sep).toString('latin1').split('\r\n');
  const status = Number(head[0]?.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const h of head.slice(1)) {
    const i = h.indexOf(':');
    headers[h.slice(0, i).toLowerCase()] = h.slice(i + 1).trim();
  }
  return { status, headers, body: stdout.subarray(sep + 4) };
}

/** onFetch runs when the server side closes the response, which can be just after curl exits. */
async function eventually<T>(get: () => T | undefined): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('condition not met in 1 s');
}

describe('HTTP boot handler (curl on loopback)', () => {
  let dir: string;
  let server: Server;
  let url: string;
  const kernel = randomBytes(300_000);
  const fetches: FetchSummary[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-ipxe-'));
    mkdirSync(join(dir, 'debian'));
    writeFileSync(join(dir, 'debian', 'vmlinuz'), kernel);
    writeFileSync(join(dir, '.secret'), 'hidden');
    writeFileSync(join(tmpdir(), 'strata-outside.txt'), 'outside');
    const handler = createBootHttpHandler({
      artifactsDir: dir,
      onFetch: (s) => fetches.push(s),
      resolveScript: async ({ mac }) => {
        if (mac === '52:54:00:00:00:99') return { status: 404, message: 'unknown machine' };
        if (mac === '52:54:00:00:00:66') throw new Error('store down');
        return {
          script: renderBootScript({
            node: { name: 'node1', mac, arch: 7 },
            profile: { kernel: 'debian/vmlinuz', initrd: [], cmdline: 'console=ttyS0' },
            mode: 'install',
            baseUrl: url,
          }),
        };
      },
    });
    server = createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(tmpdir(), 'strata-outside.txt'), { force: true });
  });

  it('serves a node its iPXE script as text/plain, and reports the fetch', async () => {
    const r = await curl(`${url}/boot/ipxe?mac=52-54-00-AA-BB-01`);
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'] ?? '', /^text\/plain/);
    assert.equal(r.headers['cache-control'], 'no-store');
    const script = r.body.toString();
    assert.match(script, /^#!ipxe\n/);
    assert.match(
      script,
      new RegExp(`kernel ${url}/artifacts/debian/vmlinuz console=ttyS0 \\|\\| goto retry`),
    );
    const f = await eventually(() =>
      fetches.find((x) => x.kind === 'script' && x.mac === '52:54:00:aa:bb:01'),
    );
    assert.equal(f.status, 200);
    assert.equal(f.bytes, r.body.length);
    assert.equal(f.remoteAddress, '127.0.0.1');
    assert.equal(f.completed, true);
  });

  it('passes the resolver status on, and 400/500 for bad MAC or a failing resolver', async () => {
    const unknown = await curl(`${url}/boot/ipxe?mac=52:54:00:00:00:99`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.toString(), 'unknown machine\n');
    assert.equal((await curl(`${url}/boot/ipxe?mac=zz`)).status, 400);
    assert.equal((await curl(`${url}/boot/ipxe`)).status, 400);
    assert.equal((await curl(`${url}/boot/ipxe?mac=52:54:00:00:00:66`)).status, 500);
  });

  it('serves a whole artifact with length, ETag and Last-Modified', async () => {
    const r = await curl(`${url}/artifacts/debian/vmlinuz`);
    assert.equal(r.status, 200);
    assert.equal(Number(r.headers['content-length']), kernel.length);
    assert.ok(r.headers.etag);
    assert.ok(r.headers['last-modified']);
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.ok(r.body.equals(kernel));
    const f = await eventually(() => fetches.findLast((x) => x.path === '/artifacts/debian/vmlinuz'));
    assert.equal(f?.bytes, kernel.length);
    assert.equal(f?.status, 200);
  });

  it('serves a byte range (206) with the exact bytes, and 416 past the end', async () => {
    const r = await curl(`${url}/artifacts/debian/vmlinuz`, '-r', '1000-5999');
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 1000-5999/${kernel.length}`);
    assert.ok(r.body.equals(kernel.subarray(1000, 6000)));
    const f = await eventually(() =>
      fetches.findLast((x) => x.path === '/artifacts/debian/vmlinuz' && x.range),
    );
    assert.equal(f?.status, 206);
    assert.equal(f?.bytes, 5000);
    assert.equal(f?.range, 'bytes=1000-5999');
    const bad = await curl(`${url}/artifacts/debian/vmlinuz`, '-r', `${kernel.length + 10}-`);
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], `bytes */${kernel.length}`);
  });

  it('answers If-None-Match with 304 and HEAD with headers only', async () => {
    const first = await curl(`${url}/artifacts/debian/vmlinuz`, '-I');
    assert.equal(first.status, 200);
    assert.equal(first.body.length, 0);
    const etag = first.headers.etag!;
    const again = await curl(`${url}/artifacts/debian/vmlinuz`, '-H', `If-None-Match: ${etag}`);
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
  });

  it('answers a small artifact from memory as send does, and reads a rewritten or relinked one afresh', async () => {
    const path = `${url}/artifacts/menu.ipxe`;
    writeFileSync(join(dir, 'menu.ipxe'), '#!ipxe\necho one\n');
    const first = await curl(path);
    const held = await curl(path);
    // A request with a precondition goes through send: the same headers for the same file.
    const sent = await curl(path, '-H', 'If-None-Match: "another"');
    for (const r of [first, held, sent]) {
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), '#!ipxe\necho one\n');
    }
    for (const h of [
      'content-type',
      'content-length',
      'etag',
      'last-modified',
      'accept-ranges',
      'cache-control',
    ])
      assert.equal(held.headers[h], sent.headers[h], h);
    const f = await eventually(() => fetches.findLast((x) => x.path === '/artifacts/menu.ipxe'));
    assert.equal(f.bytes, 16);
    const head = await curl(path, '-I');
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-length'], '16');
    // Rewritten in place with as many bytes: served new.
    writeFileSync(join(dir, 'menu.ipxe'), '#!ipxe\necho two\n');
    assert.equal((await curl(path)).body.toString(), '#!ipxe\necho two\n');
    // Replaced by a link out of the root: refused, as send's road refuses it.
    unlinkSync(join(dir, 'menu.ipxe'));
    symlinkSync(join(tmpdir(), 'strata-outside.txt'), join(dir, 'menu.ipxe'));
    const out = await curl(path);
    assert.equal(out.status, 404);
    assert.doesNotMatch(out.body.toString(), /outside/);
    unlinkSync(join(dir, 'menu.ipxe'));
    assert.equal((await curl(path)).status, 404);
  });

  it('refuses traversal, dotfiles, directories and other methods', async () => {
    for (const p of [
      '/artifacts/../strata-outside.txt',
      '/artifacts/%2e%2e/strata-outside.txt',
      '/artifacts/..%2fstrata-outside.txt',
      '/artifacts/debian/../../strata-outside.txt',
    ]) {
      const r = await curl(`${url}${p}`);
      assert.ok(r.status === 403 || r.status === 404, `${p} → ${r.status}`);
      assert.doesNotMatch(r.body.toString(), /outside/);
    }
    assert.equal((await curl(`${url}/artifacts/.secret`)).status, 404);
    assert.equal((await curl(`${url}/artifacts/debian`)).status, 404);
    assert.equal((await curl(`${url}/artifacts/debian/`)).status, 404);
    assert.equal((await curl(`${url}/elsewhere`)).status, 404);
    const post = await curl(`${url}/artifacts/debian/vmlinuz`, '-X', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });
});
