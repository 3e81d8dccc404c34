/**
 * Lab boot assets: the Debian kernel, the Strata installer initramfs and the OS image (a debootstrapped
 * Debian bookworm root file system packed as tar.zst) that the installer writes to a node's disk.
 *
 * Everything is built from Debian packages with Debian's own tools (apt-get download, dpkg-deb, depmod,
 * modprobe --show-depends, debootstrap, cpio, tar, zstd) into a cache directory, so a build needs nothing
 * but the Debian mirror. Each asset has a stamp file holding a hash of its inputs; a build whose stamp
 * matches is skipped, which makes `build-assets` idempotent and cheap to call before every lab run.
 * The debootstrap is the slow part (minutes); it is kept apart from the packing step so that changing the
 * image's configuration does not download the packages again.
 *
 * Needs root (debootstrap, mknod, chroot). Shaped as plain functions over paths so that tests and the
 * `strata lab` command can both call `ensureLabAssets()` and then read `labAssetPaths()`.
 */

import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Bump when the build logic changes in a way that must invalidate cached assets. */
const BUILD_VERSION = 3;

/**
 * Machine-wide, so every checkout and CI clone on this machine shares one debootstrap (minutes) instead of
 * redoing it; STRATA_LAB_CACHE moves it.
 */
export const DEFAULT_CACHE_DIR = resolve(process.env.STRATA_LAB_CACHE ?? '/var/cache/strata/lab');
export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
const INSTALL_SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../install');

/** Modules the installer initramfs loads (with their dependencies), in this order. */
export const INITRAMFS_MODULES = [
  'virtio_pci',
  'virtio_net',
  'virtio_blk',
  'virtio_scsi',
  'sd_mod',
  'e1000',
  'e1000e',
  'crc32c_generic',
  'ext4',
  'nls_cp437',
  'nls_ascii',
  'nls_utf8',
  'vfat',
  'efivarfs',
];

/** Host binaries copied (with their shared libraries) into the initramfs; busybox lacks them. */
const INITRAMFS_HOST_BINARIES = [
  '/usr/sbin/sfdisk',
  '/usr/sbin/mke2fs',
  '/usr/sbin/mkfs.fat',
  '/usr/bin/tar',
  '/usr/bin/zstd',
  '/usr/sbin/blkid',
];

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

export interface LabAssetPaths {
  cacheDir: string;
  /** Kernel image for the installer (`-kernel`, or served over HTTP for iPXE). */
  kernel: string;
  /** Strata installer initramfs (cpio newc, gzip). */
  initramfs: string;
  /** The OS image the installer downloads: a tar.zst of the root file system. */
  osImage: string;
  /** The unpacked debootstrapped root file system (the source of osImage). */
  rootfsDir: string;
  /** JSON manifest written after a build: versions, sizes, sha256. */
  manifest: string;
}

export function labAssetPaths(cacheDir = DEFAULT_CACHE_DIR): LabAssetPaths {
  return {
    cacheDir,
    kernel: join(cacheDir, 'vmlinuz'),
    initramfs: join(cacheDir, 'strata-installer.cpio.gz'),
    osImage: join(cacheDir, 'debian-bookworm-amd64.tar.zst'),
    rootfsDir: join(cacheDir, 'rootfs'),
    manifest: join(cacheDir, 'assets.json'),
  };
}

export interface BuildOptions {
  cacheDir?: string;
  mirror?: string;
  /** Rebuild even when stamps match. */
  force?: boolean;
  /** Only these stages (default all). */
  only?: Array<'kernel' | 'initramfs' | 'rootfs' | 'osimage'>;
  log?: (line: string) => void;
}

export interface AssetManifest {
  kernelPackage: string;
  kernelVersion: string;
  files: Record<string, { path: string; bytes: number; sha256: string }>;
  packagesMissing: string[];
  durationsMs: Record<string, number>;
}

function run(cmd: string, args: string[], opts: { cwd?: string; input?: string | Buffer } = {}): string {
  return execFileSync(cmd, args, {
    cwd: opts.cwd,
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
}

function sh(script: string, cwd?: string): string {
  return run('/bin/sh', ['-euc', script], { cwd });
}

function hashOf(...parts: Array<string | Buffer>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

function fileSha256(path: string): string {
  return sh(`sha256sum '${path}'`).split(' ')[0]!;
}

/** sha256 of a file, cached in `<file>.sha256` next to it and reused while size and mtime match. */
function cachedSha256(path: string): string {
  const st = statSync(path);
  const key = `${st.size} ${st.mtimeMs}`;
  const cache = path + '.sha256';
  if (existsSync(cache)) {
    const [sum, ...rest] = readFileSync(cache, 'utf8').trim().split(' ');
    if (sum && rest.join(' ') === key) return sum;
  }
  const sum = fileSha256(path);
  writeFileSync(cache, `${sum} ${key}\n`);
  return sum;
}

function stampOk(stampFile: string, want: string, outputs: string[]): boolean {
  if (!existsSync(stampFile)) return false;
  if (readFileSync(stampFile, 'utf8').trim() !== want) return false;
  return outputs.every((o) => existsSync(o));
}

/** The kernel package linux-image-amd64 depends on, e.g. linux-image-6.1.0-56-amd64. */
export function resolveKernelPackage(): string {
  const out = run('apt-cache', ['depends', '--important', 'linux-image-amd64']);
  const m = /Depends:\s*(linux-image-[0-9][^\s]*-amd64)/.exec(out);
  if (!m) throw new Error('cannot resolve the kernel package linux-image-amd64 depends on:\n' + out);
  return m[1]!;
}

function kernelStage(cacheDir: string, log: (l: string) => void): { pkg: string; version: string } {
  const paths = labAssetPaths(cacheDir);
  const pkg = resolveKernelPackage();
  const dir = join(cacheDir, 'kernel');
  const root = join(dir, 'root');
  const stamp = join(dir, 'stamp');
  const want = hashOf(String(BUILD_VERSION), pkg);
  if (stampOk(stamp, want, [paths.kernel, root])) {
    log(`kernel: ${pkg} up to date`);
    return { pkg, version: kernelVersionIn(root) };
  }
  log(`kernel: downloading ${pkg}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  run('apt-get', ['download', pkg], { cwd: dir });
  const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error('apt-get download produced no .deb');
  run('dpkg-deb', ['-x', join(dir, deb), root]);
  rmSync(join(dir, deb));
  const version = kernelVersionIn(root);
  run('depmod', ['-b', root, version]);
  copyFileSync(join(root, 'boot', `vmlinuz-${version}`), paths.kernel);
  writeFileSync(stamp, want + '\n');
  return { pkg, version };
}

function kernelVersionIn(root: string): string {
  const v = readdirSync(join(root, 'lib', 'modules'))[0];
  if (!v) throw new Error(`no kernel modules under ${root}`);
  return v;
}

/** Ordered, de-duplicated module files (relative to root) for modprobe's dependency walk. */
export function moduleLoadOrder(root: string, version: string, modules: string[]): string[] {
  const seen = new Set<string>();
  const order: string[] = [];
  for (const m of modules) {
    let out: string;
    try {
      out = run('modprobe', ['-d', root, '-S', version, '--show-depends', m]);
    } catch {
      continue; // not a module in this kernel (built in, or absent): nothing to load
    }
    for (const line of out.split('\n')) {
      const mm = /^insmod\s+(\S+)/.exec(line.trim());
      if (!mm) continue;
      const rel = mm[1]!.startsWith(root) ? mm[1]!.slice(root.length).replace(/^\/+/, '') : mm[1]!;
      if (!seen.has(rel)) {
        seen.add(rel);
        order.push(rel);
      }
    }
  }
  return order;
}

/** Shared libraries a dynamically linked binary needs (absolute paths), per ldd. */
function sharedLibraries(binary: string): string[] {
  let out: string;
  try {
    out = run('ldd', [binary]);
  } catch {
    return []; // static
  }
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

/** Copies a host file into a staging root at the same path, following symlinks for the content. */
function copyIntoRoot(staging: string, path: string): void {
  const dest = join(staging, path);
  mkdirSync(dirname(dest), { recursive: true });
  if (existsSync(dest)) return;
  if (lstatSync(path).isSymbolicLink()) {
    const real = realpathSync(path);
    copyIntoRoot(staging, real);
    symlinkSync(real, dest);
    return;
  }
  copyFileSync(path, dest);
  chmodSync(dest, statSync(path).mode & 0o7777);
}

function installSources(): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  for (const f of ['init.sh', 'agent.sh', 'udhcpc.sh']) files[f] = readFileSync(join(INSTALL_SRC, f));
  return files;
}

function initramfsStage(cacheDir: string, kernelVersion: string, log: (l: string) => void): void {
  const paths = labAssetPaths(cacheDir);
  const kroot = join(cacheDir, 'kernel', 'root');
  const src = installSources();
  const stamp = join(cacheDir, 'initramfs.stamp');
  const busybox = '/bin/busybox';
  const want = hashOf(
    String(BUILD_VERSION),
    kernelVersion,
    INITRAMFS_MODULES.join(','),
    INITRAMFS_HOST_BINARIES.join(','),
    readFileSync(busybox),
    ...Object.entries(src).flat(),
  );
  if (stampOk(stamp, want, [paths.initramfs])) {
    log('initramfs: up to date');
    return;
  }
  log('initramfs: building');
  const staging = join(cacheDir, 'initramfs-root');
  rmSync(staging, { recursive: true, force: true });
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc/strata', 'proc', 'sys', 'dev', 'tmp', 'run']) {
    mkdirSync(join(staging, d), { recursive: true });
  }
  for (const d of ['mnt', 'target', 'root', 'var/run', 'usr/share/udhcpc']) {
    mkdirSync(join(staging, d), { recursive: true });
  }
  // busybox and its applets
  copyFileSync(busybox, join(staging, 'bin/busybox'));
  chmodSync(join(staging, 'bin/busybox'), 0o755);
  for (const applet of run(busybox, ['--list-full']).split('\n').filter(Boolean)) {
    const dest = join(staging, applet);
    if (existsSync(dest) || applet === 'bin/busybox') continue;
    mkdirSync(dirname(dest), { recursive: true });
    symlinkSync('/bin/busybox', dest);
  }
  // disk tools busybox does not have (ext4, GPT-capable sfdisk, FAT, GNU tar with xattrs, zstd)
  for (const bin of INITRAMFS_HOST_BINARIES) {
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin']) {
      rmSync(join(staging, d, basename(bin)), { force: true }); // a busybox applet of the same name
    }
    copyIntoRoot(staging, bin);
    for (const lib of sharedLibraries(bin)) copyIntoRoot(staging, lib);
  }
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin'])
    rmSync(join(staging, d, 'mkfs.ext4'), { force: true });
  symlinkSync('mke2fs', join(staging, 'usr/sbin/mkfs.ext4'));
  copyIntoRoot(staging, '/etc/mke2fs.conf');
  // kernel modules, load order computed here so /init just insmods a list
  const order = moduleLoadOrder(kroot, kernelVersion, INITRAMFS_MODULES);
  for (const rel of order) copyIntoRoot(staging, join(kroot, rel));
  const staged = join(staging, kroot);
  const modDest = join(staging, 'lib/modules', kernelVersion);
  mkdirSync(dirname(modDest), { recursive: true });
  // move the copied tree from <staging>/<kroot>/lib/modules/VER to <staging>/lib/modules/VER
  run('cp', ['-a', join(staged, 'lib/modules', kernelVersion), dirname(modDest)]);
  rmSync(join(staging, kroot.split('/')[1]!), { recursive: true, force: true });
  writeFileSync(
    join(staging, 'etc/strata/modules.list'),
    order
      .map((rel) => '/' + rel.replace(/^lib\/modules\/[^/]+\//, `lib/modules/${kernelVersion}/`))
      .join('\n') + '\n',
  );
  // scripts
  writeFileSync(join(staging, 'init'), src['init.sh']!, { mode: 0o755 });
  writeFileSync(join(staging, 'bin/strata-agent'), src['agent.sh']!, { mode: 0o755 });
  writeFileSync(join(staging, 'usr/share/udhcpc/default.script'), src['udhcpc.sh']!, { mode: 0o755 });
  writeFileSync(join(staging, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(staging, 'etc/group'), 'root:x:0:\n');
  writeFileSync(join(staging, 'etc/strata/kernel-version'), kernelVersion + '\n');
  sh(`mknod -m 600 '${staging}/dev/console' c 5 1; mknod -m 666 '${staging}/dev/null' c 1 3`);
  // cpio newc, root-owned, sorted for reproducibility
  const tmp = paths.initramfs + '.tmp';
  sh(
    `find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet | gzip -9 > '${tmp}'`,
    staging,
  );
  run('mv', [tmp, paths.initramfs]);
  rmSync(staging, { recursive: true, force: true });
  writeFileSync(stamp, want + '\n');
}

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

function rootfsStage(cacheDir: string, mirror: string, log: (l: string) => void): string[] {
  const paths = labAssetPaths(cacheDir);
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
  execFileSync(
    'debootstrap',
    ['--variant=minbase', `--include=${pkgs.join(',')}`, 'bookworm', paths.rootfsDir, mirror],
    { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } },
  );
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

function osImageStage(cacheDir: string, log: (l: string) => void): void {
  const paths = labAssetPaths(cacheDir);
  const stamp = join(cacheDir, 'osimage.stamp');
  const rootStamp = readFileSync(join(cacheDir, 'rootfs.stamp'), 'utf8');
  const want = hashOf(String(BUILD_VERSION), rootStamp, configureRootfs.toString());
  if (stampOk(stamp, want, [paths.osImage])) {
    log('os image: up to date');
    return;
  }
  log('os image: configuring and packing tar.zst');
  configureRootfs(paths.rootfsDir);
  const tmp = paths.osImage + '.tmp';
  sh(
    `tar --numeric-owner --xattrs --xattrs-include='*' --one-file-system -C '${paths.rootfsDir}' -cf - . | zstd -q -T0 -10 -o '${tmp}' -f`,
  );
  const bytes = statSync(tmp).size;
  const rootfsMiB = Number(sh(`du -sm --one-file-system '${paths.rootfsDir}' | cut -f1`).trim());
  log(`os image: rootfs ${rootfsMiB} MiB, image ${(bytes / 1048576).toFixed(1)} MiB`);
  // sanity: a minbase + kernel + systemd + grub rootfs is a few hundred MiB; far outside means a broken build
  if (rootfsMiB < 200 || rootfsMiB > 4096 || bytes < 30 * 1048576) {
    throw new Error(`os image size not sane: rootfs ${rootfsMiB} MiB, image ${bytes} bytes`);
  }
  run('mv', [tmp, paths.osImage]);
  writeFileSync(stamp, want + '\n');
}

/** Builds whatever is out of date and returns the paths; writes the manifest. */
export function ensureLabAssets(opts: BuildOptions = {}): { paths: LabAssetPaths; manifest: AssetManifest } {
  const cacheDir = resolve(opts.cacheDir ?? DEFAULT_CACHE_DIR);
  const mirror = opts.mirror ?? DEFAULT_MIRROR;
  const log = opts.log ?? ((l: string) => process.stderr.write(`[build-assets] ${l}\n`));
  const only = new Set(opts.only ?? ['kernel', 'initramfs', 'rootfs', 'osimage']);
  mkdirSync(cacheDir, { recursive: true });
  if (opts.force) {
    for (const s of ['kernel/stamp', 'initramfs.stamp', 'rootfs.stamp', 'osimage.stamp']) {
      rmSync(join(cacheDir, s), { force: true });
    }
  }
  const paths = labAssetPaths(cacheDir);
  const durationsMs: Record<string, number> = {};
  const timed = <T>(name: string, f: () => T): T => {
    const t0 = Date.now();
    const r = f();
    durationsMs[name] = Date.now() - t0;
    return r;
  };
  let kernel = { pkg: '', version: '' };
  if (only.has('kernel') || only.has('initramfs')) kernel = timed('kernel', () => kernelStage(cacheDir, log));
  if (only.has('initramfs')) timed('initramfs', () => initramfsStage(cacheDir, kernel.version, log));
  let packagesMissing: string[] = [];
  if (only.has('rootfs') || only.has('osimage')) {
    packagesMissing = timed('rootfs', () => rootfsStage(cacheDir, mirror, log));
  }
  if (only.has('osimage')) timed('osimage', () => osImageStage(cacheDir, log));
  const files: AssetManifest['files'] = {};
  for (const [name, path] of Object.entries({
    kernel: paths.kernel,
    initramfs: paths.initramfs,
    osImage: paths.osImage,
  })) {
    if (existsSync(path)) files[name] = { path, bytes: statSync(path).size, sha256: cachedSha256(path) };
  }
  const manifest: AssetManifest = {
    kernelPackage: kernel.pkg,
    kernelVersion: kernel.version,
    files,
    packagesMissing,
    durationsMs,
  };
  writeFileSync(paths.manifest, JSON.stringify(manifest, null, 2) + '\n');
  for (const [name, f] of Object.entries(files)) {
    log(`${name}: ${basename(f.path)} ${(f.bytes / 1048576).toFixed(1)} MiB`);
  }
  return { paths, manifest };
}

/**
 * ensureLabAssets in a child process (`scripts/lab/build-assets.ts`), for long-running servers: the
 * build is synchronous and a debootstrap takes minutes, which must not block a process serving DHCP.
 */
export async function buildLabAssets(
  opts: Omit<BuildOptions, 'log'> & { log?: (line: string) => void } = {},
): Promise<{ paths: LabAssetPaths; manifest: AssetManifest }> {
  const cacheDir = resolve(opts.cacheDir ?? DEFAULT_CACHE_DIR);
  const script = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/lab/build-assets.ts');
  const args = [script, '--cache-dir', cacheDir];
  if (opts.mirror) args.push('--mirror', opts.mirror);
  if (opts.force) args.push('--force');
  if (opts.only) args.push('--only', opts.only.join(','));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    const lines = err.split('\n');
    err = lines.pop()!;
    for (const l of lines) opts.log?.(l.replace(/^\[build-assets\] /, ''));
  });
  const code = await new Promise<number | null>((r) => child.on('close', r));
  if (code !== 0) throw new Error(`build-assets exited ${code}: ${err.slice(-2000)}`);
  return { paths: labAssetPaths(cacheDir), manifest: JSON.parse(out) as AssetManifest };
}
