/**
 * The installer's kernel: the Debian kernel package linux-image-amd64 depends on, downloaded and unpacked
 * with apt-get and dpkg-deb (its modules feed the initramfs), and modprobe's load order of the modules the
 * initramfs needs.
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUILD_VERSION, mediaPaths } from './paths.ts';
import { hashOf, type Progress, run, runAsync, stampOk } from './tools.ts';

/** The kernel package linux-image-amd64 depends on, e.g. linux-image-6.1.0-56-amd64. */
export function resolveKernelPackage(): string {
  const out = run('apt-cache', ['depends', '--important', 'linux-image-amd64']);
  const m = /Depends:\s*(linux-image-[0-9][^\s]*-amd64)/.exec(out);
  if (!m) throw new Error('cannot resolve the kernel package linux-image-amd64 depends on:\n' + out);
  return m[1]!;
}

export async function kernelStage(
  cacheDir: string,
  log: (l: string) => void,
  progress: Progress,
): Promise<{ pkg: string; version: string }> {
  const paths = mediaPaths(cacheDir);
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

export function kernelVersionIn(root: string): string {
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
