/**
 * A private containerd (Debian's) for the image tests: its own root, state and sockets in a temporary
 * directory, the CRI plugin off, never the machine's /var/lib/containerd or /run/containerd. `ctr` talks to
 * it through its socket; the process is killed by pid and the directory removed in the suite's `after`.
 * Also the image tests' shared checks: which clients are missing, and the images scripts/build/images.sh
 * builds.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type BuiltImage, readBuiltImages } from '../../src/registry/oci-push.ts';
import type { Cleanup } from './services.ts';

const run = promisify(execFile);

const which = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** Why the image tests cannot run here (a client missing, not root), or undefined. */
export function imageToolsSkipReason(
  tools = ['skopeo', 'containerd', 'ctr', 'runc', 'umoci'],
): string | undefined {
  const missing = tools.filter((t) => !which(t));
  if (missing.length) return `${missing.join(', ')} not installed: run bash scripts/setup.sh`;
  if (process.getuid?.() !== 0) return 'containerd and umoci need root here';
  return undefined;
}

/** Runs scripts/build/images.sh (a no-op once built) and lists its images; undefined when it cannot build. */
export async function builtImages(): Promise<BuiltImage[] | undefined> {
  try {
    const dir = execFileSync('bash', ['scripts/build/images.sh'], { encoding: 'utf8' }).trim();
    return await readBuiltImages(dir);
  } catch {
    return undefined;
  }
}

export interface Containerd {
  dir: string;
  address: string;
  /** `ctr --address SOCK -n strata-test ARGS`; rejects with its stderr. */
  ctr(args: string[], timeoutMs?: number): Promise<{ stdout: string; stderr: string }>;
}

export async function startContainerd(t: Cleanup): Promise<Containerd> {
  const dir = mkdtempSync('/tmp/strata-ctrd-');
  const address = join(dir, 'containerd.sock');
  writeFileSync(
    join(dir, 'config.toml'),
    [
      'version = 2',
      `root = ${JSON.stringify(join(dir, 'root'))}`,
      `state = ${JSON.stringify(join(dir, 'state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(address)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(join(dir, 'ttrpc.sock'))}`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n'),
  );
  const ctr = (args: string[], timeoutMs = 120_000) =>
    run('ctr', ['--address', address, '-n', 'strata-test', ...args], { timeout: timeoutMs });
  const log: Buffer[] = [];
  const child: ChildProcess = spawn('containerd', ['--config', join(dir, 'config.toml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (c: Buffer) => log.push(c));
  child.stderr?.on('data', (c: Buffer) => log.push(c));
  t.after(async () => {
    // Containers a failed test left behind: their shims would outlive containerd, so end them through it.
    const list = await ctr(['tasks', 'ls', '-q'], 10_000).catch(() => ({ stdout: '' }));
    for (const id of list.stdout.split('\n').filter(Boolean)) {
      await ctr(['tasks', 'kill', '-s', 'SIGKILL', id], 10_000).catch(() => {});
      await ctr(['tasks', 'rm', '-f', id], 10_000).catch(() => {});
    }
    const containers = await ctr(['containers', 'ls', '-q'], 10_000).catch(() => ({ stdout: '' }));
    for (const id of containers.stdout.split('\n').filter(Boolean))
      await ctr(['containers', 'rm', id], 10_000).catch(() => {});
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    // Snapshots may still be mounted if a container outlived its test; unmount before removing.
    try {
      execFileSync('sh', ['-c', `grep -o " ${dir}/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (existsSync(address)) {
      try {
        await ctr(['version'], 5_000);
        break;
      } catch {}
    }
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`containerd did not start: ${Buffer.concat(log).toString().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { dir, address, ctr };
}
