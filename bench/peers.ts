/**
 * The servers the benchmarks compare, each started inside a namespace the benchmark made (never the
 * machine's own): Strata's bare DHCP worker (src/dhcp/main.ts), its TFTP server and HTTP boot handler on
 * their own (bench/serve.ts), and the peers users would otherwise pick, from Debian: Kea (kea-dhcp4,
 * memfile lease file), dnsmasq (DHCP or TFTP), tftpd-hpa (in.tftpd) and nginx. Every process is a child of
 * the namespace set, so the set's cleanup kills it; its files live in a directory the caller removes.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { nginxHead } from '../src/boot/http-nginx.ts';
import { currentNetns, type NetnsSet } from '../test/helpers/netns.ts';
import { CLK_TCK, type LineChannel, lineChannel, procStat, REPO, sleep } from './lib.ts';

const NODE = process.execPath;

/** Waits until something in `ns` listens on `port` (UDP or TCP), or throws with the process's stderr. */
export async function listening(
  ns: string,
  proto: 'udp' | 'tcp',
  port: number,
  what: string,
  err: () => string,
) {
  for (let i = 0; i < 200; i++) {
    const out = execFileSync('ip', ['netns', 'exec', ns, 'ss', '-Hln', proto === 'udp' ? '-u' : '-t'], {
      encoding: 'utf8',
    });
    if (out.split('\n').some((l) => new RegExp(`:${port}\\s`).test(l))) return;
    await sleep(50);
  }
  throw new Error(`${what} did not listen on ${proto}/${port}: ${err()}`);
}

function spawnIn(set: NetnsSet, ns: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv) {
  const child = set.spawn(ns, cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(env ? { env } : {}) });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  child.stdout?.resume();
  return { child, stderr: () => stderr };
}

export interface DhcpPool {
  iface: string;
  serverIp: string;
  subnet: string;
  mask: string;
  start: string;
  end: string;
  leaseTime: number;
}

/** Strata's DHCP worker alone (in-memory leases, no events printed). */
export async function strataDhcp(set: NetnsSet, ns: string, p: DhcpPool): Promise<void> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    STRATA_HOST_NETNS: currentNetns(),
    STRATA_LOG_LEVEL: 'error',
  };
  delete env.STRATA_DHCP_ALLOW_HOST_NETNS;
  const s = spawnIn(set, ns, NODE, [join(REPO, 'src/dhcp/main.ts'), '-'], env);
  s.child.stdin?.end(
    JSON.stringify({
      server: {
        interface: p.iface,
        serverIp: p.serverIp,
        mode: 'full',
        subnet: p.subnet,
        ranges: [{ start: p.start, end: p.end }],
        leaseTime: p.leaseTime,
      },
    }),
  );
  await listening(ns, 'udp', 67, 'strata dhcp', s.stderr);
}

/** Kea DHCPv4 with its memfile lease database (a CSV file, written per lease as Kea does by default). */
export async function kea(set: NetnsSet, ns: string, dir: string, p: DhcpPool): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'kea-dhcp4.json');
  writeFileSync(
    conf,
    JSON.stringify({
      Dhcp4: {
        'interfaces-config': { interfaces: [p.iface] },
        'lease-database': {
          type: 'memfile',
          persist: true,
          name: join(dir, 'leases4.csv'),
          'lfc-interval': 0,
        },
        'valid-lifetime': p.leaseTime,
        authoritative: true,
        subnet4: [{ id: 1, subnet: p.subnet, pools: [{ pool: `${p.start} - ${p.end}` }] }],
        loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stderr' }], severity: 'ERROR' }],
      },
    }),
  );
  const env = { ...process.env, KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir };
  const s = spawnIn(set, ns, 'kea-dhcp4', ['-c', conf], env);
  await listening(ns, 'udp', 67, 'kea-dhcp4', s.stderr);
}

/** dnsmasq as a DHCP server only (DNS off), with or without its lease file. */
export async function dnsmasqDhcp(
  set: NetnsSet,
  ns: string,
  dir: string,
  p: DhcpPool,
  extra: string[] = [],
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const s = spawnIn(set, ns, 'dnsmasq', [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--port=0',
    `--interface=${p.iface}`,
    '--bind-interfaces',
    '--user=root',
    `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
    `--dhcp-range=${p.start},${p.end},${p.mask},${p.leaseTime}`,
    '--dhcp-lease-max=1000000',
    '--dhcp-authoritative',
    ...extra,
  ]);
  await listening(ns, 'udp', 67, 'dnsmasq', s.stderr);
}

/** dnsmasq as a TFTP server only (it always listens on port 69). */
export async function dnsmasqTftp(set: NetnsSet, ns: string, dir: string, root: string) {
  const port = 69;
  mkdirSync(dir, { recursive: true });
  const s = spawnIn(set, ns, 'dnsmasq', [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--port=0',
    '--user=root',
    `--pid-file=${join(dir, 'dnsmasq-tftp.pid')}`,
    '--enable-tftp',
    `--tftp-root=${root}`,
    '--tftp-max=5000',
  ]);
  await listening(ns, 'udp', port, 'dnsmasq tftp', s.stderr);
}

/** tftpd-hpa (in.tftpd) in the foreground, serving `root` read-only. */
export async function tftpdHpa(set: NetnsSet, ns: string, root: string, port = 69) {
  chmodSync(root, 0o755);
  const s = spawnIn(set, ns, 'in.tftpd', ['-L', '-u', 'root', '-s', root, '-a', `0.0.0.0:${port}`]);
  await listening(ns, 'udp', port, 'in.tftpd', s.stderr);
}

/**
 * Strata's TFTP server or the boot worker's HTTP server alone (bench/serve.ts): its pid, and `ask` for its
 * counters (`ask('stats')`, tftp mode; undefined from a checkout whose serve.ts does not answer).
 */
export async function strataServe(
  set: NetnsSet,
  ns: string,
  mode: 'tftp' | 'http' | 'floor' | 'tftp-floor',
  root: string,
  port: number,
  repo = REPO,
  workers = 1,
  /** spec.boot.artifactServer: nginx hands /artifacts/ to the worker's own nginx. */
  artifactServer: 'node' | 'nginx' = 'node',
): Promise<{ pid: number; ask: LineChannel['ask'] }> {
  const args = [join(repo, 'bench/serve.ts'), mode, root, String(port), String(workers)];
  if (artifactServer === 'nginx') args.push('nginx');
  const s = spawnIn(set, ns, NODE, args, {
    ...process.env,
    STRATA_LOG_LEVEL: 'error',
    // The boot HTTP server's socket directory, in the benchmark's scratch: its SIGKILL cleans nothing up.
    TMPDIR: dirname(root),
  });
  const { ask, next } = lineChannel(s.child);
  await listening(ns, mode.startsWith('tftp') ? 'udp' : 'tcp', port, `strata ${mode}`, s.stderr);
  await next(); // its `ready`, so that it is not taken for the answer to the first question
  return { pid: s.child.pid!, ask };
}

/**
 * CPU seconds (user + system) process `pid` and the children it runs now (Strata's HTTP and TFTP processes)
 * have used so far; plus what its children that ended left in its account.
 */
export function cpuSeconds(pid: number): number {
  const p = procStat(pid);
  if (!p) return 0; // gone meanwhile
  let children = '';
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
  } catch {
    // no such file on this kernel: the process's own time only
  }
  const own = (p.ticks + p.childTicks) / CLK_TCK;
  return (
    own +
    children
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .reduce((a, c) => a + cpuSeconds(c), 0)
  );
}

/**
 * nginx's configuration for serving `root` on `port`: every core (worker_processes auto), sendfile,
 * keep-alive, no access log, as a distribution's default would after switching the log off. `extra` goes
 * into the server block, `http` into the http block (e.g. a log_format the server's access_log names).
 */
export function nginxConf(dir: string, root: string, port: number, extra = '', http = ''): string {
  return `${nginxHead({ dir, processes: 'auto', root: true })}  ${http}
  server {
    listen ${port} reuseport;
    root ${root};
    ${extra}
  }
}
`;
}

/** nginx (nginxConf) in namespace `ns`, a child of the set. */
export async function nginx(set: NetnsSet, ns: string, dir: string, root: string, port: number, extra = '') {
  mkdirSync(dir, { recursive: true });
  chmodSync(root, 0o755);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConf(dir, root, port, extra));
  const s = spawnIn(set, ns, 'nginx', ['-c', conf, '-e', 'stderr']);
  await listening(ns, 'tcp', port, 'nginx', s.stderr);
}
