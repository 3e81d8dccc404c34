/**
 * Network namespaces for tests that need real packets: uniquely named namespaces (`st-<pid>-<n>-<name>`),
 * bridges, veth pairs, addresses, commands run inside a namespace, and cleanup that always runs (the
 * test's `t.after`, process exit, SIGINT/SIGTERM, and `cleanupStale()` for namespaces of dead test
 * processes). Everything is created inside the test's own namespaces (`ip -n`, veth peers created
 * directly in their namespace), so nothing touches the machine's own network.
 *
 * SAFETY: the machine sits on a shared network, and a DHCP offer escaping into its own namespace is an
 * incident. {@link startDhcpWorker} therefore only runs a server as a child process inside a namespace of
 * this set (`ip netns exec NS node src/dhcp/main.ts`), and that entry refuses to serve in the host
 * namespace by itself (src/dhcp/guard.ts; we also pass our own namespace as STRATA_HOST_NETNS).
 *
 * Requires root and iproute2; {@link netnsAvailable} tells tests to skip otherwise.
 */

import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE = process.execPath;

let setCounter = 0;
const liveSets = new Set<NetnsSet>();
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const s of liveSets) s.cleanup();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const s of liveSets) s.cleanup();
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    });
  }
}

function ipCmd(args: string[], opts: { allowFail?: boolean } = {}): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    if (opts.allowFail) return '';
    const err = e as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
  }
}

/** Can this process create namespaces? (root + iproute2). */
export function netnsAvailable(): { ok: boolean; reason?: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root' };
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return { ok: false, reason: 'iproute2 (ip) not installed' };
  }
  return { ok: true };
}

/** Our own network namespace id, e.g. `net:[4026531833]`. */
export function currentNetns(): string {
  return readlinkSync('/proc/self/ns/net');
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killNamespacePids(ns: string): void {
  const out = ipCmd(['netns', 'pids', ns], { allowFail: true });
  for (const line of out.split('\n')) {
    const pid = Number(line.trim());
    if (pid > 1 && pid !== process.pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

function deleteNamespace(ns: string): void {
  killNamespacePids(ns);
  ipCmd(['netns', 'del', ns], { allowFail: true });
}

/** Removes `st-<pid>-*` namespaces whose creating process is dead. Returns the names removed. */
export function cleanupStale(): string[] {
  const removed: string[] = [];
  const list = ipCmd(['netns', 'list'], { allowFail: true });
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^st-(\d+)-/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    deleteNamespace(name);
    removed.push(name);
  }
  return removed;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A set of namespaces owned by one test; `cleanup()` removes them and kills what runs inside. */
export class NetnsSet {
  readonly prefix: string;
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private cleaned = false;

  constructor() {
    this.prefix = `st-${process.pid}-${++setCounter}`;
  }

  /** Full name of a namespace of this set. */
  name(short: string): string {
    return `${this.prefix}-${short}`;
  }

  owns(ns: string): boolean {
    return this.namespaces.includes(ns);
  }

  /** Creates a namespace with loopback up (and IPv6 off, to keep captures quiet). */
  addNs(short: string, opts: { ipv6?: boolean } = {}): string {
    const ns = this.name(short);
    ipCmd(['netns', 'add', ns]);
    this.namespaces.push(ns);
    ipCmd(['-n', ns, 'link', 'set', 'lo', 'up']);
    if (!opts.ipv6) this.sysctl(ns, 'net.ipv6.conf.all.disable_ipv6', '1');
    return ns;
  }

  sysctl(ns: string, key: string, value: string): void {
    this.assertOwned(ns);
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `${key}=${value}`], { stdio: 'ignore' });
  }

  /** `ip -n NS ARGS...` */
  ip(ns: string, ...args: string[]): string {
    this.assertOwned(ns);
    return ipCmd(['-n', ns, ...args]);
  }

  bridge(ns: string, br = 'br0'): void {
    this.ip(ns, 'link', 'add', br, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    this.ip(ns, 'link', 'set', br, 'up');
  }

  /** A veth pair, `ifA` in `nsA` and `ifB` in `nsB`, both up. Interface names ≤ 15 characters. */
  veth(nsA: string, ifA: string, nsB: string, ifB: string): void {
    this.assertOwned(nsB);
    this.ip(nsA, 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB);
    this.ip(nsA, 'link', 'set', ifA, 'up');
    this.ip(nsB, 'link', 'set', ifB, 'up');
  }

  addr(ns: string, ifname: string, cidr: string): void {
    this.ip(ns, 'addr', 'add', cidr, 'dev', ifname);
  }

  /** MAC address of an interface. */
  mac(ns: string, ifname: string): string {
    const out = this.ip(ns, '-o', 'link', 'show', ifname);
    const m = /link\/ether ([0-9a-f:]{17})/.exec(out);
    if (!m) throw new Error(`no MAC for ${ns}/${ifname}`);
    return m[1]!;
  }

  /**
   * A broadcast segment: a namespace holding bridge `br0`, and each member namespace attached with
   * interface `ifname` (default eth0). Members are created if this set has no namespace of that name.
   * Returns the member namespaces' full names by short name.
   */
  segment(bridgeShort: string, members: string[], ifname = 'eth0'): Record<string, string> {
    const brNs = this.owns(this.name(bridgeShort)) ? this.name(bridgeShort) : this.addNs(bridgeShort);
    this.bridge(brNs);
    const out: Record<string, string> = {};
    members.forEach((m, i) => {
      const ns = this.owns(this.name(m)) ? this.name(m) : this.addNs(m);
      const port = `p${i}-${m}`.slice(0, 15);
      this.veth(brNs, port, ns, ifname);
      this.ip(brNs, 'link', 'set', port, 'master', 'br0');
      out[m] = ns;
    });
    return out;
  }

  /** Spawns `cmd args` inside `ns` (via `ip netns exec`); the child is killed at cleanup. */
  spawn(ns: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    this.assertOwned(ns);
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: ROOT,
      ...opts,
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Runs a command inside `ns` to completion (killed after `timeoutMs`, default 20 s). */
  exec(ns: string, cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const child = this.spawn(ns, cmd, args, {
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
    });
  }

  /** Kills everything this set started or that runs in its namespaces, and deletes the namespaces. */
  cleanup(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    liveSets.delete(this);
    for (const c of this.children) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const ns of [...this.namespaces].reverse()) deleteNamespace(ns);
    this.namespaces.length = 0;
  }

  private assertOwned(ns: string): void {
    if (!this.owns(ns)) throw new Error(`namespace ${ns} does not belong to this test set (${this.prefix})`);
  }
}

/**
 * Creates a namespace set whose cleanup runs after the test (`t.after`), at process exit, and on
 * SIGINT/SIGTERM. Also removes stale sets of dead test processes first.
 */
export function createNetns(t?: { after(fn: () => void | Promise<void>): void }): NetnsSet {
  installHooks();
  cleanupStale();
  const set = new NetnsSet();
  liveSets.add(set);
  t?.after(() => set.cleanup());
  return set;
}

// ------------------------------------------------------------------ DHCP worker

export interface DhcpWorkerHandle {
  proc: ChildProcess;
  /** Exchange events printed by the worker (`"events": true` is forced). */
  events: Record<string, unknown>[];
  /** Other JSON lines (stats/leases answers). */
  lines: Record<string, unknown>[];
  stderr(): string;
  /** Resolves with the first event (past or future) matching `pred`. */
  waitForEvent(
    pred: (e: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Asks the worker for its stats and leases (SIGUSR2). */
  status(timeoutMs?: number): Promise<{ stats: Record<string, number>; leases: Record<string, unknown>[] }>;
  stop(): Promise<void>;
}

/**
 * Starts `src/dhcp/main.ts` inside namespace `ns` of `set` with `config` (a WorkerConfig: `{server,
 * boot?, leases?}`), and waits for its ready line. Refuses namespaces that are not this set's.
 */
export async function startDhcpWorker(
  set: NetnsSet,
  ns: string,
  config: Record<string, unknown>,
  opts: { timeoutMs?: number } = {},
): Promise<DhcpWorkerHandle> {
  if (!set.owns(ns)) throw new Error(`refusing to start a DHCP server outside this test's namespaces: ${ns}`);
  if ('allowHostNamespace' in config) throw new Error('tests never opt in to the host namespace');
  const env: NodeJS.ProcessEnv = { ...process.env, STRATA_HOST_NETNS: currentNetns() };
  delete env.STRATA_DHCP_ALLOW_HOST_NETNS;
  const proc = set.spawn(ns, NODE, [path.join(ROOT, 'src/dhcp/main.ts'), '-'], { env });
  proc.stdin?.end(JSON.stringify({ ...config, events: true }));
  const events: Record<string, unknown>[] = [];
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  const listeners = new Set<() => void>();
  let buf = '';
  let readyResolve: (v: Record<string, unknown>) => void = () => {};
  const ready = new Promise<Record<string, unknown>>((r) => {
    readyResolve = r;
  });
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      i = buf.indexOf('\n');
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (obj.ready) readyResolve(obj);
      else if (obj.event) events.push(obj.event as Record<string, unknown>);
      else lines.push(obj);
      for (const l of listeners) l();
    }
  });
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const result = await Promise.race([
    ready,
    exited.then((code) => {
      throw new Error(`dhcp worker exited (${code}) before ready: ${stderr.trim()}`);
    }),
    new Promise<never>((_, rej) =>
      setTimeout(
        () => rej(new Error(`dhcp worker not ready after ${timeoutMs} ms: ${stderr}`)),
        timeoutMs,
      ).unref(),
    ),
  ]);
  if (!result.ready) throw new Error('dhcp worker did not start');

  const waitFor = <T>(check: () => T | undefined, timeout: number, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const found = check();
      if (found !== undefined) return resolve(found);
      const l = () => {
        const f = check();
        if (f !== undefined) {
          listeners.delete(l);
          clearTimeout(timer);
          resolve(f);
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(l);
        reject(new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events)}`));
      }, timeout);
      listeners.add(l);
    });

  return {
    proc,
    events,
    lines,
    stderr: () => stderr,
    waitForEvent: (pred, t = 10_000) => waitFor(() => events.find(pred), t, 'dhcp event'),
    status: (t = 5000) => {
      const before = lines.length;
      proc.kill('SIGUSR2');
      return waitFor(
        () => {
          const l = lines.slice(before).find((x) => 'stats' in x);
          return l as { stats: Record<string, number>; leases: Record<string, unknown>[] } | undefined;
        },
        t,
        'status',
      );
    },
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}
