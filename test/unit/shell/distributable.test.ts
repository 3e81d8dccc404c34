/**
 * A distributable's pure parts: a bad bundle is refused naming the field and the fix; its digest is its
 * identity (order of files does not matter, content does); the copy script carries no file content in
 * clear (secrets travel base64 on stdin, never on a command line) and refuses a bundle with artifacts but
 * no registry; and the overlay step picks the newest Debian package of its provider from the registry.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SqliteStore } from '../../../src/core/store/sqlite.ts';
import { packageArtifacts } from '../../../src/overlay/step.ts';
import { StoreRefs } from '../../../src/registry/store.ts';
import {
  bundleDigest,
  bundleDir,
  bundleProblems,
  copyScript,
  type Distributable,
  scriptCommand,
} from '../../../src/shell/distributable.ts';

const D = (over: Partial<Distributable['manifest']> = {}, files?: Distributable['files']): Distributable => ({
  manifest: { name: 'motd', version: '1.0', scripts: { check: 'check.sh', apply: 'apply.sh' }, ...over },
  files: files ?? [
    { name: 'check.sh', content: '#!/bin/sh\ntrue\n', mode: 0o755 },
    { name: 'apply.sh', content: '#!/bin/sh\ntrue\n', mode: 0o755 },
    { name: 'key.pem', content: '-----BEGIN PRIVATE KEY-----\nsecret\n', mode: 0o600, secret: true },
  ],
});

describe('distributable bundles', () => {
  it('refuses a bad bundle, naming the field and the fix', () => {
    assert.deepEqual(bundleProblems(D()), []);
    assert.deepEqual(bundleProblems(D({ name: '../etc' })), [
      'manifest.name: "../etc" must be letters, digits, . _ + - (at most 128)',
    ]);
    assert.deepEqual(bundleProblems(D({ scripts: { check: 'check.sh' } })), [
      'manifest.scripts.apply: missing; name the bundle file that runs "apply"',
    ]);
    assert.deepEqual(bundleProblems(D(), 'undo'), [
      'manifest.scripts.undo: missing; name the bundle file that runs "undo"',
    ]);
    assert.deepEqual(bundleProblems(D({ artifacts: [{ name: 'x.deb', ref: 'x:1', digest: 'md5:abc' }] })), [
      'manifest.artifacts[0].digest: "md5:abc" must be sha256: and 64 lower-case hex digits',
    ]);
    assert.deepEqual(bundleProblems(D({ env: { 'bad-name': 'x' } })), [
      'manifest.env.bad-name: must be an upper-case shell variable name',
    ]);
    assert.deepEqual(bundleProblems(D({}, [{ name: 'sub/dir.sh', content: '', mode: 0o755 }])).slice(0, 1), [
      'files[0].name: "sub/dir.sh" must be a plain file name (no "/", not .strata*)',
    ]);
  });

  it('is identified by its digest: file order does not matter, content does', () => {
    const a = D();
    const b = D({}, [...a.files].reverse());
    assert.equal(bundleDigest(a), bundleDigest(b));
    const c = D({ env: { X: '1' } });
    assert.notEqual(bundleDigest(a), bundleDigest(c));
    assert.match(bundleDir(a), /^\/var\/lib\/strata\/dist\/motd\/1\.0-[0-9a-f]{16}$/);
  });

  it('copies files as base64 on stdin, never in clear, and needs a registry for artifacts', () => {
    const s = copyScript(D(), undefined);
    assert.doesNotMatch(s, /PRIVATE KEY|secret/, 'no file content in clear');
    assert.match(s, /base64 -d > "\$d\.part\/"'key\.pem' <<'STRATA_EOF'/);
    assert.match(s, /chmod 600 "\$d\.part\/"'key\.pem'/);
    const digest = `sha256:${'a'.repeat(64)}`;
    const withArt = D({ artifacts: [{ name: 'p.deb', ref: 'p:1', digest }] });
    assert.match(copyScript(withArt, undefined), /needs artifacts but no registry address was given/);
    assert.match(
      copyScript(withArt, 'http://10.0.0.1:7421/registry'),
      new RegExp(
        `\\.strata-fetch\\.sh" 'http://10\\.0\\.0\\.1:7421/registry' '${digest}' "\\$d\\.part/artifacts/"'p\\.deb'`,
      ),
    );
    assert.equal(
      scriptCommand(D(), 'check.sh'),
      `cd '${bundleDir(D())}' && set -a && . ./.strata-env && set +a && exec ./'check.sh'`,
    );
  });

  it('the overlay step ships the newest registry package of its provider, by digest', async () => {
    const store = new SqliteStore(':memory:');
    const refs = new StoreRefs(store);
    const ref = (name: string, version: string, hex: string, createdAt: string) =>
      refs.put({ name, version, digest: `sha256:${hex.repeat(64)}`, size: 1, mediaType: 'x', createdAt });
    await ref('debian/bookworm/amd64/nebula', '1.6.1+dfsg-3', 'a', '2026-01-01T00:00:00Z');
    await ref('debian/bookworm/amd64/nebula', '1.6.1+dfsg-3+b4', 'b', '2026-02-01T00:00:00Z');
    await ref('debian/bookworm/amd64/nebula-cert-tools', '1', 'c', '2026-03-01T00:00:00Z');
    assert.deepEqual(await packageArtifacts(store, { provider: 'nebula' }), [
      {
        name: 'nebula.deb',
        ref: 'debian/bookworm/amd64/nebula:1.6.1+dfsg-3+b4',
        digest: `sha256:${'b'.repeat(64)}`,
      },
    ]);
    assert.deepEqual(
      await packageArtifacts(store, { provider: 'wireguard' }),
      [],
      'none pushed: the node must have it',
    );
    await store.close();
  });
});
