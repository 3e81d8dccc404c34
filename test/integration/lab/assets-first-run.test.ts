/**
 * The first run of the lab on a fresh machine: the asset build starts from an EMPTY cache, through the same
 * path `strata lab up` takes (`buildInstallMedia`: scripts/install/build-media.ts in a child process), and must
 * return the manifest while showing progress. debootstrap is replaced by test/fixtures/fake-debootstrap
 * (placed first on PATH), which prints progress on stdout and stderr as the real one does, plus dpkg chatter
 * and a JSON-looking line, and makes a tiny root file system: the real one needs minutes and the Debian
 * mirror. The image's size check is relaxed for that tiny file system. Only the rootfs and OS image stages
 * run (the kernel stage downloads ~70 MB of kernel package); the machine's cache (/var/cache/strata/lab)
 * is never touched: the build gets a temporary cache dir.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type BuildProgress, buildInstallMedia } from '../../../src/install/media/index.ts';
import { REPO, suiteCleanup, tempDir, waitFor } from '../../helpers/strata.ts';

const FAKE = join(REPO, 'test/fixtures/fake-debootstrap');

describe('lab assets: the first run from an empty cache (fake debootstrap)', () => {
  const t = suiteCleanup();
  const fakeBin = tempDir(t, 'lab-first-run-bin-');
  symlinkSync(FAKE, join(fakeBin, 'debootstrap'));
  const env = (extra: Record<string, string> = {}) => ({
    ...process.env,
    PATH: `${fakeBin}:${process.env.PATH}`,
    ...extra,
  });
  const sanity = { minRootfsMiB: 0, minImageMiB: 0 };

  it('returns the manifest, shows debootstrap and compression progress, and keeps tool output off the result', async () => {
    const cacheDir = tempDir(t, 'lab-first-run-cache-');
    assert.deepEqual(readdirSync(cacheDir), [], 'the cache starts empty');
    const progress: BuildProgress[] = [];
    const logs: string[] = [];
    const { manifest, paths } = await buildInstallMedia({
      cacheDir,
      only: ['rootfs', 'osimage'],
      sanity,
      env: env(),
      progress: (p) => progress.push(p),
      log: (l) => logs.push(l),
    });

    // the manifest describes the image that is on disk
    const image = manifest.files.osImage!;
    assert.equal(image.path, paths.osImage);
    assert.equal(image.sha256, createHash('sha256').update(readFileSync(paths.osImage)).digest('hex'));
    const listing = execFileSync('tar', ['--zstd', '-tf', paths.osImage], { encoding: 'utf8' });
    assert.match(listing, /^\.\/etc\/os-release$/m);
    assert.deepEqual(JSON.parse(readFileSync(paths.manifest, 'utf8')).files.osImage.sha256, image.sha256);

    // progress: debootstrap's own lines, a percentage that grows to 100, then the compression
    const rootfs = progress.filter((p) => p.stage === 'rootfs');
    assert.ok(
      rootfs.some((p) => p.doing === 'Retrieving libc6 2.36-9+deb12u7' && p.phase === 'download'),
      'says which package it fetches',
    );
    assert.ok(rootfs.some((p) => p.phase === 'extract' && /^Extracting /.test(p.doing)));
    assert.ok(rootfs.some((p) => p.phase === 'install' && /^Configuring /.test(p.doing)));
    const pct = rootfs.flatMap((p) => (p.percent === undefined ? [] : [p.percent]));
    for (let i = 1; i < pct.length; i++) assert.ok(pct[i]! >= pct[i - 1]!, `never backwards: ${pct}`);
    assert.equal(rootfs.at(-1)?.done, true);
    assert.equal(rootfs.at(-1)?.percent, 100);
    const packing = progress.filter((p) => p.stage === 'osimage');
    assert.ok(
      packing.some((p) => p.phase === 'compress' && /^tar \| zstd: .* of /.test(p.doing)),
      'bytes packed of total',
    );
    assert.equal(packing.at(-1)?.done, true);
    // warnings reach the log; everything debootstrap printed is kept in the cache for a post-mortem
    assert.ok(
      logs.some((l) => /W: Cannot check Release signature/.test(l)),
      logs.join('\n'),
    );
    const dlog = readFileSync(join(cacheDir, 'debootstrap.log'), 'utf8');
    assert.match(dlog, /is debootstrap output, not the manifest/);
    assert.match(dlog, /^Setting up libc6/m);
  });

  it('a second run finds everything up to date', async () => {
    const cacheDir = tempDir(t, 'lab-first-run-cache-');
    await buildInstallMedia({ cacheDir, only: ['rootfs', 'osimage'], sanity, env: env() });
    const logs: string[] = [];
    const { manifest } = await buildInstallMedia({
      cacheDir,
      only: ['rootfs', 'osimage'],
      sanity,
      env: env({ FAKE_DEBOOTSTRAP_FAIL: 'must not run again' }),
      log: (l) => logs.push(l),
    });
    assert.ok(manifest.files.osImage);
    assert.ok(logs.includes('rootfs: up to date'), logs.join('\n'));
    assert.ok(logs.includes('os image: up to date'), logs.join('\n'));
  });

  it('a failing debootstrap fails the build with its own error and where its output is', async () => {
    const cacheDir = tempDir(t, 'lab-first-run-cache-');
    await assert.rejects(
      buildInstallMedia({
        cacheDir,
        only: ['rootfs', 'osimage'],
        sanity,
        env: env({ FAKE_DEBOOTSTRAP_FAIL: 'libc6 (mirror unreachable)' }),
      }),
      (e: Error) => {
        assert.match(e.message, /debootstrap failed/);
        assert.match(e.message, /E: Couldn't download packages: libc6 \(mirror unreachable\)/);
        assert.ok(e.message.includes(join(cacheDir, 'debootstrap.log')), e.message);
        return true;
      },
    );
  });

  it('a build whose parent dies ends its debootstrap', async () => {
    const cacheDir = tempDir(t, 'lab-first-run-cache-');
    // the parent: a process running buildInstallMedia, as `strata lab up` does, killed half-way (kill -9)
    const code = `
      import { buildInstallMedia } from ${JSON.stringify(join(REPO, 'src/install/media/index.ts'))};
      await buildInstallMedia({ cacheDir: ${JSON.stringify(cacheDir)}, only: ['rootfs'], env: process.env,
        progress: (p) => p.phase === 'download' && console.log('DOWNLOADING') });`;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', code], {
      env: env({ FAKE_DEBOOTSTRAP_SLEEP: '30' }),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.after(() => void parent.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      parent.stdout.on('data', (d: Buffer) => /DOWNLOADING/.test(d.toString()) && resolve());
      parent.once('exit', () => reject(new Error('the build ended before downloading')));
    });
    const builders = () =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(cacheDir);
          } catch {
            return false;
          }
        });
    assert.ok(builders().length >= 2, 'build-media and the fake debootstrap run');
    parent.kill('SIGKILL');
    await waitFor('no process left building into the cache', () => builders().length === 0, 15_000);
  });

  it('the real size check still refuses a tiny image', async () => {
    const cacheDir = tempDir(t, 'lab-first-run-cache-');
    await assert.rejects(
      buildInstallMedia({ cacheDir, only: ['rootfs', 'osimage'], env: env() }),
      /os image size not sane: rootfs 1 MiB \(expected 200\.\.4096\)/,
    );
  });
});
