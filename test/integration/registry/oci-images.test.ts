/**
 * Container images through Strata's registry with real clients: skopeo pushes the OCI layouts that
 * scripts/build/images.sh builds (umoci, busybox-static, no Docker Hub) into the global registry's /v2/ and
 * copies them back; a private containerd pulls them, once from the global registry with `--plain-http` and
 * once through the site's local registry as its hosts.toml mirror, and runs the busybox image. Bad input
 * gets the Distribution Specification's error codes. A site's mirror reads through the manager's transport
 * too, and serves what it cached while the global registry is away. The full OCI conformance suite is not run here (see
 * README, "Container images").
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { exportBundle, importBundle } from '../../../src/registry/bundle.ts';
import { containerdHostsToml } from '../../../src/registry/containerd.ts';
import { hexOf } from '../../../src/registry/digest.ts';
import { pushOciLayout } from '../../../src/registry/oci-push.ts';
import { manifestChildren, OCI_MANIFEST } from '../../../src/registry/oci-spec.ts';
import { subjects, type UpstreamInfo } from '../../../src/registry/protocol.ts';
import { builtImages, imageToolsSkipReason, startContainerd } from '../../helpers/containerd.ts';
import { startGlobalRegistry, startSite } from '../../helpers/registry.ts';
import { runCli, suiteCleanup, tempDir } from '../../helpers/strata.ts';

const run = promisify(execFile);
const ADMIN = 'registry-test-admin';
const images = imageToolsSkipReason() ? undefined : await builtImages();
const skip =
  imageToolsSkipReason() ?? (images ? undefined : 'scripts/build/images.sh could not build the images');
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('container images through the registry (skopeo, containerd)', { skip }, () => {
  const t = suiteCleanup();
  let site: Awaited<ReturnType<typeof startSite>>;
  let host: string;
  let pullToken: string;
  const web = images?.find((i) => i.name === 'web');
  const pause = images?.find((i) => i.name === 'pause');
  let webDigest: string;

  const skopeo = (args: string[]) => run('skopeo', args, { timeout: 120_000 });
  const v2 = (path: string, init: RequestInit = {}) =>
    fetch(`http://${host}/v2/${path}`, {
      ...init,
      headers: { authorization: `Bearer ${ADMIN}`, ...(init.headers as Record<string, string>) },
    });
  const errorCode = async (r: Response) =>
    ((await r.json()) as { errors: { code: string }[] }).errors[0]?.code;

  it('skopeo pushes OCI layouts built from Debian into the global registry and inspects them', async () => {
    site = await startSite(t);
    host = new URL(site.global.url).host;
    for (const img of [web!, pause!]) {
      await skopeo([
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        `strata:${ADMIN}`,
        `oci:${img.layout}:${img.tag}`,
        `docker://${host}/strata/${img.name}:${img.tag}`,
      ]);
    }
    const up = await site.global.platform.transport.request<object, UpstreamInfo>(subjects.upstream, {});
    pullToken = up.token!;
    const { stdout } = await skopeo([
      'inspect',
      '--tls-verify=false',
      '--creds',
      `strata:${pullToken}`,
      `docker://${host}/strata/web:${web!.tag}`,
    ]);
    const info = JSON.parse(stdout) as {
      Digest: string;
      RepoTags: string[];
      Architecture: string;
      Layers: string[];
    };
    assert.deepEqual(info.RepoTags, [web!.tag]);
    assert.equal(info.Architecture, 'amd64');
    webDigest = info.Digest;
    // The layer skopeo read is the one umoci wrote, byte for byte, now in the registry's own store.
    const layer = info.Layers[0]!;
    const stored = join(site.global.dataDir, 'registry', 'blobs', 'sha256', hexOf(layer));
    assert.ok(readFileSync(stored).equals(readFileSync(join(web!.layout, 'blobs', 'sha256', hexOf(layer)))));
    // And `strata registry ls` sees the tag as a reference.
    const refs = await site.global.admin.listRefs();
    assert.ok(
      refs.some((r) => r.name === 'oci/strata/web' && r.version === web!.tag && r.digest === webDigest),
    );
  });

  it('strata registry push-image pushes a layout without skopeo, uploading only missing blobs', async () => {
    const fresh = await startGlobalRegistry(t, { token: 'push-image-admin' });
    const freshHost = new URL(fresh.url).host;
    const cli = (args: string[], token = 'push-image-admin') =>
      runCli(args, { server: `http://${freshHost}`, token });
    const push = () => cli(['registry', 'push-image', `${web!.layout}:${web!.tag}`, 'strata/cli-web:1']);
    const first = await push();
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /pushed .*strata\/cli-web:1 sha256:[0-9a-f]{64} \(2 of 2 blobs uploaded\)/);
    const again = await push();
    assert.match(again.stdout, /\(0 of 2 blobs uploaded\)/);
    const { stdout } = await skopeo([
      'inspect',
      '--tls-verify=false',
      '--creds',
      'strata:push-image-admin',
      `docker://${freshHost}/strata/cli-web:1`,
    ]);
    assert.deepEqual((JSON.parse(stdout) as { Env: string[] }).Env, ['PATH=/bin']);
    const up = await fresh.platform.transport.request<object, UpstreamInfo>(subjects.upstream, {});
    const denied = await cli(['registry', 'push-image', pause!.layout, 'strata/cli-pause:1'], up.token!);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /DENIED/);
    // The cache directory itself: every image it built, as strata/NAME:TAG.
    const all = await cli(['registry', 'push-image', dirname(web!.layout)]);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, new RegExp(`strata/pause:${pause!.tag} .*\\n.*strata/web:${web!.tag} `));
    const noImage = await cli(['registry', 'push-image', `${web!.layout}:nope`, 'strata/cli-web:1']);
    assert.notEqual(noImage.code, 0);
    assert.match(noImage.stderr, /no image named "nope"/);
  });

  it('skopeo copies an image back out into an OCI layout with the same manifest', async () => {
    const out = join(tempDir(t, 'strata-oci-back-'), 'layout');
    await skopeo([
      'copy',
      '--src-tls-verify=false',
      '--src-creds',
      `strata:${pullToken}`,
      `docker://${host}/strata/web:${web!.tag}`,
      `oci:${out}:copy`,
    ]);
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    assert.equal(index.manifests[0]?.digest, webDigest);
    const manifest = readFileSync(join(out, 'blobs', 'sha256', hexOf(webDigest)));
    assert.equal(sha(manifest), webDigest);
  });

  it('takes pushes only from an admin token and reads from none', async () => {
    const push = skopeo([
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `strata:${pullToken}`,
      `oci:${pause!.layout}:${pause!.tag}`,
      `docker://${host}/strata/denied:1`,
    ]);
    await assert.rejects(push, /denied|403|unauthorized/i);
    const anonymous = await fetch(`http://${host}/v2/strata/web/manifests/${web!.tag}`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm=/);
    assert.equal(await errorCode(anonymous), 'UNAUTHORIZED');
  });

  it('answers bad input with the specification error codes', async () => {
    const unknown = await v2('strata/web/manifests/no-such-tag');
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), 'MANIFEST_UNKNOWN');
    const badDigest = await v2('strata/web/blobs/sha256:nothex');
    assert.equal(badDigest.status, 400);
    assert.equal(await errorCode(badDigest), 'DIGEST_INVALID');
    const badName = await v2('Strata/Web/tags/list');
    assert.equal(badName.status, 400);
    assert.equal(await errorCode(badName), 'NAME_INVALID');
    const missingBlob = await v2(`strata/web/blobs/${sha('never pushed')}`);
    assert.equal(missingBlob.status, 404);
    assert.equal(await errorCode(missingBlob), 'BLOB_UNKNOWN');

    // A monolithic upload whose bytes do not match its digest is refused and nothing is kept.
    const claimed = sha('what was promised');
    const mismatch = await v2(`strata/web/blobs/uploads/?digest=${claimed}`, {
      method: 'POST',
      body: 'what was sent',
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(mismatch.status, 400);
    assert.equal(await errorCode(mismatch), 'DIGEST_INVALID');
    assert.equal((await v2(`strata/web/blobs/${claimed}`, { method: 'HEAD' })).status, 404);

    // A chunk that does not continue the upload is refused (416); the right one goes on.
    const start = await v2('strata/web/blobs/uploads/', { method: 'POST' });
    assert.equal(start.status, 202);
    const loc = start.headers.get('location')!;
    const at = (l: string) => `http://${host}${l}`;
    const auth = { authorization: `Bearer ${ADMIN}` };
    const first = await fetch(at(loc), {
      method: 'PATCH',
      body: 'hello ',
      headers: { ...auth, 'content-range': '0-5', 'content-type': 'application/octet-stream' },
    });
    assert.equal(first.status, 202);
    assert.equal(first.headers.get('range'), '0-5');
    const gap = await fetch(at(loc), {
      method: 'PATCH',
      body: 'x',
      headers: { ...auth, 'content-range': '9-9', 'content-type': 'application/octet-stream' },
    });
    assert.equal(gap.status, 416);
    const done = await fetch(at(`${loc}?digest=${sha('hello world')}`), {
      method: 'PUT',
      body: 'world',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
    });
    assert.equal(done.status, 201);
    assert.equal(done.headers.get('docker-content-digest'), sha('hello world'));

    // Range reads of a blob.
    const part = await v2(`strata/web/blobs/${sha('hello world')}`, { headers: { range: 'bytes=6-10' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 6-10/11');
    assert.equal(await part.text(), 'world');

    // A manifest whose layers were never pushed is refused.
    const orphan = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha('no config'), size: 9 },
      layers: [],
    });
    const refused = await v2('strata/web/manifests/orphan', {
      method: 'PUT',
      body: orphan,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(refused.status, 400);
    assert.equal(await errorCode(refused), 'MANIFEST_BLOB_UNKNOWN');
  });

  it('containerd pulls from the global registry with the pull token (--plain-http, and hosts.toml past a dead mirror)', async () => {
    const ctrd = await startContainerd(t);
    const ref = `${host}/strata/web:${web!.tag}`;
    await ctrd.ctr(['images', 'pull', '--plain-http', '--user', `strata:${pullToken}`, ref]);
    const { stdout } = await ctrd.ctr(['images', 'ls', '-q']);
    assert.ok(stdout.split('\n').includes(ref), stdout);

    // hosts.toml with the pull token: a mirror that does not answer, then the global registry.
    const hostsDir = join(ctrd.dir, 'certs.d');
    const file = containerdHostsToml({
      registry: host,
      server: `http://${host}`,
      mirrors: ['http://127.0.0.1:9'],
      serverToken: pullToken,
    });
    mkdirSync(dirname(join(hostsDir, file.path)), { recursive: true });
    writeFileSync(join(hostsDir, file.path), file.content);
    await ctrd.ctr(['images', 'pull', '--hosts-dir', hostsDir, `${host}/strata/pause:${pause!.tag}`]);
  });

  it("containerd pulls through the site's local registry (hosts.toml mirror) and runs the busybox image", async () => {
    const ctrd = await startContainerd(t);
    const hostsDir = join(ctrd.dir, 'certs.d');
    // No token for the global registry in hosts.toml: only the mirror can answer without one.
    const file = containerdHostsToml({
      registry: host,
      server: `http://${host}`,
      mirrors: [new URL(site.local.url).origin],
    });
    mkdirSync(dirname(join(hostsDir, file.path)), { recursive: true });
    writeFileSync(join(hostsDir, file.path), file.content);
    for (const img of [web!, pause!])
      await ctrd.ctr(['images', 'pull', '--hosts-dir', hostsDir, `${host}/strata/${img.name}:${img.tag}`]);
    // The site cached the manifest and the layers it served.
    const cache = join(site.local.root, 'blobs', 'sha256');
    assert.ok(existsSync(join(cache, hexOf(webDigest))));
    const manifest = JSON.parse(readFileSync(join(cache, hexOf(webDigest)), 'utf8')) as {
      layers: { digest: string }[];
    };
    for (const l of manifest.layers) assert.ok(existsSync(join(cache, hexOf(l.digest))), l.digest);

    const { stdout } = await ctrd.ctr([
      'run',
      '--rm',
      `${host}/strata/web:${web!.tag}`,
      `strata-test-${process.pid}`,
      '/bin/sh',
      '-c',
      'echo "hello from $(uname -s)"; cat /www/index.html',
    ]);
    assert.match(stdout, /hello from Linux/);
    assert.match(stdout, /busybox httpd from a Strata image/);
    const version = await ctrd.ctr([
      'run',
      '--rm',
      `${host}/strata/pause:${pause!.tag}`,
      `strata-pause-${process.pid}`,
      '/bin/pause',
      '-v',
    ]);
    assert.match(version.stdout, /strata-pause/);
  });

  it('a bundle carries whole images to an air-gapped registry', async () => {
    const file = join(tempDir(t, 'strata-oci-bundle-'), 'site.bundle.tar');
    await exportBundle({ client: site.global.admin, to: file, strataVersion: 'test' });
    const away = await startGlobalRegistry(t, { token: 'airgap-admin' });
    await importBundle({ client: away.admin, file });
    const awayHost = new URL(away.url).host;
    const out = join(tempDir(t, 'strata-oci-airgap-'), 'layout');
    await skopeo([
      'copy',
      '--src-tls-verify=false',
      '--src-creds',
      'strata:airgap-admin',
      `docker://${awayHost}/strata/web:${web!.tag}`,
      `oci:${out}:copy`,
    ]);
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    assert.equal(index.manifests[0]?.digest, webDigest);
  });

  it('garbage collection keeps the layers a tagged image needs and frees them once it is deleted', async () => {
    const manifest = JSON.parse(
      readFileSync(join(site.global.dataDir, 'registry', 'blobs', 'sha256', hexOf(webDigest)), 'utf8'),
    ) as { config: { digest: string }; layers: { digest: string }[] };
    const blobs = [manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
    const has = (d: string) => existsSync(join(site.global.dataDir, 'registry', 'blobs', 'sha256', hexOf(d)));
    await site.global.admin.gc('0s');
    for (const d of [webDigest, ...blobs]) assert.ok(has(d), `gc freed ${d} of a tagged image`);
    const del = await v2(`strata/web/manifests/${webDigest}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    assert.equal((await v2(`strata/web/manifests/${web!.tag}`)).status, 404);
    await site.global.admin.gc('0s');
    for (const d of [webDigest, ...blobs]) assert.ok(!has(d), `gc kept ${d} of a deleted image`);
  });
});

describe("a site's image mirror reading over the transport, and while the global registry is away", {
  skip,
}, () => {
  const t = suiteCleanup();
  const web = images?.find((i) => i.name === 'web');
  const pause = images?.find((i) => i.name === 'pause');

  it('serves manifests and layers it pulled through, keeps serving them offline, and takes no pushes', async () => {
    const site = await startSite(t, { overTransport: true });
    const server = new URL(site.global.url).origin;
    const token = 'registry-test-admin';
    const pushed = await pushOciLayout({ layout: web!.layout, server, repo: 'strata/web', tag: '1', token });
    await pushOciLayout({ layout: pause!.layout, server, repo: 'strata/pause', tag: '1', token });
    const mirror = `${new URL(site.local.url).origin}/registry/v2`;

    const readImage = async () => {
      const m = await fetch(`${mirror}/strata/web/manifests/1`, { headers: { accept: OCI_MANIFEST } });
      assert.equal(m.status, 200);
      assert.equal(m.headers.get('content-type'), OCI_MANIFEST);
      assert.equal(m.headers.get('docker-content-digest'), pushed.digest);
      const body = Buffer.from(await m.arrayBuffer());
      assert.equal(sha(body), pushed.digest);
      const { blobs } = manifestChildren(body);
      for (const d of blobs) {
        const b = await fetch(`${mirror}/strata/web/blobs/${d}`);
        assert.equal(b.status, 200);
        assert.equal(sha(Buffer.from(await b.arrayBuffer())), d);
      }
      return blobs.length;
    };
    assert.equal(await readImage(), 2);

    await site.global.stop();
    assert.equal(await readImage(), 2, 'the cached image is served while the global registry is away');
    // What the site never fetched, it cannot serve now: the pause image's manifest is unknown here.
    const never = await fetch(`${mirror}/strata/pause/manifests/1`);
    assert.equal(never.status, 404);

    const put = await fetch(`${mirror}/strata/web/manifests/2`, { method: 'PUT', body: '{}' });
    assert.equal(put.status, 405);
    assert.equal(((await put.json()) as { errors: { code: string }[] }).errors[0]?.code, 'UNSUPPORTED');
  });
});
