/**
 * The install media: the kernel, the Strata installer initramfs and the OS image (a debootstrapped Debian
 * bookworm root file system packed as tar.zst) that the installer writes to a node's disk. Real machines
 * boot the same media as the lab's VMs; the lab only asks for them.
 *
 * Everything is built from Debian packages with Debian's own tools (apt-get download, dpkg-deb, depmod,
 * modprobe --show-depends, debootstrap, cpio, tar, zstd) into a cache directory, so a build needs nothing
 * but the Debian mirror. Each stage (kernel.ts, initramfs.ts, osimage.ts) has a stamp file holding a hash
 * of its inputs; a build whose stamp matches is skipped, which makes a build idempotent and cheap to call
 * before every run.
 *
 * Needs root (debootstrap, mknod, chroot). Shaped as plain functions over paths so that tests and the
 * `strata lab` command can both call `ensureInstallMedia()` and then read `mediaPaths()`.
 *
 * Long work reports progress (`BuildProgress`: stage, percent, what it is doing now). No tool ever writes to
 * this process's stdout: every command's output is piped, parsed for progress (debootstrap's `I:` lines,
 * bytes through the compressor) and kept in a log, so the result channel of `buildInstallMedia` cannot be
 * corrupted by a tool (a first run once died parsing debootstrap's "I: Retrieving" as the JSON manifest).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initramfsStage } from './initramfs.ts';
import { kernelStage } from './kernel.ts';
import { osImageStage, rootfsStage } from './osimage.ts';
import {
  type BuildOptions,
  type BuildProgress,
  DEFAULT_CACHE_DIR,
  DEFAULT_IMAGE_SANITY,
  DEFAULT_MIRROR,
  type MediaManifest,
  type MediaPaths,
  type MediaStage,
  mediaPaths,
} from './paths.ts';
import { cachedSha256, type Progress } from './tools.ts';

export { INITRAMFS_MODULES } from './initramfs.ts';
export { moduleLoadOrder, resolveKernelPackage } from './kernel.ts';
export { missingPackages, OS_PACKAGES } from './osimage.ts';
export * from './paths.ts';
export { stopRunningTools } from './tools.ts';

/** Builds whatever is out of date and returns the paths; writes the manifest. */
export async function ensureInstallMedia(
  opts: BuildOptions = {},
): Promise<{ paths: MediaPaths; manifest: MediaManifest }> {
  const cacheDir = resolve(opts.cacheDir ?? DEFAULT_CACHE_DIR);
  const mirror = opts.mirror ?? DEFAULT_MIRROR;
  const log = opts.log ?? ((l: string) => process.stderr.write(`[build-assets] ${l}\n`));
  const only = new Set(opts.only ?? ['kernel', 'initramfs', 'rootfs', 'osimage']);
  const report = opts.progress ?? (() => {});
  const progressOf =
    (stage: MediaStage): Progress =>
    (p) =>
      report({ stage, ...p });
  mkdirSync(cacheDir, { recursive: true });
  if (opts.force) {
    for (const s of ['kernel/stamp', 'initramfs.stamp', 'rootfs.stamp', 'osimage.stamp']) {
      rmSync(join(cacheDir, s), { force: true });
    }
  }
  const paths = mediaPaths(cacheDir);
  const durationsMs: Record<string, number> = {};
  const timed = async <T>(name: MediaStage, f: (p: Progress) => Promise<T>): Promise<T> => {
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
  const files: MediaManifest['files'] = {};
  for (const [name, path] of Object.entries({
    kernel: paths.kernel,
    initramfs: paths.initramfs,
    osImage: paths.osImage,
  })) {
    if (existsSync(path)) files[name] = { path, bytes: statSync(path).size, sha256: cachedSha256(path) };
  }
  const manifest: MediaManifest = {
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

/** What `scripts/install/build-media.ts` sends its parent over the IPC channel (never over stdout). */
export type BuildMessage =
  | { type: 'log'; line: string }
  | { type: 'progress'; progress: BuildProgress }
  | { type: 'manifest'; manifest: MediaManifest }
  | { type: 'error'; message: string };

/**
 * ensureInstallMedia in a child process (`scripts/install/build-media.ts`), for long-running servers and the
 * CLI: the build runs for minutes and must not block a process serving DHCP. Results and progress come
 * back as framed messages on a Node IPC channel; the child's stdout and stderr are only kept as the
 * tail of an error, so no tool's output can ever be mistaken for the manifest.
 */
export async function buildInstallMedia(
  opts: Omit<BuildOptions, 'log'> & { log?: (line: string) => void; env?: NodeJS.ProcessEnv } = {},
): Promise<{ paths: MediaPaths; manifest: MediaManifest }> {
  const cacheDir = resolve(opts.cacheDir ?? DEFAULT_CACHE_DIR);
  const script = resolve(dirname(fileURLToPath(import.meta.url)), '../../../scripts/install/build-media.ts');
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
  let manifest: MediaManifest | undefined;
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
      `building the install media failed (exit ${code}): ${error ?? 'no manifest'}${tail.trim() ? `\n${tail.trim()}` : ''}`,
    );
  }
  return { paths: mediaPaths(cacheDir), manifest };
}
