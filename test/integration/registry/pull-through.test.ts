/**
 * The two scopes as two real HTTP servers: the global registry (a Strata manager's API) and a site's local
 * registry (the boot worker's handler), which learns where the global one is and its pull token over the
 * transport. Covers pull-through (fetch on miss, verify, cache), the pull token's reach, a corrupted blob
 * at the global registry never reaching the site, and the site serving what it has while the global
 * registry is away.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { RegistryClient } from '../../../src/registry/client.ts';
import { hexOf } from '../../../src/registry/digest.ts';
import { subjects, type UpstreamInfo } from '../../../src/registry/protocol.ts';
import { startSite } from '../../helpers/registry.ts';
import { suiteCleanup } from '../../helpers/strata.ts';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('local registry pulling through from the global registry', () => {
  const t = suiteCleanup();
  const app = randomBytes(200_000);
  const tool = Buffer.from('#!/bin/sh\necho tool\n');
  const neverFetched = randomBytes(1000);
  const rotten = randomBytes(100_000);
  let site: Awaited<ReturnType<typeof startSite>>;

  const push = async (name: string, version: string, data: Buffer) => {
    const digest = sha(data);
    await site.global.admin.pushBlob(digest, Readable.from([data]), data.length);
    return site.global.admin.tag(name, version, { digest, mediaType: 'application/octet-stream' });
  };
  const cached = (digest: string) => existsSync(join(site.local.root, 'blobs', 'sha256', hexOf(digest)));

  it('fetches a reference and a blob it lacks from the global registry, verifies and keeps them', async () => {
    site = await startSite(t);
    await push('apps/hello', '1.0', app);
    await push('tools/run', '2', tool);
    await push('never/fetched', '1', neverFetched);

    const ref = await fetch(`${site.local.url}/refs/apps%2Fhello/1.0`);
    assert.equal(ref.status, 200);
    const body = (await ref.json()) as { digest: string; size: number };
    assert.equal(body.digest, sha(app));
    assert.equal(body.size, app.length);

    assert.equal(cached(sha(app)), false);
    const blob = await fetch(`${site.local.url}/blobs/${sha(app)}`);
    assert.equal(blob.status, 200);
    assert.equal(blob.headers.get('x-strata-digest'), sha(app));
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(app));
    assert.equal(cached(sha(app)), true);
    assert.ok(readFileSync(join(site.local.root, 'blobs', 'sha256', hexOf(sha(app)))).equals(app));

    const t2 = await fetch(`${site.local.url}/blobs/${sha(tool)}`);
    assert.ok(Buffer.from(await t2.arrayBuffer()).equals(tool));
    await (await fetch(`${site.local.url}/refs/tools%2Frun/2`)).json();
  });

  it('hands the site a read-only pull token: it reads the global registry but cannot write to it', async () => {
    const up = await site.global.platform.transport.request<object, UpstreamInfo>(subjects.upstream, {});
    assert.equal(up.url, site.global.url);
    assert.match(up.token ?? '', /^strata_pull_/);
    const puller = new RegistryClient({ url: site.global.url, token: up.token });
    assert.equal((await puller.getRef('apps/hello', '1.0')).digest, sha(app));
    await assert.rejects(puller.pushBlob(sha(tool), Readable.from([tool]), tool.length), /401/);
    await assert.rejects(puller.deleteRef('apps/hello', '1.0'), /401/);
    const stranger = new RegistryClient({ url: site.global.url, token: 'strata_pull_guessed' });
    await assert.rejects(stranger.listRefs(), /Unauthorized|401/);
    const anonymous = await fetch(`${site.global.url}/blobs/${sha(app)}`);
    assert.equal(anonymous.status, 401);
  });

  it('never caches a blob the global registry holds corrupted: the site answers 502 and keeps nothing', async () => {
    const ref = await push('apps/rotten', '1', rotten);
    const file = join(site.global.dataDir, 'registry', 'blobs', 'sha256', hexOf(ref.digest));
    const bad = Buffer.from(rotten);
    bad[50_000] = bad[50_000]! ^ 0x01;
    writeFileSync(file, bad);
    const res = await fetch(`${site.local.url}/blobs/${ref.digest}`);
    assert.equal(res.status, 502);
    assert.match(await res.text(), /nothing was cached/);
    assert.equal(cached(ref.digest), false);
    assert.deepEqual(readdirSync(join(site.local.root, 'staging')), []);
  });

  it('keeps serving what it has while the global registry is away, and says plainly what it cannot get', async () => {
    await site.global.stop();
    await assert.rejects(fetch(`${site.global.url}/refs`), 'the global registry is really down');

    const ref = await fetch(`${site.local.url}/refs/apps%2Fhello/1.0`);
    assert.equal(ref.status, 200);
    assert.equal(((await ref.json()) as { digest: string }).digest, sha(app));
    const blob = await fetch(`${site.local.url}/blobs/${sha(app)}`);
    assert.equal(blob.status, 200);
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(app));

    const list = await fetch(`${site.local.url}/refs`);
    assert.equal(list.headers.get('x-strata-registry'), 'offline');
    const names = ((await list.json()) as { items: { name: string; version: string }[] }).items.map(
      (r) => `${r.name}:${r.version}`,
    );
    assert.deepEqual(names, ['apps/hello:1.0', 'tools/run:2']);

    const missing = await fetch(`${site.local.url}/blobs/${sha(neverFetched)}`);
    assert.equal(missing.status, 503);
    assert.match(
      ((await missing.json()) as { message: string }).message,
      /not cached at this site and the global registry is away/,
    );
    const unknownRef = await fetch(`${site.local.url}/refs/never%2Ffetched/1`);
    assert.equal(unknownRef.status, 404);
  });

  it('refuses malformed requests with the field to fix', async () => {
    const bad = await fetch(`${site.local.url}/blobs/sha256:nothex`);
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { message: string }).message, /digest.*64 lower-case hex/);
    const badName = await fetch(`${site.local.url}/refs/..%2Fetc/1`);
    assert.equal(badName.status, 400);
    assert.match(((await badName.json()) as { message: string }).message, /^name: invalid artifact name/);
  });
});

describe('local registry pulling through over the transport (no address advertised)', () => {
  const t = suiteCleanup();
  // Larger than one transport chunk (256 KiB), so the blob arrives in several.
  const image = randomBytes(700_000);
  const small = Buffer.from('small');
  let site: Awaited<ReturnType<typeof startSite>>;
  const cached = (digest: string) => existsSync(join(site.local.root, 'blobs', 'sha256', hexOf(digest)));

  it('fetches references and multi-chunk blobs through the manager, verified and cached', async () => {
    site = await startSite(t, { overTransport: true });
    await site.global.admin.pushBlob(sha(image), Readable.from([image]), image.length);
    await site.global.admin.tag('os/image', '12', { digest: sha(image), mediaType: 'application/zstd' });
    await site.global.admin.pushBlob(sha(small), Readable.from([small]), small.length);
    await site.global.admin.tag('os/small', '1', { digest: sha(small), mediaType: 'text/plain' });

    const ref = (await (await fetch(`${site.local.url}/refs/os%2Fimage/12`)).json()) as { digest: string };
    assert.equal(ref.digest, sha(image));
    const blob = await fetch(`${site.local.url}/blobs/${sha(image)}`);
    assert.equal(blob.status, 200);
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(image));
    assert.equal(cached(sha(image)), true);
    const none = await fetch(`${site.local.url}/refs/os%2Fnone/1`);
    assert.equal(none.status, 404);
  });

  it('refuses bytes that do not match: 502, nothing cached', async () => {
    const file = join(site.global.dataDir, 'registry', 'blobs', 'sha256', hexOf(sha(small)));
    writeFileSync(file, 'SMALL');
    const res = await fetch(`${site.local.url}/blobs/${sha(small)}`);
    assert.equal(res.status, 502);
    assert.match(await res.text(), /sent bad bytes.*does not match its digest/);
    assert.equal(cached(sha(small)), false);
  });

  it('keeps serving its cache when the manager is away', async () => {
    await site.global.stop();
    const blob = await fetch(`${site.local.url}/blobs/${sha(image)}`);
    assert.equal(blob.status, 200);
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(image));
    const ref = await fetch(`${site.local.url}/refs/os%2Fimage/12`);
    assert.equal(ref.status, 200);
    const missing = await fetch(`${site.local.url}/blobs/${sha(small)}`);
    assert.equal(missing.status, 503);
  });
});
