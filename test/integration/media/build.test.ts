/**
 * `strata media build` against a real `strata up`: the media worker builds an ISO and a USB image for a
 * Network (on a segment of test-owned namespaces), the CLI downloads them, checks their SHA-256 and puts
 * them in place; the images carry the iPXE script that chains to the network's boot server with the
 * site's enrolment token, and the artifact store keeps them by digest. Then the ways a build fails: a
 * network that does not exist, an output path that cannot be written, and a server whose PATH lacks
 * xorriso each end with an error naming the problem and leave no file (partial or whole) behind.
 * Needs root (namespaces) and the media tools (scripts/setup.sh).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createNetns } from '../../helpers/netns.ts';
import { startStrata, suiteCleanup, tempDir } from '../../helpers/strata.ts';
import { makeSegment, networkManifest, nodeManifest, strataWithNetwork } from '../boot/segment.ts';
import { buildBoth } from './media.ts';

const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
/** A file on the USB image's EFI system partition (it starts at sector 2048). */
const usbFile = (img: string, path: string) =>
  execFileSync('mtype', ['-i', `${img}@@1048576`, `::${path}`], {
    encoding: 'utf8',
    env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
  });

describe('strata media build', () => {
  const t = suiteCleanup();

  it('builds a hybrid ISO and a USB image that chain to the network with its enrolment token', async () => {
    const { strata, seg, set } = await strataWithNetwork(t, {
      prefix: '10.213.171',
      name: 'lan',
      clients: ['c1'],
    });
    const dir = tempDir(t, 'strata-media-');
    const r = await buildBoth(strata, 'lan', join(dir, 'lan'));
    assert.equal(r.code, 0, r.stderr);
    // Progress on stderr (plain lines: no terminal here): the build, then each download verified.
    assert.match(r.stderr, /\] build done 100%: built\n/);
    assert.match(r.stderr, /\] download done 100%: lan\.iso verified\n/);
    assert.match(r.stderr, /\] download done 100%: lan\.img verified\n/);
    assert.deepEqual(readdirSync(dir).sort(), ['lan.img', 'lan.iso']);
    for (const f of ['lan.iso', 'lan.img']) {
      const line = r.stdout.split('\n').find((l) => l.startsWith(join(dir, f)));
      assert.ok(line?.includes(`sha256 ${sha256(join(dir, f))}`), r.stdout);
    }
    // The ISO is hybrid: an MBR boot signature and an El Torito catalogue with BIOS and EFI entries.
    const iso = readFileSync(join(dir, 'lan.iso'));
    assert.equal(iso.readUInt16LE(510), 0xaa55);
    const report = execFileSync('xorriso', ['-indev', join(dir, 'lan.iso'), '-report_el_torito', 'plain'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.match(report, /El Torito boot img :\s+1\s+BIOS/);
    assert.match(report, /El Torito boot img :\s+2\s+UEFI/);
    // The USB image: a bootable EFI system partition holding both iPXEs, SYSLINUX and the script.
    const table = execFileSync('sfdisk', ['-d', join(dir, 'lan.img')], { encoding: 'utf8' });
    assert.match(table, /start=\s*2048, size=.*type=ef, bootable/);
    const script = usbFile(join(dir, 'lan.img'), '/autoexec.ipxe');
    assert.match(script, /^#!ipxe\n/);
    assert.match(script, /^dhcp \|\| goto retry$/m);
    const chain = script.match(/^chain --autofree (\S+) /m)?.[1] ?? '';
    assert.ok(chain.startsWith(`http://${seg.prefix}.1:7421/boot/ipxe?mac=\${netX/mac}&`), chain);
    const token = new URL(chain).searchParams.get('token') ?? '';
    assert.match(token, /^[A-Za-z0-9_-]{32}$/);
    assert.match(usbFile(join(dir, 'lan.img'), '/syslinux/syslinux.cfg'), /INITRD \/autoexec\.ipxe/);
    // Kept in the artifact store by digest; the token is in the image only, never in an API answer.
    const id = r.stdout.match(/^media build (\S+) for network lan \(dhcp\)$/m)?.[1] ?? '';
    const build = await strata.api('GET', `/api/v1/media/builds/${id}`);
    assert.equal(build.status, 200);
    const rec = build.json as {
      phase: string;
      images: { format: string; sha256: string; artifact: string }[];
    };
    assert.equal(rec.phase, 'Succeeded');
    assert.deepEqual(
      rec.images.map((i) => [i.format, i.sha256, i.artifact]),
      [
        ['iso', sha256(join(dir, 'lan.iso')), `media/lan/iso:${id}`],
        ['usb', sha256(join(dir, 'lan.img')), `media/lan/usb:${id}`],
      ],
    );
    for (const i of rec.images)
      assert.equal(sha256(join(strata.dataDir, 'media-store/blobs/sha256', i.sha256)), i.sha256);
    // Not in the global registry, whose pull token and local registries would hand the token out.
    const ls = await strata.cli(['registry', 'ls']);
    assert.doesNotMatch(ls.stdout + ls.stderr, /media\//);
    assert.ok(!build.text.includes(token), 'the build record shows no token');
    // The boot server checks the token: another token is refused, the site's passes on to the usual checks
    // (this MAC is no Node's, and the network ignores unknown machines).
    const client = seg.clients.c1!;
    set.addr(client, 'eth0', `${seg.prefix}.9/24`);
    const fetchScript = async (tok: string, mac = '52:54:00:ab:17:99', node?: string) => {
      const url =
        chain.replace(/\$\{netX\/mac\}/, mac).replace(/token=[^&]*/, `token=${tok}`) +
        (node ? `&node=${node}` : '');
      const out = await set.exec(client, 'curl', ['-s', '-w', '\n%{http_code}', url], { timeoutMs: 10_000 });
      return out.stdout;
    };
    assert.match(
      await fetchScript('not-the-site-token-000000'),
      /enrolment token is not this site's[\s\S]*\n\n403$/,
    );
    assert.match(await fetchScript(token), /unknown machine\n\n404$/);
    // A medium made for one node boots no other; for its own node, the site token stands in for the lease
    // check (a static address has no lease), so n1 gets its script from an address it was never leased.
    const n1 = await strata.cli(['apply', '-f', '-'], {
      stdin: nodeManifest('n1', '52:54:00:ab:17:98', 'lan', `${seg.prefix}.30`),
    });
    assert.equal(n1.code, 0, n1.stderr);
    assert.match(
      await fetchScript(token, '52:54:00:ab:17:98', 'n2'),
      /boot media made for node n2 refused: 52:54:00:ab:17:98 belongs to n1\n\n403$/,
    );
    assert.match(await fetchScript(token, '52:54:00:ab:17:98', 'n1'), /no profile selects n1[\s\S]*\n200$/);
    assert.match(
      await fetchScript('', '52:54:00:ab:17:98'),
      /enrolment token is not this site's[\s\S]*\n403$/,
    );
    // A second medium for the same network carries the same site token.
    const again = await strata.cli([
      'media',
      'build',
      '--network',
      'lan',
      '--format',
      'usb',
      '-o',
      join(dir, 'static.img'),
      '--static',
      `${seg.prefix}.60/24/${seg.prefix}.1/${seg.prefix}.1`,
    ]);
    assert.equal(again.code, 0, again.stderr);
    const stat = usbFile(join(dir, 'static.img'), '/autoexec.ipxe');
    assert.match(stat, new RegExp(`^set net0/ip ${seg.prefix}\\.60$`, 'm'));
    assert.match(stat, /^set net0\/netmask 255\.255\.255\.0$/m);
    assert.ok(stat.includes(`token=${token}`));

    // Errors: each names the problem, and nothing is left where the image would have gone.
    const none = await strata.cli(['media', 'build', '--network', 'nope', '-o', join(dir, 'x.iso')]);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /Network nope not found/);
    const missingDir = await strata.cli(['media', 'build', '--network', 'lan', '-o', join(dir, 'no/x.iso')]);
    assert.notEqual(missingDir.code, 0);
    assert.match(missingDir.stderr, /cannot write -o .*no\/x\.iso: its directory does not exist/);
    const isDir = await strata.cli(['media', 'build', '--network', 'lan', '-o', dir]);
    assert.notEqual(isDir.code, 0);
    assert.match(isDir.stderr, /is a directory: give a file name/);
    const badStatic = await strata.cli([
      'media',
      'build',
      '--network',
      'lan',
      '-o',
      join(dir, 'x.iso'),
      '--static',
      '10.0.0.5',
    ]);
    assert.notEqual(badStatic.code, 0);
    assert.match(badStatic.stderr, /--static: give ADDRESS\/PREFIX\/GATEWAY/);
    assert.deepEqual(readdirSync(dir).sort(), ['lan.img', 'lan.iso', 'static.img']);
  });

  it('a server without xorriso fails the build naming the package, and leaves no file', async () => {
    // PATH of symlinks to everything in the usual directories except xorriso.
    const farm = tempDir(t, 'strata-media-path-');
    for (const d of ['/usr/local/bin', '/usr/bin', '/usr/sbin']) {
      for (const f of readdirSync(d)) {
        if (f === 'xorriso') continue;
        try {
          symlinkSync(join(d, f), join(farm, f));
        } catch {
          // the same name in an earlier directory wins, as on PATH
        }
      }
    }
    const set = createNetns(t);
    const seg = makeSegment(set, '10.213.172', [], 'seg2');
    const strata = await startStrata(t, { env: { PATH: farm } });
    const applied = await strata.cli(['apply', '-f', '-'], { stdin: networkManifest('lan2', seg) });
    assert.equal(applied.code, 0, applied.stderr);
    const dir = join(tempDir(t, 'strata-media-'), 'out');
    mkdirSync(dir);
    const r = await strata.cli([
      'media',
      'build',
      '--network',
      'lan2',
      '--format',
      'iso',
      '-o',
      join(dir, 'x.iso'),
    ]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /media build failed: cannot build iso media, missing: xorriso \(Debian package xorriso\)/,
    );
    assert.match(r.stderr, /bash scripts\/setup\.sh/);
    assert.deepEqual(readdirSync(dir), []);
    assert.deepEqual(readdirSync(join(strata.dataDir, 'media-builds')), [], 'no partial image in the worker');
  });
});
