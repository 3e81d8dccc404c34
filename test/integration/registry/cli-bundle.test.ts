/**
 * `strata registry` and `strata bundle` as a user runs them: real `strata up` servers and the real CLI.
 * Push (a file, a directory), ls, pull, rm, gc; then the air-gap path: export a bundle from one Strata and
 * import it into an empty one (a fresh data directory), which must reproduce the registry byte for byte
 * (same references, same digests, same bytes) and the lab/install assets; a damaged bundle is refused.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type StrataServer, startStrata, suiteCleanup, tempDir } from '../../helpers/strata.ts';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function blobFiles(s: StrataServer): Map<string, Buffer> {
  const dir = join(s.dataDir, 'registry', 'blobs', 'sha256');
  return new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
}

async function refs(s: StrataServer): Promise<unknown[]> {
  const r = await s.cli(['registry', 'ls', '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { items: unknown[] }).items;
}

describe('strata registry and strata bundle (CLI against strata up)', () => {
  const t = suiteCleanup();
  const work = tempDir(t, 'strata-registry-cli-');
  const tool = randomBytes(70_000);
  const cfg = Buffer.from('listen: 0.0.0.0:4222\n');
  const readme = Buffer.from('# site files\n');
  let a: StrataServer;

  it('pushes a file and every file of a directory, and lists them as NAME VERSION DIGEST SIZE', async () => {
    a = await startStrata(t);
    writeFileSync(join(work, 'tool.bin'), tool);
    mkdirSync(join(work, 'site', 'etc'), { recursive: true });
    writeFileSync(join(work, 'site', 'etc', 'nats.conf'), cfg);
    writeFileSync(join(work, 'site', 'README.md'), readme);

    const one = await a.cli([
      'registry',
      'push',
      join(work, 'tool.bin'),
      '--name',
      'tools/agent',
      '--version',
      '1.2.0',
    ]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout, `pushed tools/agent:1.2.0 ${sha(tool)} ${tool.length}\n`);
    const dir = await a.cli(['registry', 'push', join(work, 'site'), '--name', 'site-a', '--version', '7']);
    assert.equal(dir.code, 0, dir.stderr);
    assert.equal(dir.stdout.trim().split('\n').length, 2);

    const ls = await a.cli(['registry', 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    const rows = ls.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/));
    assert.deepEqual(rows, [
      ['NAME', 'VERSION', 'DIGEST', 'SIZE'],
      ['site-a/README.md', '7', sha(readme), String(readme.length)],
      ['site-a/etc/nats.conf', '7', sha(cfg), String(cfg.length)],
      ['tools/agent', '1.2.0', sha(tool), String(tool.length)],
    ]);
  });

  it('pulls NAME:VERSION to a file with the same bytes, and says clearly what is wrong', async () => {
    const out = join(work, 'pulled.bin');
    const r = await a.cli(['registry', 'pull', 'tools/agent:1.2.0', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(out).equals(tool));

    const missing = await a.cli(['registry', 'pull', 'tools/agent:9', '-o', join(work, 'x')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /NotFound.*artifact tools\/agent:9 is not in the registry/);
    const badName = await a.cli(['registry', 'push', join(work, 'tool.bin'), '--name', 'Tools Agent']);
    assert.notEqual(badName.code, 0);
    assert.match(badName.stderr, /--name: invalid artifact name "Tools Agent": use letters, digits/);
    const badRef = await a.cli(['registry', 'pull', 'no-version', '-o', join(work, 'x')]);
    assert.match(badRef.stderr, /expected NAME:VERSION/);
  });

  it('gc frees the blobs no name points to any more and prints them', async () => {
    const old = Buffer.from('old build');
    writeFileSync(join(work, 'old.bin'), old);
    assert.equal(
      (await a.cli(['registry', 'push', join(work, 'old.bin'), '--name', 'tmp/old', '--version', '1'])).code,
      0,
    );
    const kept = await a.cli(['registry', 'gc', '--min-age', '0']);
    assert.equal(kept.code, 0, kept.stderr);
    assert.match(kept.stdout, /^gc: freed 0 blob\(s\), 0 bytes/m);
    assert.equal((await a.cli(['registry', 'rm', 'tmp/old:1'])).code, 0);
    const gc = await a.cli(['registry', 'gc', '--min-age', '0']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.match(gc.stdout, new RegExp(`^freed ${sha(old)} ${old.length}$`, 'm'));
    assert.match(gc.stdout, /^gc: freed 1 blob\(s\), 9 bytes/m);
    assert.ok(!blobFiles(a).has(sha(old).slice(7)));
    const badAge = await a.cli(['registry', 'gc', '--min-age', 'soon']);
    assert.match(badAge.stderr, /minAge: "soon" is not a duration/);
  });

  it('exports a bundle that an empty Strata imports into the same registry, byte for byte, with the assets', async () => {
    const assets = join(work, 'lab-assets');
    mkdirSync(assets);
    const kernel = randomBytes(40_000);
    writeFileSync(join(assets, 'vmlinuz'), kernel);
    writeFileSync(join(assets, 'initramfs.stamp'), 'abc\n');
    writeFileSync(join(assets, 'debian.tar.zst.tmp'), 'half-built, not carried');
    const bundle = join(work, 'site.bundle.tar');
    const ex = await a.cli(['bundle', 'export', '--to', bundle, '--assets-dir', assets]);
    assert.equal(ex.code, 0, ex.stderr);
    assert.match(ex.stdout, /exported 3 artifact\(s\), 3 blob\(s\), 2 asset\(s\)/);

    const b = await startStrata(t);
    assert.deepEqual(await refs(b), [], 'the second Strata starts empty');
    const target = join(work, 'imported-assets');
    const im = await b.cli(['bundle', 'import', bundle, '--assets-dir', target]);
    assert.equal(im.code, 0, im.stderr);
    assert.match(im.stdout, /imported 3 artifact\(s\): 3 blob\(s\) uploaded, 0 already there, 2 asset\(s\)/);

    assert.deepEqual(await refs(b), await refs(a));
    assert.deepEqual(blobFiles(b), blobFiles(a));
    assert.deepEqual(readdirSync(target).sort(), ['initramfs.stamp', 'vmlinuz']);
    assert.ok(readFileSync(join(target, 'vmlinuz')).equals(kernel));
    const pulled = join(work, 'from-b.bin');
    assert.equal((await b.cli(['registry', 'pull', 'tools/agent:1.2.0', '-o', pulled])).code, 0);
    assert.ok(readFileSync(pulled).equals(tool));

    // Importing the same bundle again changes nothing.
    const again = await b.cli(['bundle', 'import', bundle, '--no-assets']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /0 blob\(s\) uploaded, 3 already there/);
    assert.deepEqual(await refs(b), await refs(a));
  });

  it('refuses a damaged bundle and names nothing it could not verify', async () => {
    const bundle = readFileSync(join(work, 'site.bundle.tar'));
    const at = bundle.indexOf(tool.subarray(0, 64));
    assert.ok(at > 0);
    bundle[at + 1000] = bundle[at + 1000]! ^ 0xff;
    const damaged = join(work, 'damaged.tar');
    writeFileSync(damaged, bundle);
    const c = await startStrata(t);
    const r = await c.cli(['bundle', 'import', damaged, '--no-assets']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /DigestMismatch/);
    assert.deepEqual(await refs(c), []);

    writeFileSync(join(work, 'not-a-bundle.tar'), 'hello');
    const junk = await c.cli(['bundle', 'import', join(work, 'not-a-bundle.tar'), '--no-assets']);
    assert.notEqual(junk.code, 0);
    assert.match(junk.stderr, /^error: /m);
  });
});
