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
 *
 * Long work reports progress (`BuildProgress`: stage, percent, what it is doing now). No tool ever writes to
 * this process's stdout: every command's output is piped, parsed for progress (debootstrap's `I:` lines,
 * bytes through the compressor) and kept in a log, so the result channel of `buildLabAssets` cannot be
 * corrupted by a tool (a first run once died parsing debootstrap's "I: Retrieving" as the JSON manifest).
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
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
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { DEBOOTSTRAP_PACKAGES_ESTIMATE, DebootstrapProgress } from './debootstrap-progress.ts';

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

export type AssetStage = 'kernel' | 'initramfs' | 'rootfs' | 'osimage';

/** Where a build is: one stage, how far (0..100 when known), a coarse phase and what it is doing now. */
export interface BuildProgress {
  stage: AssetStage;
  percent?: number;
  /** Changes a few times per stage (plain output prints a line when it does). */
  phase: string;
  doing: string;
  done?: boolean;
}

/** The OS image's size check: far outside these bounds means a broken build. */
export interface ImageSanity {
  minRootfsMiB: number;
  maxRootfsMiB: number;
  minImageMiB: number;
}

/** A minbase + kernel + systemd + grub rootfs is a few hundred MiB. */
export const DEFAULT_IMAGE_SANITY: ImageSanity = { minRootfsMiB: 200, maxRootfsMiB: 4096, minImageMiB: 30 };

export interface BuildOptions {
  cacheDir?: string;
  mirror?: string;
  /** Rebuild even when stamps match. */
  force?: boolean;
  /** Only these stages (default all). */
  only?: AssetStage[];
  log?: (line: string) => void;
  progress?: (p: BuildProgress) => void;
  /** Bounds of the OS image size check (tests build a tiny image). */
  sanity?: Partial<ImageSanity>;
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

/** The tools running now (debootstrap, tar, zstd...), so an abandoned build can end them. */
const running = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once('close', () => running.delete(child));
  return child;
}

/**
 * Ends the tools of a build in progress (its parent went away, or a signal): a process removes what it
 * started. Each tool runs in a process group of its own, so the whole group goes (debootstrap's wget and
 * dpkg too).
 */
export function stopRunningTools(): void {
  for (const c of running) {
    try {
      if (c.pid) process.kill(-c.pid, 'SIGTERM');
    } catch {
      c.kill('SIGTERM');
    }
  }
}

/**
 * Runs a command without blocking, its stdout and stderr piped (never inherited) and handed over line by
 * line; rejects with the command's last output lines.
 */
function runAsync(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; onLine?: (line: string) => void } = {},
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    track(child);
    const tail: string[] = [];
    const lines = (stream: NodeJS.ReadableStream) => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        buf += d;
        const parts = buf.split(/\r?\n|\r/);
        buf = parts.pop()!;
        for (const l of parts) take(l);
      });
      stream.on('end', () => buf && take(buf));
    };
    const take = (l: string) => {
      tail.push(l);
      if (tail.length > 30) tail.shift();
      opts.onLine?.(l);
    };
    lines(child.stdout);
    lines(child.stderr);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) return resolvePromise();
      reject(
        new Error(
          `${cmd} ${args.join(' ').slice(0, 200)} failed (${signal ?? `exit ${code}`}):\n${tail.join('\n')}`,
        ),
      );
    });
  });
}

type Progress = (p: Omit<BuildProgress, 'stage'>) => void;

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

async function kernelStage(
  cacheDir: string,
  log: (l: string) => void,
  progress: Progress,
): Promise<{ pkg: string; version: string }> {
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
  progress({ phase: 'download', percent: 0, doing: `apt-get download ${pkg}` });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  await runAsync('apt-get', ['download', pkg], {
    cwd: dir,
    onLine: (l) => l.trim() && log(`kernel: ${l.trim()}`),
  });
  progress({ phase: 'unpack', percent: 60, doing: `dpkg-deb -x ${pkg}` });
  const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error('apt-get download produced no .deb');
  run('dpkg-deb', ['-x', join(dir, deb), root]);
  rmSync(join(dir, deb));
  const version = kernelVersionIn(root);
  progress({ phase: 'depmod', percent: 90, doing: `depmod ${version}` });
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

async function initramfsStage(
  cacheDir: string,
  kernelVersion: string,
  log: (l: string) => void,
  progress: Progress,
): Promise<void> {
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
  progress({ phase: 'busybox', percent: 0, doing: 'busybox and its applets' });
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
  progress({ phase: 'tools', percent: 20, doing: 'disk tools and their libraries' });
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
  progress({ phase: 'modules', percent: 40, doing: `kernel modules of ${kernelVersion}` });
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
  progress({ phase: 'pack', percent: 60, doing: 'cpio | gzip -9' });
  await runAsync(
    '/bin/sh',
    [
      '-euc',
      `find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet | gzip -9 > '${tmp}'`,
    ],
    { cwd: staging },
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

async function rootfsStage(
  cacheDir: string,
  mirror: string,
  log: (l: string) => void,
  progress: Progress,
): Promise<string[]> {
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

async function osImageStage(
  cacheDir: string,
  log: (l: string) => void,
  progress: Progress,
  sanity: ImageSanity,
): Promise<void> {
  const paths = labAssetPaths(cacheDir);
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

/** Builds whatever is out of date and returns the paths; writes the manifest. */
export async function ensureLabAssets(
  opts: BuildOptions = {},
): Promise<{ paths: LabAssetPaths; manifest: AssetManifest }> {
  const cacheDir = resolve(opts.cacheDir ?? DEFAULT_CACHE_DIR);
  const mirror = opts.mirror ?? DEFAULT_MIRROR;
  const log = opts.log ?? ((l: string) => process.stderr.write(`[build-assets] ${l}\n`));
  const only = new Set(opts.only ?? ['kernel', 'initramfs', 'rootfs', 'osimage']);
  const report = opts.progress ?? (() => {});
  const progressOf =
    (stage: AssetStage): Progress =>
    (p) =>
      report({ stage, ...p });
  mkdirSync(cacheDir, { recursive: true });
  if (opts.force) {
    for (const s of ['kernel/stamp', 'initramfs.stamp', 'rootfs.stamp', 'osimage.stamp']) {
      rmSync(join(cacheDir, s), { force: true });
    }
  }
  const paths = labAssetPaths(cacheDir);
  const durationsMs: Record<string, number> = {};
  const timed = async <T>(name: AssetStage, f: (p: Progress) => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    const p = progressOf(name);
    p({ phase: 'check', doing: 'checking the cache' });
    const r = await f(p);
    durationsMs[name] = Date.now() - t0;
    p({ phase: 'done', percent: 100, doing: 'ready', done: true });
    return r;
  };
  const sanity = { ...DEFAULT_IMAGE_SANITY, ...opts.sanity };
  let kernel = { pkg: '', version: '' };
  if (only.has('kernel') || only.has('initramfs')) {
    kernel = await timed('kernel', (p) => kernelStage(cacheDir, log, p));
  }
  if (only.has('initramfs'))
    await timed('initramfs', (p) => initramfsStage(cacheDir, kernel.version, log, p));
  let packagesMissing: string[] = [];
  if (only.has('rootfs') || only.has('osimage')) {
    packagesMissing = await timed('rootfs', (p) => rootfsStage(cacheDir, mirror, log, p));
  }
  if (only.has('osimage')) await timed('osimage', (p) => osImageStage(cacheDir, log, p, sanity));
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

/** What `scripts/lab/build-assets.ts` sends its parent over the IPC channel (never over stdout). */
export type BuildMessage =
  | { type: 'log'; line: string }
  | { type: 'progress'; progress: BuildProgress }
  | { type: 'manifest'; manifest: AssetManifest }
  | { type: 'error'; message: string };

/**
 * ensureLabAssets in a child process (`scripts/lab/build-assets.ts`), for long-running servers and the
 * CLI: the build runs for minutes and must not block a process serving DHCP. Results and progress come
 * back as framed messages on a Node IPC channel; the child's stdout and stderr are only kept as the
 * tail of an error, so no tool's output can ever be mistaken for the manifest.
 */
export async function buildLabAssets(
  opts: Omit<BuildOptions, 'log'> & { log?: (line: string) => void; env?: NodeJS.ProcessEnv } = {},
): Promise<{ paths: LabAssetPaths; manifest: AssetManifest }> {
  const cacheDir = resolve(opts.cacheDir ?? DEFAULT_CACHE_DIR);
  const script = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/lab/build-assets.ts');
  const args = [script, '--cache-dir', cacheDir];
  if (opts.mirror) args.push('--mirror', opts.mirror);
  if (opts.force) args.push('--force');
  if (opts.only) args.push('--only', opts.only.join(','));
  if (opts.sanity) args.push('--sanity', JSON.stringify(opts.sanity));
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: opts.env ?? process.env,
  });
  let tail = '';
  for (const s of [child.stdout!, child.stderr!]) {
    s.setEncoding('utf8').on('data', (d: string) => {
      tail = (tail + d).slice(-4000);
    });
  }
  let manifest: AssetManifest | undefined;
  let error: string | undefined;
  child.on('message', (m: BuildMessage) => {
    if (m.type === 'log') opts.log?.(m.line);
    else if (m.type === 'progress') opts.progress?.(m.progress);
    else if (m.type === 'manifest') manifest = m.manifest;
    else if (m.type === 'error') error = m.message;
  });
  const code = await new Promise<number | null>((r) => child.on('close', r));
  if (code !== 0 || !manifest) {
    throw new Error(
      `building the lab assets failed (exit ${code}): ${error ?? 'no manifest'}${tail.trim() ? `\n${tail.trim()}` : ''}`,
    );
  }
  return { paths: labAssetPaths(cacheDir), manifest };
}
