/**
 * Builds boot media: a hybrid ISO (boots as a CD and as a USB disk) and a USB disk image, each carrying
 * iPXE for BIOS and for x86-64 UEFI plus the iPXE script of src/media/script.ts, from Debian's packages.
 *
 * How the script gets in, without patching or rebuilding a binary: both iPXE images load it as a file.
 * - BIOS: ISOLINUX (CD) or SYSLINUX (USB) loads `ipxe.lkrn` with the script as its initrd; iPXE runs an
 *   initrd that is a script as its first image.
 * - UEFI: `EFI/BOOT/BOOTX64.EFI` is `ipxe.efi`, and iPXE's EFI build runs `autoexec.ipxe` from the root of
 *   the filesystem it was loaded from (the ISO's El Torito FAT image, or the stick's EFI system partition).
 * No GRUB is needed in between. Measured on Debian bookworm: its ipxe (1.0.0+git-20190125) has neither
 * the EFI autoexec nor an EFI command line, so under UEFI it could only run what a DHCP server tells it.
 * That is why the iPXE binaries for media come from Debian's current ipxe package (trixie's
 * 1.21.1+git20250501, which does both), fetched with apt by scripts/media-ipxe.sh into the machine-wide
 * cache `/var/cache/strata/ipxe-media/` (apt checks it against the signed archive index); the bootloaders
 * and tools (isolinux, syslinux, mtools, dosfstools, xorriso, fdisk) are bookworm's.
 *
 * Layouts. ISO: xorriso with the isohybrid MBR from isolinux, El Torito BIOS (isolinux.bin) and EFI (a
 * FAT image) entries, and a GPT entry for the EFI image so firmware finds it on a stick too. USB: an MBR
 * disk with one bootable FAT partition of type EF (the EFI system partition) holding both iPXEs, with
 * SYSLINUX installed in it and syslinux's MBR code in front: BIOS boots MBR → SYSLINUX → ipxe.lkrn, UEFI
 * boots EFI/BOOT/BOOTX64.EFI. Everything is made on image files with mtools and `--offset`, so building
 * needs no loop device and no root.
 *
 * Output is built in a temporary directory beside the target and renamed into place at the end, so a
 * failure (a missing tool, a full disk) leaves no partial file at the output path.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import {
  access,
  constants,
  copyFile,
  mkdir,
  mkdtemp,
  open,
  readFile,
  rename,
  rm,
  stat,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { basename, delimiter, dirname, join } from 'node:path';

export type MediaFormat = 'iso' | 'usb';

/** Where scripts/media-ipxe.sh puts the iPXE binaries for media. */
export const IPXE_MEDIA_DIR =
  process.env.STRATA_MEDIA_IPXE_DIR ?? '/var/cache/strata/ipxe-media/current/usr/lib/ipxe';

const FILES = {
  isolinux: '/usr/lib/ISOLINUX/isolinux.bin',
  isohdpfx: '/usr/lib/ISOLINUX/isohdpfx.bin',
  ldlinux: '/usr/lib/syslinux/modules/bios/ldlinux.c32',
  mbr: '/usr/lib/syslinux/mbr/mbr.bin',
};
/** Tool → the Debian package that has it. */
const TOOLS: Record<string, string> = {
  xorriso: 'xorriso',
  'mkfs.vfat': 'dosfstools',
  mmd: 'mtools',
  mcopy: 'mtools',
  syslinux: 'syslinux',
  sfdisk: 'fdisk',
};
const FILE_PACKAGES: Record<string, string> = {
  isolinux: 'isolinux',
  isohdpfx: 'isolinux',
  ldlinux: 'syslinux-common',
  mbr: 'syslinux-common',
};

/** Size of the USB image and of its EFI system partition's offset. */
const USB_MIB = 16;
const PART_START = 2048;

/** Something the build needs is not installed; the message names the package and the fix. */
export class MediaDependencyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MediaDependencyError';
  }
}

/** The output cannot be written; the message names the path and why. */
export class MediaOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MediaOutputError';
  }
}

export interface MediaProgress {
  format: MediaFormat;
  /** 0..100 over the whole build of this format. */
  percent: number;
  doing: string;
}

export interface BuildOptions {
  script: string;
  format: MediaFormat;
  /** The image file to write. */
  out: string;
  /** PATH to find the tools in (default: this process's). */
  path?: string;
  ipxeDir?: string;
  onProgress?: (p: MediaProgress) => void;
}

export interface BuiltMedia {
  format: MediaFormat;
  path: string;
  size: number;
  sha256: string;
}

function which(tool: string, path: string): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, tool);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Every missing tool and file, as one error naming the packages and the fix; nothing when all are there. */
export function checkDependencies(
  format: MediaFormat,
  path = process.env.PATH ?? '',
  ipxeDir = IPXE_MEDIA_DIR,
) {
  const missing: string[] = [];
  const tools =
    format === 'iso'
      ? ['xorriso', 'mkfs.vfat', 'mmd', 'mcopy']
      : ['mkfs.vfat', 'mmd', 'mcopy', 'syslinux', 'sfdisk'];
  for (const t of tools) if (!which(t, path)) missing.push(`${t} (Debian package ${TOOLS[t]})`);
  const files =
    format === 'iso' ? (['isolinux', 'isohdpfx', 'ldlinux'] as const) : (['ldlinux', 'mbr'] as const);
  for (const f of files)
    if (!existsSync(FILES[f])) missing.push(`${FILES[f]} (Debian package ${FILE_PACKAGES[f]})`);
  for (const f of ['ipxe.lkrn', 'ipxe.efi'])
    if (!existsSync(join(ipxeDir, f)))
      missing.push(`${join(ipxeDir, f)} (iPXE for media: scripts/media-ipxe.sh)`);
  if (missing.length)
    throw new MediaDependencyError(
      `cannot build ${format} media, missing: ${missing.join(', ')}; install them with: bash scripts/setup.sh`,
    );
}

function runTool(cmd: string, args: string[], path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { env: { ...process.env, PATH: path, MTOOLS_SKIP_CHECK: '1' }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
        else resolve(stdout);
      },
    );
  });
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** A temporary directory beside `out`, or an error saying why `out` cannot be written. */
async function workDirFor(out: string): Promise<string> {
  const dir = dirname(out);
  try {
    const st = await stat(out).catch(() => undefined);
    if (st?.isDirectory()) throw new MediaOutputError(`output ${out} is a directory; give a file name`);
    await access(dir, constants.W_OK);
    return await mkdtemp(join(dir, `.${basename(out)}.partial-`));
  } catch (e) {
    if (e instanceof MediaOutputError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'its directory does not exist'
        : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
          ? 'its directory is not writable'
          : (e as Error).message;
    throw new MediaOutputError(`cannot write output ${out}: ${why}`);
  }
}

/** Builds one image at `o.out` (replacing it only when the whole build succeeded). */
export async function buildMedia(o: BuildOptions): Promise<BuiltMedia> {
  const path = o.path ?? process.env.PATH ?? '';
  const ipxe = o.ipxeDir ?? IPXE_MEDIA_DIR;
  const progress = (percent: number, doing: string) => o.onProgress?.({ format: o.format, percent, doing });
  progress(0, 'checking tools');
  checkDependencies(o.format, path, ipxe);
  const work = await workDirFor(o.out);
  try {
    const script = join(work, 'autoexec.ipxe');
    await writeFile(script, o.script);
    const image = join(work, o.format === 'iso' ? 'media.iso' : 'media.img');
    if (o.format === 'iso') await buildIso(work, script, image, ipxe, path, progress);
    else await buildUsb(work, script, image, ipxe, path, progress);
    progress(90, 'checksum');
    const sha256 = await sha256File(image);
    const { size } = await stat(image);
    await rename(image, o.out).catch((e: Error) => {
      throw new MediaOutputError(`cannot write output ${o.out}: ${e.message}`);
    });
    progress(100, 'done');
    return { format: o.format, path: o.out, size, sha256 };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

type Progress = (percent: number, doing: string) => void;

/** A FAT filesystem (in `img` at byte `offset`) with iPXE for UEFI and the script as autoexec.ipxe. */
async function fillEsp(img: string, offset: number, script: string, ipxe: string, path: string) {
  const at = offset ? `${img}@@${offset}` : img;
  await runTool('mmd', ['-i', at, '::/EFI', '::/EFI/BOOT'], path);
  await runTool('mcopy', ['-i', at, join(ipxe, 'ipxe.efi'), '::/EFI/BOOT/BOOTX64.EFI'], path);
  await runTool('mcopy', ['-i', at, script, '::/autoexec.ipxe'], path);
}

const syslinuxCfg = (dir: string) =>
  `DEFAULT strata\nPROMPT 0\nTIMEOUT 0\nLABEL strata\n  KERNEL ${dir}/ipxe.lkrn\n  INITRD ${dir}/autoexec.ipxe\n`;

async function buildIso(
  work: string,
  script: string,
  image: string,
  ipxe: string,
  path: string,
  progress: Progress,
) {
  progress(10, 'EFI boot image');
  const root = join(work, 'iso');
  await mkdir(join(root, 'isolinux'), { recursive: true });
  await mkdir(join(root, 'boot'), { recursive: true });
  const efi = join(root, 'boot', 'efi.img');
  await runTool('mkfs.vfat', ['-C', '-n', 'STRATA_EFI', efi, '2048'], path);
  await fillEsp(efi, 0, script, ipxe, path);
  progress(40, 'BIOS boot files');
  await copyFile(FILES.isolinux, join(root, 'isolinux', 'isolinux.bin'));
  await copyFile(FILES.ldlinux, join(root, 'isolinux', 'ldlinux.c32'));
  await copyFile(join(ipxe, 'ipxe.lkrn'), join(root, 'boot', 'ipxe.lkrn'));
  await copyFile(script, join(root, 'boot', 'autoexec.ipxe'));
  await writeFile(join(root, 'isolinux', 'isolinux.cfg'), syslinuxCfg('/boot'));
  progress(60, 'hybrid ISO');
  await runTool(
    'xorriso',
    [
      '-as',
      'mkisofs',
      '-quiet',
      '-o',
      image,
      '-V',
      'STRATA_BOOT',
      '-isohybrid-mbr',
      FILES.isohdpfx,
      '-c',
      'isolinux/boot.cat',
      '-b',
      'isolinux/isolinux.bin',
      '-no-emul-boot',
      '-boot-load-size',
      '4',
      '-boot-info-table',
      '-eltorito-alt-boot',
      '-e',
      'boot/efi.img',
      '-no-emul-boot',
      '-isohybrid-gpt-basdat',
      root,
    ],
    path,
  );
}

async function buildUsb(
  work: string,
  script: string,
  image: string,
  ipxe: string,
  path: string,
  progress: Progress,
) {
  progress(10, 'partition table');
  await writeFile(image, '');
  await truncate(image, USB_MIB * 1024 * 1024);
  await sfdisk(image, path);
  progress(25, 'EFI system partition');
  const offset = PART_START * 512;
  const sizeKiB = USB_MIB * 1024 - PART_START / 2;
  await runTool('mkfs.vfat', ['--offset', String(PART_START), '-n', 'STRATA', image, String(sizeKiB)], path);
  await fillEsp(image, offset, script, ipxe, path);
  progress(55, 'BIOS boot path');
  const at = `${image}@@${offset}`;
  await runTool('mmd', ['-i', at, '::/syslinux'], path);
  await runTool('mcopy', ['-i', at, join(ipxe, 'ipxe.lkrn'), '::/ipxe.lkrn'], path);
  const cfg = join(work, 'syslinux.cfg');
  await writeFile(cfg, syslinuxCfg(''));
  await runTool('mcopy', ['-i', at, cfg, '::/syslinux/syslinux.cfg'], path);
  await runTool(
    'syslinux',
    ['--offset', String(offset), '--directory', '/syslinux', '--install', image],
    path,
  );
  progress(75, 'MBR boot code');
  // syslinux's MBR code: the first 440 bytes, before the disk signature and the partition table
  const code = (await readFile(FILES.mbr)).subarray(0, 440);
  const fd = await open(image, 'r+');
  try {
    await fd.write(code, 0, code.length, 0);
  } finally {
    await fd.close();
  }
}

function sfdisk(image: string, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'sfdisk',
      ['-q', image],
      { env: { ...process.env, PATH: path } },
      (err, _o, stderr) =>
        err ? reject(new Error(`sfdisk ${image}: ${stderr.trim() || err.message}`)) : resolve(),
    );
    child.stdin?.end(`label: dos\nstart=${PART_START}, type=ef, bootable\n`);
  });
}
