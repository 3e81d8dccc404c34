/**
 * The node's side of "the digest is checked before use": src/registry/fetch.sh run by busybox sh (as in
 * the installer environment: busybox wget and sha256sum only) and with curl (as on an installed system),
 * against the real local registry pulling through from the real global one. A corrupted artifact must be
 * refused with a non-zero exit and leave nothing behind, whether it was damaged in the site's cache or on
 * the wire between the registry and the node.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { hexOf } from '../../../src/registry/digest.ts';
import { startSite } from '../../helpers/registry.ts';
import { REPO, suiteCleanup, tempDir } from '../../helpers/strata.ts';

const FETCH = resolve(REPO, 'src/registry/fetch.sh');
const BUSYBOX = '/usr/bin/busybox';
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function run(path: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((res, rej) => {
    const p = spawn(BUSYBOX, ['sh', FETCH, ...args], {
      env: { PATH: path },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    p.once('error', rej);
    p.once('close', (code) => res({ code, stderr }));
  });
}

async function waitUntilGone(file: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (!existsSync(file)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`the site kept its corrupted copy ${file}`);
}

describe('strata-fetch on the node (busybox sh)', () => {
  const t = suiteCleanup();
  const dir = tempDir(t, 'strata-registry-fetch-');
  // An installer-like PATH: busybox applets only, no curl.
  const bb = join(dir, 'busybox-bin');
  mkdirSync(bb);
  for (const applet of ['sh', 'wget', 'sha256sum', 'cut', 'dirname', 'mv', 'rm', 'tr', 'cat']) {
    symlinkSync(BUSYBOX, join(bb, applet));
  }
  const HOST_PATH = process.env.PATH ?? '/usr/bin:/bin';
  const data = randomBytes(256 * 1024);
  const digest = sha(data);
  let site: Awaited<ReturnType<typeof startSite>>;
  let n = 0;
  const outDir = () => {
    const d = join(dir, `out-${++n}`);
    mkdirSync(d);
    return d;
  };

  it('downloads an artifact by digest through the local registry and verifies it (wget and curl)', async () => {
    site = await startSite(t);
    await site.global.admin.pushBlob(digest, Readable.from([data]), data.length);
    await site.global.admin.tag('apps/agent', '1', { digest, mediaType: 'application/octet-stream' });
    for (const path of [bb, HOST_PATH]) {
      const out = outDir();
      const r = await run(path, [site.local.url, digest, join(out, 'agent')]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(readFileSync(join(out, 'agent')).equals(data));
      assert.deepEqual(readdirSync(out), ['agent']);
      // Run again: the file is there and intact, nothing changes.
      const again = await run(path, [site.local.url, digest, join(out, 'agent')]);
      assert.equal(again.code, 0);
      assert.deepEqual(readdirSync(out), ['agent']);
    }
  });

  it('refuses an artifact corrupted in the site cache: non-zero exit, nothing left behind', async () => {
    const cachedFile = join(site.local.root, 'blobs', 'sha256', hexOf(digest));
    for (const path of [bb, HOST_PATH]) {
      const bad = Buffer.from(data);
      bad[1000] = bad[1000]! ^ 0x80;
      writeFileSync(cachedFile, bad);
      const out = outDir();
      const r = await run(path, [site.local.url, digest, join(out, 'agent')]);
      assert.notEqual(r.code, 0, `a corrupted artifact was accepted (${path === bb ? 'wget' : 'curl'})`);
      assert.deepEqual(readdirSync(out), [], 'nothing is left behind');
      // The site drops its corrupted copy so the next request refetches it. It does so after the node has
      // seen the short body: wait for it, or it could remove the bad copy the next round plants.
      await waitUntilGone(cachedFile);
    }
  });

  it('refuses bytes altered on the wire with the digest check itself (exit 4, REFUSED)', async () => {
    // A man in the middle between node and registry: same length, one bit flipped.
    const proxy = createServer(async (req, res) => {
      const up = await fetch(`${site.local.url}${req.url!.replace(/^\/registry/, '')}`);
      const body = Buffer.from(await up.arrayBuffer());
      if (body.length > 10) body[10] = body[10]! ^ 0x01;
      res.writeHead(up.status, { 'content-length': body.length });
      res.end(body);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    t.after(() => new Promise<void>((r) => proxy.close(() => r())));
    const addr = proxy.address();
    const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/registry`;
    for (const path of [bb, HOST_PATH]) {
      const out = outDir();
      const r = await run(path, [url, digest, join(out, 'agent')]);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /REFUSED .* its bytes have digest sha256:[0-9a-f]{64}, not sha256:/);
      assert.deepEqual(readdirSync(out), []);
    }
  });

  it('says what is wrong with its arguments (exit 2) and when the registry has no such blob (exit 3)', async () => {
    const out = outDir();
    const bad = await run(bb, [site.local.url, 'sha256:XYZ', join(out, 'x')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /64 lower-case hex digits/);
    const usage = await run(bb, [site.local.url]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /usage: strata-fetch REGISTRY_URL DIGEST OUTPUT/);
    const missing = await run(bb, [site.local.url, sha(Buffer.from('nobody pushed this')), join(out, 'x')]);
    assert.equal(missing.code, 3);
    assert.deepEqual(readdirSync(out), []);
  });
});
