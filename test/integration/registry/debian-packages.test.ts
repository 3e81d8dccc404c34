/**
 * scripts/registry/debian-packages.sh as setup runs it: a package from this machine's Debian mirror
 * (apt-get download) pushed into a real `strata up` under debian/<codename>/<arch>/<package>:<version>,
 * with the digest of the very .deb apt fetched. Uses wireguard-tools (about 90 KB, no dependencies beyond
 * a minimal system). Skipped where there is no apt-get.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO, STRATA_BIN, startStrata, suiteCleanup, tempDir } from '../../helpers/strata.ts';

const hasApt = spawnSync('apt-get', ['--version']).status === 0;

describe('Debian packages into the registry', { skip: hasApt ? false : 'no apt-get on this machine' }, () => {
  const t = suiteCleanup();

  it('downloads a package from the Debian mirror and pushes it under its Debian name and version', async () => {
    const s = await startStrata(t);
    const cache = tempDir(t, 'strata-registry-debs-');
    const r = spawnSync('bash', [join(REPO, 'scripts/registry/debian-packages.sh'), 'wireguard-tools'], {
      env: {
        ...process.env,
        STRATA_SERVER: s.url,
        STRATA_TOKEN: s.token,
        STRATA_DEB_CACHE: cache,
        STRATA_CLI: STRATA_BIN,
      },
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const debs = readdirSync(cache).filter((f) => f.startsWith('wireguard-tools_') && f.endsWith('.deb'));
    assert.equal(debs.length, 1, `cache holds ${readdirSync(cache).join(', ')}`);
    const deb = join(cache, debs[0]!);
    const field = (f: string) => execFileSync('dpkg-deb', ['-f', deb, f], { encoding: 'utf8' }).trim();
    const codename = /^VERSION_CODENAME=(.*)$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];

    const ls = await s.cli(['registry', 'ls', '-o', 'json']);
    const items = (
      JSON.parse(ls.stdout) as {
        items: { name: string; version: string; digest: string; mediaType: string }[];
      }
    ).items;
    const ref = items.find((i) => i.name === `debian/${codename}/${field('Architecture')}/wireguard-tools`);
    assert.ok(ref, `pushed: ${items.map((i) => i.name).join(', ')}`);
    assert.equal(ref.version, field('Version'));
    assert.equal(ref.digest, `sha256:${createHash('sha256').update(readFileSync(deb)).digest('hex')}`);
    assert.equal(ref.mediaType, 'application/vnd.debian.binary-package');
  });
});
