/**
 * The registry's pure rules: digest and name syntax with messages that name the field, NAME:VERSION with
 * Debian epochs, the verifying stream that never lets a mismatching body finish, and the CLI's handling of
 * `--version V` after a subcommand.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { subcommandVersionFlag } from '../../../src/cli/main.ts';
import {
  DigestMismatchError,
  DigestStream,
  isDigest,
  mustDigest,
  mustName,
  parseRef,
  sha256Digest,
} from '../../../src/registry/digest.ts';
import { mediaTypeFor } from '../../../src/registry/protocol.ts';

// sha256("abc"), FIPS 180-2 appendix B.1.
const ABC = 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

async function collect(s: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe('registry digests and names', () => {
  it('computes the FIPS 180-2 test vector and accepts only sha256:<64 lower-case hex>', () => {
    assert.equal(sha256Digest('abc'), ABC);
    assert.ok(isDigest(ABC));
    assert.ok(!isDigest(ABC.toUpperCase()));
    assert.ok(!isDigest(ABC.slice(0, -1)));
    assert.ok(!isDigest(`sha512:${ABC.slice(7)}`));
    assert.throws(
      () => mustDigest('md5:abc', 'digest'),
      /^Error: digest: invalid digest "md5:abc": expected sha256:/,
    );
  });

  it('splits NAME:VERSION at the first colon, so Debian epochs stay in the version', () => {
    assert.deepEqual(parseRef('debian/amd64/nebula:1:1.6.1+dfsg-3'), {
      name: 'debian/amd64/nebula',
      version: '1:1.6.1+dfsg-3',
    });
    assert.deepEqual(parseRef('libstdc++6:12.2.0-14'), { name: 'libstdc++6', version: '12.2.0-14' });
    assert.throws(() => parseRef('nebula'), /expected NAME:VERSION/);
    assert.throws(() => parseRef('nebula:'), /expected NAME:VERSION/);
    assert.throws(() => parseRef('../etc/passwd:1'), /^Error: name: invalid artifact name/);
    assert.throws(() => mustName('a//b'), /invalid artifact name/);
    assert.throws(() => mustName('with space'), /invalid artifact name/);
    assert.throws(() => parseRef('ok:has space'), /^Error: version: invalid version "has space"/);
  });

  it('passes a body that matches its digest through unchanged', async () => {
    const s = Readable.from([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')]).pipe(
      new DigestStream(ABC),
    );
    assert.equal((await collect(s)).toString(), 'abc');
  });

  it('fails a mismatching body before it delivers the last chunk', async () => {
    const check = new DigestStream(ABC);
    const got: Buffer[] = [];
    check.on('data', (c: Buffer) => got.push(c));
    const done = new Promise<Error>((res) => check.on('error', res));
    for (const c of ['a', 'b', 'X']) check.write(Buffer.from(c));
    check.end();
    const err = await done;
    assert.ok(err instanceof DigestMismatchError);
    assert.match(err.message, /expected sha256:ba78.*, got sha256:[0-9a-f]{64} \(3 bytes\)/);
    assert.equal(Buffer.concat(got).toString(), 'ab', 'the last chunk is withheld');
  });

  it('hashes without checking when no digest is expected', async () => {
    const h = new DigestStream();
    await collect(Readable.from([Buffer.from('abc')]).pipe(h));
    assert.equal(h.digest, ABC);
    assert.equal(h.size, 3);
  });

  it('guesses media types from file names', () => {
    assert.equal(mediaTypeFor('nebula_1.6.1+dfsg-3+b4_amd64.deb'), 'application/vnd.debian.binary-package');
    assert.equal(mediaTypeFor('rootfs.tar.zst'), 'application/zstd');
    assert.equal(mediaTypeFor('agent'), 'application/octet-stream');
  });

  it('gives `--version V` after a subcommand to the subcommand, and leaves `strata --version` alone', () => {
    const argv = (...a: string[]) => ['node', 'strata', ...a];
    assert.deepEqual(
      subcommandVersionFlag(argv('registry', 'push', 'f', '--name', 'n', '--version', '1.0')),
      argv('registry', 'push', 'f', '--name', 'n', '--version=1.0'),
    );
    assert.deepEqual(subcommandVersionFlag(argv('--version')), argv('--version'));
    assert.deepEqual(
      subcommandVersionFlag(argv('--server', 'http://x', '--version')),
      argv('--server', 'http://x', '--version'),
    );
  });
});
