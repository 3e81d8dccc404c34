/**
 * The OS image the installer writes to a node's disk: a debootstrapped Debian bookworm root file system
 * (minbase plus OS_PACKAGES), configured for a first boot anywhere (DHCP on every wired NIC, no host keys,
 * no machine id) and packed as tar.zst. The debootstrap (minutes) is a stage of its own, so changing the
 * image's configuration does not download the packages again.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DEBOOTSTRAP_PACKAGES_ESTIMATE, DebootstrapProgress } from './debootstrap-progress.ts';
import { BUILD_VERSION, type ImageSanity, mediaPaths } from './paths.ts';
import { hashOf, type Progress, run, runAsync, sh, stampOk, track } from './tools.ts';

/** Packages of the OS image, on top of debootstrap's minbase. */
export const OS_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'libpam-systemd', // provides default-logind, which polkitd (network-manager) needs; debootstrap does not resolve virtual packages
  'linux-image-amd64',
  'initramfs-tools',
  'grub-pc-bin',
  'grub-efi-amd64-bin',
  'grub2-common',
  'openssh-server',
  'busybox',
  'ca-certificates',
  'curl',
  'network-manager',
  'wpasupplicant',
  'swupdate',
  'selinux-basics',
  'selinux-policy-default',
  'e2fsprogs',
  'dosfstools',
  'iproute2',
  'ifupdown',
  'less',
  'procps',
];

/** Packages of OS_PACKAGES that the mirror's suite does not have (per the host's apt lists). */
export function missingPackages(packages: string[]): string[] {
  // one apt-cache call (about a second each): blocks start with "name:" at column 0
  const out = run('apt-cache', ['policy', ...packages]);
  const candidate = new Map<string, boolean>();
  let current = '';
  for (const line of out.split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head) current = head[1]!;
    const c = /^\s+Candidate:\s*(\S+)/.exec(line);
    if (c && current) candidate.set(current, c[1] !== '(none)');
  }
  return packages.filter((p) => !candidate.get(p));
}

export async function rootfsStage(
  cacheDir: string,
  mirror: string,
  log: (l: string) => void,
  progress: Progress,
): Promise<string[]> {
  const paths = mediaPaths(cacheDir);
  const missing = missingPackages(OS_PACKAGES);
  const pkgs = OS_PACKAGES.filter((p) => !missing.includes(p));
  if (missing.length) log(`rootfs: not in bookworm, left out: ${missing.join(', ')}`);
  const stamp = join(cacheDir, 'rootfs.stamp');
  const want = hashOf(String(BUILD_VERSION), mirror, pkgs.join(','));
  if (stampOk(stamp, want, [join(paths.rootfsDir, 'etc/os-release')])) {
    log('rootfs: up to date');
    return missing;
  }
  log(`rootfs: debootstrap bookworm (${pkgs.length} extra packages; takes minutes)`);
  rmSync(paths.rootfsDir, { recursive: true, force: true });
  rmSync(stamp, { force: true });
  // The package count of the last build makes the download percentage exact; a first run estimates.
  const countFile = join(cacheDir, 'rootfs.packages');
  const expected =
    Number(existsSync(countFile) ? readFileSync(countFile, 'utf8') : 0) || DEBOOTSTRAP_PACKAGES_ESTIMATE;
  const parser = new DebootstrapProgress(expected);
  const logFile = join(cacheDir, 'debootstrap.log');
  writeFileSync(logFile, '');
  const logLines: string[] = [];
  const flushLog = () => {
    if (logLines.length) writeFileSync(logFile, logLines.splice(0).join('\n') + '\n', { flag: 'a' });
  };
  const flusher = setInterval(flushLog, 2000);
  progress({ phase: 'indices', percent: 0, doing: 'debootstrap: starting' });
  try {
    await runAsync(
      'debootstrap',
      ['--variant=minbase', `--include=${pkgs.join(',')}`, 'bookworm', paths.rootfsDir, mirror],
      {
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        onLine: (line) => {
          logLines.push(line);
          const st = parser.line(line);
          if (st) progress({ phase: st.phase, percent: st.percent, doing: st.doing });
          if (/^W: /.test(line.trim())) log(`rootfs: ${line.trim()}`);
        },
      },
    );
  } catch (e) {
    throw new Error(`debootstrap failed (its whole output is in ${logFile}): ${(e as Error).message}`);
  } finally {
    clearInterval(flusher);
    flushLog();
  }
  if (parser.packages) writeFileSync(countFile, `${parser.packages}\n`);
  writeFileSync(stamp, want + '\n');
  return missing;
}

/** Files written into the image: networking, console, and the things the installer must not find. */
function configureRootfs(rootfs: string): void {
  const w = (rel: string, text: string, mode = 0o644) => {
    mkdirSync(dirname(join(rootfs, rel)), { recursive: true });
    writeFileSync(join(rootfs, rel), text, { mode });
  };
  // DHCP on every wired NIC with systemd-networkd; NetworkManager keeps Wi-Fi (wpa_supplicant) only.
  w(
    'etc/systemd/network/80-strata-dhcp.network',
    '[Match]\nType=ether\nName=en* eth*\n\n[Network]\nDHCP=yes\nIPv6AcceptRA=yes\n\n[DHCPv4]\nUseHostname=no\n',
  );
  w('etc/NetworkManager/conf.d/10-strata.conf', '[keyfile]\nunmanaged-devices=type:ethernet\n');
  w('etc/network/interfaces', 'auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n');
  w('etc/hostname', 'localhost\n');
  w('etc/resolv.conf', '');
  w('etc/machine-id', '');
  sh(
    `chroot '${rootfs}' systemctl enable systemd-networkd.service systemd-networkd-wait-online.service ssh.service >/dev/null 2>&1 || true`,
  );
  // SWUpdate is carried but not started: its daemon fails without a site's update configuration (keys,
  // hardware compatibility), which the update layer will provide; a failing unit would mark every node degraded.
  sh(
    `chroot '${rootfs}' systemctl disable swupdate.service swupdate.socket swupdate-progress.service >/dev/null 2>&1 || true`,
  );
  // wait-online should not hold boot for interfaces that never get a lease
  w(
    'etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf',
    '[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=60\n',
  );
  sh(
    `rm -f '${rootfs}'/etc/ssh/ssh_host_* ; rm -rf '${rootfs}'/var/cache/apt/archives/*.deb '${rootfs}'/var/lib/apt/lists/* '${rootfs}'/var/log/*.log '${rootfs}'/tmp/* || true`,
  );
  // lab image: no docs, man pages or translations (~80 MiB of ~890; less to stream and extract under
  // emulation); licences stay. The dpkg excludes keep later apt installs from bringing them back.
  w(
    'etc/dpkg/dpkg.cfg.d/01-strata-nodoc',
    'path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\n' +
      'path-exclude /usr/share/locale/*\npath-include /usr/share/locale/locale.alias\npath-exclude /usr/share/info/*\n',
  );
  sh(
    `cd '${rootfs}/usr/share' && find doc -type f ! -name copyright -delete && find doc -type l -delete && ` +
      `rm -rf man/* info/* && find locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +`,
  );
  w(
    'etc/apt/sources.list',
    'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian-security bookworm-security main\n',
  );
}

export async function osImageStage(
  cacheDir: string,
  log: (l: string) => void,
  progress: Progress,
  sanity: ImageSanity,
): Promise<void> {
  const paths = mediaPaths(cacheDir);
  const stamp = join(cacheDir, 'osimage.stamp');
  const rootStamp = readFileSync(join(cacheDir, 'rootfs.stamp'), 'utf8');
  const want = hashOf(String(BUILD_VERSION), rootStamp, configureRootfs.toString());
  if (stampOk(stamp, want, [paths.osImage])) {
    log('os image: up to date');
    return;
  }
  log('os image: configuring and packing tar.zst');
  progress({ phase: 'configure', percent: 0, doing: 'configuring the root file system' });
  configureRootfs(paths.rootfsDir);
  const tmp = paths.osImage + '.tmp';
  await packImage(paths.rootfsDir, tmp, progress);
  const bytes = statSync(tmp).size;
  const rootfsMiB = Number(sh(`du -sm --one-file-system '${paths.rootfsDir}' | cut -f1`).trim());
  log(`os image: rootfs ${rootfsMiB} MiB, image ${(bytes / 1048576).toFixed(1)} MiB`);
  // sanity: far outside the expected size means a broken build
  if (
    rootfsMiB < sanity.minRootfsMiB ||
    rootfsMiB > sanity.maxRootfsMiB ||
    bytes < sanity.minImageMiB * 1048576
  ) {
    throw new Error(
      `os image size not sane: rootfs ${rootfsMiB} MiB (expected ${sanity.minRootfsMiB}..${sanity.maxRootfsMiB}), ` +
        `image ${bytes} bytes (expected at least ${sanity.minImageMiB} MiB)`,
    );
  }
  run('mv', [tmp, paths.osImage]);
  writeFileSync(stamp, want + '\n');
}

/**
 * tar | zstd of the root file system, the tar stream counted on its way through this process so the
 * progress is bytes packed against the file system's size.
 */
async function packImage(rootfs: string, out: string, progress: Progress): Promise<void> {
  const total = Number(sh(`du -sb --apparent-size --one-file-system '${rootfs}' | cut -f1`).trim()) || 1;
  const mib = (n: number) =>
    n < 1048576 ? `${(n / 1024).toFixed(0)} KiB` : `${(n / 1048576).toFixed(0)} MiB`;
  const tar = spawn(
    'tar',
    ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--one-file-system', '-C', rootfs, '-cf', '-', '.'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const zstd = spawn('zstd', ['-q', '-T0', '-10', '-o', out, '-f'], { stdio: ['pipe', 'pipe', 'pipe'] });
  track(tar);
  track(zstd);
  let errors = '';
  for (const c of [tar, zstd]) {
    c.stderr.setEncoding('utf8').on('data', (d: string) => {
      errors = (errors + d).slice(-2000);
    });
  }
  zstd.stdout.resume();
  let packed = 0;
  let last = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      packed += chunk.length;
      if (Date.now() - last > 250) {
        last = Date.now();
        const percent = Math.min(99, Math.floor((packed / total) * 100));
        progress({ phase: 'compress', percent, doing: `tar | zstd: ${mib(packed)} of ${mib(total)}` });
      }
      cb(null, chunk);
    },
  });
  const exited = (c: ReturnType<typeof spawn>, name: string) =>
    new Promise<void>((res, rej) => {
      c.once('error', rej);
      c.once('close', (code) => (code === 0 ? res() : rej(new Error(`${name} exited ${code}: ${errors}`))));
    });
  await Promise.all([pipeline(tar.stdout, counter, zstd.stdin), exited(tar, 'tar'), exited(zstd, 'zstd')]);
  progress({ phase: 'compress', percent: 100, doing: `packed ${mib(packed)}` });
}
