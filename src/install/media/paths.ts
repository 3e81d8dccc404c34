/**
 * Where the install media live and what a build reports: the installer's kernel and initramfs and the OS
 * image, in a machine-wide cache, with the manifest (versions, sizes, sha256) a build writes.
 */
import { join, resolve } from 'node:path';

/** Bump when the build logic changes in a way that must invalidate cached media. */
export const BUILD_VERSION = 3;

/**
 * Machine-wide, so every checkout and CI clone on this machine shares one debootstrap (minutes) instead of
 * redoing it; STRATA_LAB_CACHE moves it.
 */
export const DEFAULT_CACHE_DIR = resolve(process.env.STRATA_LAB_CACHE ?? '/var/cache/strata/lab');
export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
export interface MediaPaths {
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

export function mediaPaths(cacheDir = DEFAULT_CACHE_DIR): MediaPaths {
  return {
    cacheDir,
    kernel: join(cacheDir, 'vmlinuz'),
    initramfs: join(cacheDir, 'strata-installer.cpio.gz'),
    osImage: join(cacheDir, 'debian-bookworm-amd64.tar.zst'),
    rootfsDir: join(cacheDir, 'rootfs'),
    manifest: join(cacheDir, 'assets.json'),
  };
}

export type MediaStage = 'kernel' | 'initramfs' | 'rootfs' | 'osimage';

/** Where a build is: one stage, how far (0..100 when known), a coarse phase and what it is doing now. */
export interface BuildProgress {
  stage: MediaStage;
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
  only?: MediaStage[];
  log?: (line: string) => void;
  progress?: (p: BuildProgress) => void;
  /** Bounds of the OS image size check (tests build a tiny image). */
  sanity?: Partial<ImageSanity>;
}

export interface MediaManifest {
  kernelPackage: string;
  kernelVersion: string;
  files: Record<string, { path: string; bytes: number; sha256: string }>;
  packagesMissing: string[];
  durationsMs: Record<string, number>;
}
