/**
 * A real OpenSSH server for tests, inside a network namespace the test created (test/helpers/netns.ts):
 * its own host key and authorized_keys in a temporary directory, no PAM, root login by key only. The
 * namespace's loopback carries the addresses the test asks for, so one sshd answers on many targets. Everything is removed when the test ends.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetnsSet } from './netns.ts';

export interface Sshd {
  /** `ssh-ed25519 AAAA…` of this server. */
  hostKey: string;
  dir: string;
  authorize(publicKey: string): void;
  stop(): void;
}

export function sshdAvailable(): string | undefined {
  if (!existsSync('/usr/sbin/sshd')) return 'OpenSSH server (sshd) is not installed';
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  return undefined;
}

/** A fresh ed25519 key pair in `dir`, as OpenSSH writes it. */
export function keyPair(dir: string, name: string): { privateKey: string; publicKey: string } {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  return {
    privateKey: readFileSync(file, 'utf8'),
    publicKey: readFileSync(`${file}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' '),
  };
}

/** Adds these addresses (/32, on the namespace's loopback) to `ns`: LAN-like targets for one sshd. */
export function addAddresses(set: NetnsSet, ns: string, addresses: string[]): void {
  for (const a of addresses) set.addr(ns, 'lo', `${a}/32`);
}

let madeRunSshd = false;

export async function startSshd(
  t: { after(fn: () => void | Promise<void>): void },
  set: NetnsSet,
  ns: string,
  /**
   * `hostKeyOf`: serve the same host key as this other server (a restarted node keeps its key).
   * `privateRoot`: run sshd (and so everything a session starts) in a mount namespace of its own where
   * /etc and /var/lib are copy-on-write overlays of the machine's and /run is empty, so what a command
   * installs stays on this "node" and never touches the shared machine or the other nodes.
   */
  opts: { port?: number; listen?: string; hostKeyOf?: Sshd; privateRoot?: boolean } = {},
): Promise<Sshd> {
  // sshd needs its privilege separation directory; create it only if missing, and remove only ours.
  if (!existsSync('/run/sshd')) {
    mkdirSync('/run/sshd', { mode: 0o755 });
    madeRunSshd = true;
    process.once('exit', () => {
      if (madeRunSshd) rmSync('/run/sshd', { recursive: true, force: true });
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'seams-sshd-'));
  const host = keyPair(dir, 'host');
  if (opts.hostKeyOf) {
    copyFileSync(join(opts.hostKeyOf.dir, 'host'), join(dir, 'host'));
    host.publicKey = opts.hostKeyOf.hostKey;
  }
  const port = opts.port ?? 22;
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, '');
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      `ListenAddress ${opts.listen ?? '0.0.0.0'}`,
      `HostKey ${join(dir, 'host')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorized}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'MaxStartups 100:30:200',
      'MaxSessions 100',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const sshdArgs = ['-D', '-e', '-f', join(dir, 'sshd_config')];
  let child: ReturnType<NetnsSet['spawn']>;
  if (opts.privateRoot) {
    const cow = (path: string, name: string) => {
      mkdirSync(join(dir, `${name}-upper`));
      mkdirSync(join(dir, `${name}-work`));
      return `mount -t overlay overlay -o lowerdir=${path},upperdir=${dir}/${name}-upper,workdir=${dir}/${name}-work ${path}`;
    };
    const script = [
      'set -e',
      cow('/etc', 'etc'),
      cow('/var/lib', 'varlib'),
      'mount -t tmpfs -o mode=0755 tmpfs /run',
      'mkdir -p /run/sshd',
      `exec /usr/sbin/sshd ${sshdArgs.join(' ')}`,
    ].join('\n');
    child = set.spawn(ns, 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', script]);
  } else child = set.spawn(ns, '/usr/sbin/sshd', sshdArgs);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const stop = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  t.after(stop);
  // Ready once it accepts TCP inside the namespace.
  const end = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${stderr}`);
    const r = await set.exec(ns, 'bash', ['-c', `exec 3<>/dev/tcp/${opts.listen ?? '127.0.0.1'}/${port}`], {
      timeoutMs: 2000,
    });
    if (r.code === 0) break;
    if (Date.now() > end) throw new Error(`sshd did not listen on port ${port}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    hostKey: host.publicKey,
    dir,
    authorize: (publicKey) => writeFileSync(authorized, `${publicKey}\n`, { flag: 'a' }),
    stop,
  };
}
