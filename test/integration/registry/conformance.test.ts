/**
 * The artifact store's conformance suite, run against both blob backends: a directory, and S3 on a real
 * MinIO server (built by scripts/build/minio.sh; skipped with the reason when the binary is absent).
 * References live in a real SQLite Strata store, as the global registry keeps them. What a user relies on:
 * the digest names the bytes; a wrong digest is refused and leaves nothing; bytes damaged at rest are never
 * delivered whole; gc frees exactly the unnamed blobs.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { openStore } from '../../../src/core/store/index.ts';
import type { BlobBackend } from '../../../src/registry/backend.ts';
import { DigestMismatchError, hexOf } from '../../../src/registry/digest.ts';
import { DirectoryBackend } from '../../../src/registry/dir-backend.ts';
import { S3Backend } from '../../../src/registry/s3-backend.ts';
import { ArtifactStore, StoreRefs } from '../../../src/registry/store.ts';
import { minioSkipReason, startMinio } from '../../helpers/minio.ts';
import type { Cleanup } from '../../helpers/services.ts';
import { suiteCleanup, tempDir } from '../../helpers/strata.ts';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

interface Fixture {
  backend: BlobBackend;
  stagingDir: string;
  /** Replaces a stored blob's bytes behind the store's back (bit rot, a tampered bucket). */
  corrupt(digest: string, bytes: Buffer): Promise<void>;
}

const minioSkip = minioSkipReason();

const backends: {
  name: string;
  skip?: string | undefined;
  open: (dir: string, t: Cleanup) => Promise<Fixture>;
}[] = [
  {
    name: 'directory',
    open: async (dir) => {
      const backend = new DirectoryBackend(join(dir, 'blobs-root'));
      return {
        backend,
        stagingDir: backend.stagingDir,
        corrupt: async (digest, bytes) =>
          writeFileSync(join(backend.root, 'blobs', 'sha256', hexOf(digest)), bytes),
      };
    },
  },
  {
    name: 'S3 on MinIO',
    skip: minioSkip,
    open: async (dir, t) => {
      const minio = await startMinio(t);
      const credentials = { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey };
      const backend = await S3Backend.open({
        bucket: minio.bucket,
        prefix: 'site-a/',
        endpoint: minio.endpoint,
        credentials,
      });
      const { S3Client, PutObjectCommand } = await import('@aws-sdk/client-s3');
      const raw = new S3Client({
        region: 'us-east-1',
        endpoint: minio.endpoint,
        forcePathStyle: true,
        credentials,
      });
      return {
        backend,
        stagingDir: join(dir, 'staging'),
        corrupt: async (digest, bytes) => {
          await raw.send(
            new PutObjectCommand({
              Bucket: minio.bucket,
              Key: `site-a/blobs/sha256/${hexOf(digest)}`,
              Body: bytes,
            }),
          );
        },
      };
    },
  },
];

for (const b of backends) {
  describe(`artifact store on the ${b.name} backend`, { skip: b.skip ?? false }, () => {
    const t = suiteCleanup();
    const dir = tempDir(t, 'strata-registry-conf-');
    let fx: Fixture;
    let store: ArtifactStore;

    const setup = async () => {
      if (store) return;
      fx = await b.open(dir, t);
      const db = await openStore('', dir);
      t.after(() => db.close());
      store = new ArtifactStore({ backend: fx.backend, refs: new StoreRefs(db), stagingDir: fx.stagingDir });
    };

    it('stores bytes under their SHA-256 and reads the same bytes back', async () => {
      await setup();
      const data = randomBytes(5 * 1024 * 1024 + 17);
      const put = await store.putBlob(Readable.from([data.subarray(0, 1000), data.subarray(1000)]));
      assert.equal(put.digest, sha(data));
      assert.equal(put.size, data.length);
      assert.equal((await fx.backend.stat(put.digest))?.size, data.length);
      const got = await store.openBlob(put.digest);
      assert.ok(got);
      assert.equal(got.size, data.length);
      assert.ok((await readAll(got.stream)).equals(data));
      assert.equal(await store.verifyBlob(put.digest), true);
    });

    it('refuses an upload whose bytes do not match the digest it claims, and keeps nothing', async () => {
      await setup();
      const claimed = sha(Buffer.from('what the sender meant'));
      await assert.rejects(
        store.putBlob(Readable.from([Buffer.from('what arrived')]), claimed),
        (e: unknown) => {
          assert.ok(e instanceof DigestMismatchError);
          assert.match((e as Error).message, /does not match its digest/);
          return true;
        },
      );
      assert.equal(await fx.backend.stat(claimed), undefined);
      assert.equal(await fx.backend.stat(sha(Buffer.from('what arrived'))), undefined);
      assert.deepEqual(readdirSync(fx.stagingDir), []);
    });

    it('keeps one copy of content pushed twice, and says a missing blob is missing', async () => {
      await setup();
      const data = Buffer.from(`same bytes ${b.name}`);
      const a = await store.putBlob(Readable.from([data]));
      const c = await store.putBlob(Readable.from([data]), a.digest);
      assert.equal(c.digest, a.digest);
      const all = [];
      for await (const x of fx.backend.list()) all.push(x.digest);
      assert.equal(all.filter((d) => d === a.digest).length, 1);
      const absent = sha(Buffer.from('never stored'));
      assert.equal(await store.openBlob(absent), undefined);
      assert.equal(await fx.backend.stat(absent), undefined);
    });

    it('never delivers a blob damaged at rest whole: the read fails before its last bytes', async () => {
      await setup();
      const data = randomBytes(300_000);
      const { digest } = await store.putBlob(Readable.from([data]));
      const bad = Buffer.from(data);
      bad[150_000] = bad[150_000]! ^ 0xff;
      await fx.corrupt(digest, bad);
      const got = await store.openBlob(digest);
      assert.ok(got);
      let received = 0;
      await assert.rejects(
        (async () => {
          for await (const c of got.stream) received += (c as Buffer).length;
        })(),
        DigestMismatchError,
      );
      assert.ok(received < data.length, `received ${received} of ${data.length} bytes`);
      assert.equal(await store.verifyBlob(digest), false);
    });

    it('names blobs NAME:VERSION, refuses a name for a blob it does not have, and lists names sorted', async () => {
      await setup();
      const one = await store.putBlob(Readable.from([Buffer.from('jq binary')]));
      await store.tag('tools/jq', '1.7', one.digest, 'application/octet-stream');
      await store.tag('tools/jq', '1.6', one.digest, 'application/octet-stream');
      await assert.rejects(
        store.tag('tools/yq', '4', sha(Buffer.from('absent')), 'application/octet-stream'),
        /not in the registry: upload it before naming it tools\/yq:4/,
      );
      const refs = (await store.refs.list()).filter((r) => r.name === 'tools/jq');
      assert.deepEqual(
        refs.map((r) => [r.name, r.version, r.digest, r.size]),
        [
          ['tools/jq', '1.6', one.digest, 9],
          ['tools/jq', '1.7', one.digest, 9],
        ],
      );
    });

    it('S3: the server itself refuses an object whose body does not match the checksum sent with it', {
      skip: b.name.startsWith('S3')
        ? false
        : 'the directory backend renames a file the store already verified',
    }, async () => {
      await setup();
      const file = join(dir, 'not-what-it-claims');
      writeFileSync(file, 'bytes damaged on the way to the bucket');
      const claimed = sha(Buffer.from('bytes as they left the store'));
      await assert.rejects(fx.backend.putFile(claimed, file, 38));
      assert.equal(await fx.backend.stat(claimed), undefined);
    });

    it('gc frees exactly the blobs no name points to, sparing young ones when asked', async () => {
      await setup();
      const kept = await store.putBlob(Readable.from([Buffer.from(`kept ${b.name}`)]));
      await store.tag('keep/me', '1', kept.digest, 'text/plain');
      const orphan = await store.putBlob(Readable.from([Buffer.from(`orphan ${b.name}`)]));
      const young = await store.gc(60 * 60_000);
      assert.equal(
        young.freed.some((f) => f.digest === orphan.digest),
        false,
        'a blob younger than minAge is spared (an upload whose name is not written yet)',
      );
      const r = await store.gc(0, Date.now() + 1000);
      const freed = r.freed.map((f) => f.digest);
      assert.ok(freed.includes(orphan.digest));
      assert.ok(!freed.includes(kept.digest));
      for (const ref of await store.refs.list())
        assert.ok(!freed.includes(ref.digest), `${ref.name} lost its blob`);
      assert.equal(await fx.backend.stat(orphan.digest), undefined);
      assert.ok(await fx.backend.stat(kept.digest));
      assert.equal(
        r.bytes,
        r.freed.reduce((n, f) => n + f.size, 0),
      );
    });
  });
}
