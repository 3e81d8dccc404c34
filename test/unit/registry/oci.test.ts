/**
 * The pure parts of the OCI endpoints and their helpers: URL parsing (repository names with slashes),
 * Range headers, what a manifest points to (garbage collection and bundles follow it), the containerd
 * hosts.toml a node gets, the tokens container clients send, and picking an image in a layout.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { containerdHostsToml } from '../../../src/registry/containerd.ts';
import { tokenOf } from '../../../src/registry/manager.ts';
import { type OciError, parseOciPath, parseRange } from '../../../src/registry/oci.ts';
import { pickManifest } from '../../../src/registry/oci-push.ts';
import { manifestChildren } from '../../../src/registry/oci-spec.ts';

const d = (c: string) => `sha256:${c.repeat(64)}`;

describe('OCI distribution helpers', () => {
  it('splits /v2/ paths into repository and operation, slashes in the name included', () => {
    assert.deepEqual(parseOciPath('library/busybox/manifests/1.36'), {
      op: 'manifest',
      repo: 'library/busybox',
      ref: '1.36',
    });
    assert.deepEqual(parseOciPath(`a/b/c/blobs/${d('a')}`), { op: 'blob', repo: 'a/b/c', digest: d('a') });
    assert.deepEqual(parseOciPath('web/blobs/uploads/'), { op: 'upload', repo: 'web' });
    assert.deepEqual(parseOciPath('web/blobs/uploads/1234'), { op: 'upload', repo: 'web', id: '1234' });
    assert.deepEqual(parseOciPath('web/tags/list'), { op: 'tags', repo: 'web' });
    assert.throws(
      () => parseOciPath('Web/tags/list'),
      (e: OciError) => e.code === 'NAME_INVALID',
    );
    assert.throws(
      () => parseOciPath('web/nothing'),
      (e: OciError) => e.status === 404,
    );
  });

  it('reads Range headers, refusing what cannot be satisfied', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
    assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=50-500', 100), { start: 50, end: 99 });
    assert.equal(parseRange('bytes=100-', 100), 'bad');
    assert.equal(parseRange('bytes=9-3', 100), 'bad');
    assert.equal(parseRange('items=0-1', 100), 'bad');
    assert.equal(parseRange(undefined, 100), undefined);
  });

  it('lists what a manifest points to: blobs for images, manifests for an index and a subject', () => {
    const image = JSON.stringify({
      schemaVersion: 2,
      config: { digest: d('c') },
      layers: [{ digest: d('1') }, { digest: d('2') }, { digest: 'sha512:nope' }],
      subject: { digest: d('5') },
    });
    assert.deepEqual(manifestChildren(image), { blobs: [d('c'), d('1'), d('2')], manifests: [d('5')] });
    const index = JSON.stringify({ schemaVersion: 2, manifests: [{ digest: d('a') }, {}] });
    assert.deepEqual(manifestChildren(index), { blobs: [], manifests: [d('a')] });
    assert.deepEqual(manifestChildren(Buffer.from([0x1f, 0x8b, 0])), { blobs: [], manifests: [] });
    assert.deepEqual(manifestChildren('null'), { blobs: [], manifests: [] });
  });

  it("writes containerd's hosts.toml: the site mirror first, with its /registry/v2 path kept", () => {
    const f = containerdHostsToml({
      registry: '10.0.0.1:7420',
      server: 'http://10.0.0.1:7420/',
      mirrors: ['http://10.9.0.1:8080'],
      serverToken: 'strata_pull_x"y',
    });
    assert.equal(f.path, '10.0.0.1:7420/hosts.toml');
    assert.match(f.content, /^server = "http:\/\/10\.0\.0\.1:7420"$/m);
    assert.match(f.content, /^\[host\."http:\/\/10\.9\.0\.1:8080\/registry\/v2"\]$/m);
    assert.match(f.content, /^ {2}override_path = true$/m);
    assert.match(f.content, /^ {4}Authorization = "Bearer strata_pull_x\\"y"$/m);
    // The global registry, with its token, comes after the mirror.
    assert.ok(
      f.content.indexOf('[host."http://10.9.0.1') < f.content.indexOf('[host."http://10.0.0.1:7420"]'),
    );
    assert.match(f.content, /^ {2}\[host\."http:\/\/10\.0\.0\.1:7420"\.header\]$/m);
    assert.throws(
      () => containerdHostsToml({ registry: 'a b', server: 'http://x', mirrors: [] }),
      /registry/,
    );
    assert.throws(
      () => containerdHostsToml({ registry: 'x', server: 'http://x', mirrors: ['ftp://y'] }),
      /mirrors\[0\]/,
    );
  });

  it('takes a token as Bearer or as the Basic password', () => {
    assert.equal(tokenOf('Bearer abc'), 'abc');
    assert.equal(tokenOf(`Basic ${Buffer.from('strata:s3cr:et').toString('base64')}`), 's3cr:et');
    assert.equal(tokenOf(`Basic ${Buffer.from('nocolon').toString('base64')}`), undefined);
    assert.equal(tokenOf(undefined), undefined);
  });

  it('picks an image in a layout by its ref name, or the only one', () => {
    const one = { digest: d('1'), annotations: { 'org.opencontainers.image.ref.name': '1.0' } };
    const two = { digest: d('2'), annotations: { 'org.opencontainers.image.ref.name': '2.0' } };
    assert.equal(pickManifest({ manifests: [one] }).digest, d('1'));
    assert.equal(pickManifest({ manifests: [one, two] }, '2.0').digest, d('2'));
    assert.throws(() => pickManifest({ manifests: [one, two] }), /holds 2 images \(1\.0, 2\.0\)/);
    assert.throws(() => pickManifest({ manifests: [one] }, '3.0'), /no image named "3\.0"/);
  });
});
