/**
 * The Strata installer initramfs: busybox and its applets, the disk tools busybox lacks (with their shared
 * libraries), the kernel modules in modprobe's load order, and the installer's scripts (src/install:
 * init.sh, agent.sh, udhcpc.sh), packed as a reproducible cpio newc archive.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { moduleLoadOrder } from './kernel.ts';
import { BUILD_VERSION, mediaPaths } from './paths.ts';
import { hashOf, type Progress, run, runAsync, sh, stampOk } from './tools.ts';

const INSTALL_SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..');

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

export async function initramfsStage(
  cacheDir: string,
  kernelVersion: string,
  log: (l: string) => void,
  progress: Progress,
): Promise<void> {
  const paths = mediaPaths(cacheDir);
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
