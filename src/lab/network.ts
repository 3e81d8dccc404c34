/**
 * The lab's private network: a network namespace (default `strata-lab`) holding a bridge with a private
 * address (10.213.0.1/24 and fd13:213::1/64), one tap per VM, and radvd sending router advertisements on
 * the bridge (without them iPXE waits ~13 s per boot for IPv6; see the lab facts note).
 *
 * Everything lives inside the namespace so that lab DHCP never reaches the machine's own network; only an
 * optional veth "uplink" (10.213.254.1 host side) lets a Strata process in the host namespace serve HTTP
 * to the VMs, routed through the namespace. State (pidfiles, radvd config, network.json) is kept under
 * `<stateDir>/<name>/` so `labDown()` can tear everything down after a crash: it kills the recorded
 * pids, then every process still inside the namespace (`ip netns pids`: by construction only lab
 * processes live there), then deletes the namespace (which deletes the bridge, taps and veth).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPidfiles, isAlive, killPid, killPidfile, run, sleep, tryRun, writePidfile } from './proc.ts';

export const DEFAULT_NETNS = 'strata-lab';
export const DEFAULT_STATE_DIR = resolve(fileURLToPath(import.meta.url), '../../../.strata/lab');

export interface LabNetworkOptions {
  /** Namespace name (also names the state subdirectory). */
  name?: string;
  /** Root for lab state; the network's files go to `<stateDir>/<name>/`. */
  stateDir?: string;
  bridge?: string;
  /** Bridge IPv4 address with prefix. */
  address?: string;
  /** Bridge IPv6 address with prefix; its /64 is advertised by radvd. */
  address6?: string;
  /** Start radvd on the bridge (default true). */
  radvd?: boolean;
  /** veth pair to the host namespace: host side `hostAddress`, routes the lab subnet through it. */
  uplink?: boolean;
  hostAddress?: string;
  nsUplinkAddress?: string;
  /**
   * Drop this percentage of the frames on the bridge, each way (nftables, bridge family, `numgen random`;
   * this kernel has no tc netem): a lossy wire for testing that boot and install survive it.
   */
  lossPercent?: number;
}

export interface LabNetworkInfo {
  name: string;
  bridge: string;
  address: string;
  address6: string;
  subnet: string;
  uplink: { host: string; ns: string; hostIf: string } | undefined;
  dir: string;
}

function subnetOf(cidr: string): string {
  const [ip, len] = cidr.split('/');
  const prefix = Number(len);
  const n = ip!.split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const net = (n & mask) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${prefix}`;
}

export class LabNetwork {
  readonly info: LabNetworkInfo;
  private constructor(info: LabNetworkInfo) {
    this.info = info;
  }
  get name(): string {
    return this.info.name;
  }
  get dir(): string {
    return this.info.dir;
  }

  /** Creates the namespace, bridge, radvd (and uplink). Tears down a leftover of the same name first. */
  static async create(opts: LabNetworkOptions = {}): Promise<LabNetwork> {
    const name = opts.name ?? DEFAULT_NETNS;
    if (!/^[A-Za-z0-9_-]{1,15}$/.test(name)) throw new Error(`bad namespace name ${name}`);
    const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
    const dir = join(stateDir, name);
    await labDown({ name, stateDir });
    mkdirSync(dir, { recursive: true });
    const hostAddr = opts.hostAddress ?? '10.213.254.1/30';
    if (opts.uplink) {
      // two labs may coexist, but not on the same host-side subnet: the route would clash
      const used = await run('ip', ['-4', '-o', 'addr', 'show']);
      if (used.includes(` ${hostAddr} `)) {
        throw new Error(
          `uplink address ${hostAddr} is already in use (another lab?): give this lab other addresses`,
        );
      }
    }
    try {
      return await LabNetwork.setUp(name, dir, opts, hostAddr);
    } catch (e) {
      await labDown({ name, stateDir });
      throw e;
    }
  }

  private static async setUp(name: string, dir: string, opts: LabNetworkOptions, hostAddr: string) {
    const bridge = opts.bridge ?? 'br0';
    const address = opts.address ?? '10.213.0.1/24';
    const address6 = opts.address6 ?? 'fd13:213::1/64';
    const ns = ['-n', name];
    await run('ip', ['netns', 'add', name]);
    await run('ip', [...ns, 'link', 'set', 'lo', 'up']);
    await run('ip', [...ns, 'link', 'add', bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await run('ip', [...ns, 'addr', 'add', address, 'dev', bridge]);
    await run('ip', [...ns, '-6', 'addr', 'add', address6, 'dev', bridge, 'nodad']);
    await run('ip', [...ns, 'link', 'set', bridge, 'up']);
    await run('sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'], { netns: name });
    if (opts.lossPercent) await lossyBridge(name, dir, opts.lossPercent);
    let uplink: LabNetworkInfo['uplink'];
    if (opts.uplink) {
      const nsAddr = opts.nsUplinkAddress ?? '10.213.254.2/30';
      const hostIf = `${name.slice(0, 11)}-up`;
      await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'uplink', 'netns', name]);
      await run('ip', ['addr', 'add', hostAddr, 'dev', hostIf]);
      await run('ip', ['link', 'set', hostIf, 'up']);
      await run('ip', [...ns, 'addr', 'add', nsAddr, 'dev', 'uplink']);
      await run('ip', [...ns, 'link', 'set', 'uplink', 'up']);
      await run('ip', ['route', 'add', subnetOf(address), 'via', nsAddr.split('/')[0]!, 'dev', hostIf]);
      uplink = { host: hostAddr.split('/')[0]!, ns: nsAddr.split('/')[0]!, hostIf };
    }
    const info: LabNetworkInfo = {
      name,
      bridge,
      address,
      address6,
      subnet: subnetOf(address),
      uplink,
      dir,
    };
    writeFileSync(join(dir, 'network.json'), JSON.stringify(info, null, 2) + '\n');
    const net = new LabNetwork(info);
    if (opts.radvd ?? true) await net.startRadvd();
    return net;
  }

  /** The bridge's IPv4 address without prefix (the lab's gateway and server address). */
  get gateway(): string {
    return this.info.address.split('/')[0]!;
  }

  /** Creates a tap attached to the bridge, inside the namespace. */
  async addTap(tap: string): Promise<string> {
    if (tap.length > 15) throw new Error(`tap name too long: ${tap}`);
    const ns = ['-n', this.name];
    await tryRun('ip', [...ns, 'link', 'del', tap]);
    await run('ip', [...ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    await run('ip', [...ns, 'link', 'set', tap, 'master', this.info.bridge]);
    await run('ip', [...ns, 'link', 'set', tap, 'up']);
    return tap;
  }

  async removeTap(tap: string): Promise<void> {
    await tryRun('ip', ['-n', this.name, 'link', 'del', tap]);
  }

  /**
   * Starts a long-lived helper inside the namespace, recorded as `<dir>/procs/<id>.pid` (killed by
   * labDown). stdout/stderr go to `<dir>/procs/<id>.log` unless `pipe` is set.
   */
  spawn(id: string, cmd: string, args: string[], opts: { pipe?: boolean } = {}): ChildProcess {
    const procs = join(this.dir, 'procs');
    mkdirSync(procs, { recursive: true });
    const out = opts.pipe ? 'pipe' : openSync(join(procs, `${id}.log`), 'a');
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], {
      stdio: ['ignore', out, out],
      detached: true,
    });
    if (child.pid) writePidfile(join(procs, `${id}.pid`), { pid: child.pid, match: cmd });
    return child;
  }

  async stop(id: string): Promise<void> {
    await killPidfile(join(this.dir, 'procs', `${id}.pid`));
  }

  private async startRadvd(): Promise<void> {
    const prefix6 = this.info.address6.replace(/::[0-9a-f]*\/64$/i, '::/64');
    const conf = join(this.dir, 'radvd.conf');
    writeFileSync(
      conf,
      [
        `interface ${this.info.bridge} {`,
        '  AdvSendAdvert on;',
        '  MinRtrAdvInterval 3;',
        '  MaxRtrAdvInterval 10;',
        '  AdvDefaultLifetime 0;',
        `  prefix ${prefix6} { AdvOnLink on; AdvAutonomous on; };`,
        '};',
        '',
      ].join('\n'),
    );
    const pidfile = join(this.dir, 'radvd.pidfile');
    this.spawn('radvd', 'radvd', ['-n', '-C', conf, '-p', pidfile, '-m', 'stderr']);
    await sleep(200);
  }

  /** Serves DHCPv4 on the bridge with busybox udhcpd, for tests that do not exercise Strata's DHCP. */
  async startTestDhcp(opts: { start?: string; end?: string } = {}): Promise<void> {
    const base = this.gateway.split('.').slice(0, 3).join('.');
    const conf = join(this.dir, 'udhcpd.conf');
    const prefix = Number(this.info.address.split('/')[1]);
    const mask = [24, 16, 8, 0].map((s) => ((0xffffffff << (32 - prefix)) >>> s) & 255).join('.');
    writeFileSync(
      conf,
      [
        `start ${opts.start ?? base + '.100'}`,
        `end ${opts.end ?? base + '.199'}`,
        `interface ${this.info.bridge}`,
        `lease_file ${join(this.dir, 'udhcpd.leases')}`,
        `pidfile ${join(this.dir, 'udhcpd.pidfile')}`,
        `option subnet ${mask}`,
        `option router ${this.gateway}`,
        'option lease 3600',
        '',
      ].join('\n'),
    );
    writeFileSync(join(this.dir, 'udhcpd.leases'), '');
    this.spawn('udhcpd', 'busybox', ['udhcpd', '-f', conf]);
    await sleep(200);
  }

  async destroy(): Promise<void> {
    await labDown({ name: this.name, stateDir: join(this.dir, '..') });
  }
}

/** The namespaces that exist now. */
export async function listNetns(): Promise<string[]> {
  const out = await run('ip', ['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

/**
 * Tears a lab down, whatever state a crash left it in: VMs and helpers from pidfiles, any process still
 * in the namespace, the uplink veth, the namespace. Idempotent.
 */
export async function labDown(
  opts: { name?: string; stateDir?: string; keepFiles?: boolean; purge?: boolean } = {},
): Promise<void> {
  const name = opts.name ?? DEFAULT_NETNS;
  const dir = join(opts.stateDir ?? DEFAULT_STATE_DIR, name);
  // QEMU first (graceful `quit` is not worth it on teardown), then helpers
  for (const pf of findPidfiles(dir)) await killPidfile(pf);
  if ((await listNetns()).includes(name)) {
    const pids = (await run('ip', ['netns', 'pids', name])).split('\n').filter(Boolean).map(Number);
    await Promise.all(pids.map((p) => (isAlive(p) ? killPid(p) : Promise.resolve())));
    await tryRun('ip', ['netns', 'del', name]);
  }
  await tryRun('ip', ['link', 'del', `${name.slice(0, 11)}-up`]);
  if (opts.purge) {
    // `strata lab down`: nothing the lab made stays, disks and logs included
    rmSync(dir, { recursive: true, force: true });
  } else if (!opts.keepFiles && existsSync(dir)) {
    // keep VM disks and serial logs for post-mortem; drop sockets and pidfiles
    for (const pf of findPidfiles(dir)) rmSync(pf, { force: true });
  }
}

/**
 * Frames entering the bridge from a port (prerouting) and leaving the namespace's own stack through it
 * (output) are each dropped with probability `percent`. The table lives in the lab's namespace and goes
 * with it.
 */
async function lossyBridge(netns: string, dir: string, percent: number): Promise<void> {
  if (!Number.isInteger(percent) || percent < 0 || percent > 50) {
    throw new Error(`lossPercent: expected a whole number from 0 to 50, got ${percent}`);
  }
  const rules = [
    'table bridge strata_loss {',
    `  chain pre { type filter hook prerouting priority 0; policy accept; numgen random mod 100 < ${percent} counter drop; }`,
    `  chain out { type filter hook output priority 0; policy accept; numgen random mod 100 < ${percent} counter drop; }`,
    '}',
    '',
  ].join('\n');
  const file = join(dir, 'loss.nft');
  writeFileSync(file, rules);
  await run('nft', ['-f', file], { netns });
}
