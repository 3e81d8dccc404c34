/**
 * Shared set-up for the tests that run the boot path through `strata up`: a segment made of test-owned
 * namespaces (a bridge namespace holding br0 with the server address, client namespaces on it), a Network
 * manifest for it, and a busybox udhcpc run from a client. Everything is created with test/helpers/netns.ts
 * and removed after the test; the boot worker only ever runs inside the test's bridge namespace.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type NetworkSpec, networkSpec } from '../../../src/core/kinds/network.ts';
import { bridgePipe } from '../../../src/core/transport/pipe.ts';
import type { Transport } from '../../../src/core/transport/types.ts';
import { createNetns, currentNetns, type NetnsSet } from '../../helpers/netns.ts';
import type { Cleanup } from '../../helpers/services.ts';
import { type StrataServer, startStrata, waitFor } from '../../helpers/strata.ts';

export interface Segment {
  /** The namespace holding br0 and the boot worker. */
  bridgeNs: string;
  /** Client namespaces by short name, each with eth0 on the bridge. */
  clients: Record<string, string>;
  /** e.g. `10.213.41` */
  prefix: string;
}

/** A bridge namespace (`name`) with br0 = PREFIX.1/24 and client namespaces attached to it. */
export function makeSegment(set: NetnsSet, prefix: string, clients: string[], name = 'seg'): Segment {
  const m = set.segment(name, clients);
  const bridgeNs = set.name(name);
  set.addr(bridgeNs, 'br0', `${prefix}.1/24`);
  set.ip(bridgeNs, 'route', 'add', '255.255.255.255', 'dev', 'br0');
  return { bridgeNs, clients: m, prefix };
}

/** A Network's spec for the segment (br0 in its bridge namespace, PREFIX.1 the server), with `extra`. */
export function segmentSpec(seg: Segment, extra: Record<string, unknown> = {}): NetworkSpec {
  return networkSpec.parse({
    interface: 'br0',
    namespace: seg.bridgeNs,
    subnet: `${seg.prefix}.0/24`,
    serverAddress: `${seg.prefix}.1`,
    ...extra,
  });
}

/** A Network manifest for the segment; `extra` is YAML appended under `spec:` (two-space indented). */
export function networkManifest(
  name: string,
  seg: { bridgeNs: string; prefix: string },
  pool: [number, number] = [100, 120],
  extra = '',
): string {
  return `apiVersion: strata.dev/v1alpha1
kind: Network
metadata: {name: ${name}}
spec:
  interface: br0
  namespace: ${seg.bridgeNs}
  subnet: ${seg.prefix}.0/24
  serverAddress: ${seg.prefix}.1
  pool: {start: ${seg.prefix}.${pool[0]}, end: ${seg.prefix}.${pool[1]}}
  dns: {zone: boot.test}
  boot: {unknownNodes: ignore}
${extra}`;
}

/** The `debian` Profile the install tests boot (lab kernel, initrd and image), with optional extra fields. */
export function profileManifest(o: { cmdline?: string; preRebootScript?: string } = {}): string {
  return `apiVersion: strata.dev/v1alpha1
kind: Profile
metadata: {name: debian}
spec:
  kernel: lab/vmlinuz
  initrd: [lab/installer.cpio.gz]
${o.cmdline === undefined ? '' : `  cmdline: ${o.cmdline}\n`}  image: lab/rootfs.tar.gz
${o.preRebootScript === undefined ? '' : `  preRebootScript: ${JSON.stringify(o.preRebootScript)}\n`}`;
}

/** A Node `name` with one MAC, reserved `ipAddress` on `network`, target state 4 and no hardware provider. */
export function nodeManifest(name: string, mac: string, network: string, ipAddress: string): string {
  return `apiVersion: strata.dev/v1alpha1
kind: Node
metadata: {name: ${name}}
spec:
  macAddresses: ["${mac}"]
  network: ${network}
  ipAddress: ${ipAddress}
  targetState: 4
  providers: {hardware: none}
`;
}

/**
 * busybox udhcpc in `ns`: one attempt cycle of `tries` DISCOVERs, `timeoutS` apart, with `extra` options
 * (e.g. `-V` vendor class). Returns its output.
 */
export async function udhcpc(
  set: NetnsSet,
  ns: string,
  tries = 4,
  timeoutS = 1,
  extra: string[] = [],
): Promise<string> {
  const r = await set.exec(
    ns,
    'busybox',
    [
      'udhcpc',
      '-i',
      'eth0',
      '-n',
      '-q',
      '-f',
      '-s',
      '/bin/true',
      '-t',
      String(tries),
      '-T',
      String(timeoutS),
      ...extra,
    ],
    { timeoutMs: (tries * timeoutS + 10) * 1000 },
  );
  return r.stdout + r.stderr;
}

export interface WorkerChild {
  child: ChildProcess;
  /** Its exit code, once it exits. */
  exited: Promise<number | null>;
  stderr(): string;
}

/**
 * The boot worker child (src/boot/main.ts) of Network `network`, with `dataDir`, in the segment's bridge
 * namespace, bridged to `parent` (which answers what it asks, its config first); resolves once it is ready.
 */
export async function spawnWorkerChild(
  t: Cleanup,
  set: NetnsSet,
  seg: Segment,
  parent: Transport,
  network: string,
  dataDir: string,
): Promise<WorkerChild> {
  const env: NodeJS.ProcessEnv = { ...process.env, STRATA_HOST_NETNS: currentNetns() };
  delete env.STRATA_DHCP_ALLOW_HOST_NETNS;
  const main = resolve(import.meta.dirname, '../../../src/boot/main.ts');
  const child = set.spawn(
    seg.bridgeNs,
    process.execPath,
    [main, '--network', network, '--data-dir', dataDir],
    {
      env,
    },
  );
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const bridge = bridgePipe(parent, child.stdout!, child.stdin!, { label: `boot-worker@${network}` });
  t.after(() => bridge.close());
  await waitFor('boot worker ready', () => /boot worker ready|failed to start/.test(stderr), 20_000);
  assert.match(stderr, /boot worker ready/, stderr);
  return { child, exited, stderr: () => stderr };
}

/** Waits until no process runs in namespace `ns`; fails naming those that still do. */
export async function namespaceEmpty(ns: string, ms = 3500): Promise<void> {
  await waitFor('nothing left in the namespace', () => namespacePids(ns).length === 0, ms, 50).catch(
    (err: Error) => {
      const left = namespacePids(ns).map((p) => `${p} ${commandLine(p)}`);
      throw new Error(`${err.message}: ${left.join('; ')}`);
    },
  );
}

/** PIDs of the processes that run inside namespace `ns` (the boot worker, for a bridge namespace). */
export function namespacePids(ns: string): number[] {
  const out = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0);
}

/** A process's command line, arguments joined by spaces ('' once it is gone). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

export interface BootSetup {
  set: NetnsSet;
  seg: Segment;
  strata: StrataServer;
}

/** `strata up`, a segment with `clients`, and Network `name` on it, applied; resolves once its worker is ready. */
export async function strataWithNetwork(
  t: Cleanup,
  o: { prefix: string; name: string; clients: string[]; pool?: [number, number]; extra?: string },
): Promise<BootSetup> {
  const set = createNetns(t);
  const seg = makeSegment(set, o.prefix, o.clients);
  const strata = await startStrata(t, { env: { STRATA_HOST_NETNS: currentNetns() } });
  const r = await strata.cli(['apply', '-f', '-'], { stdin: networkManifest(o.name, seg, o.pool, o.extra) });
  assert.equal(r.code, 0, r.stderr);
  await strata.waitForOutput(/boot worker ready/, 20_000);
  return { set, seg, strata };
}

/**
 * perfdhcp from `ns` (which needs an address of its own, outside the pool: `loadAddress`) simulating
 * `clients` MACs at `rate` exchanges/s for `seconds`; `discoverOnly` stops each at the OFFER.
 */
export function perfdhcp(
  set: NetnsSet,
  ns: string,
  o: { rate: number; clients: number; seconds: number; discoverOnly?: boolean },
) {
  const args = ['-4', '-r', String(o.rate), '-R', String(o.clients), '-p', String(o.seconds), '-l', 'eth0'];
  if (o.discoverOnly) args.push('-i');
  return set.exec(ns, 'perfdhcp', args, { timeoutMs: (o.seconds + 15) * 1000 });
}

/** Gives load client `ns` the address PREFIX.2 (perfdhcp sends from an address of its own). */
export function loadAddress(set: NetnsSet, seg: Segment, ns: string): void {
  set.addr(ns, 'eth0', `${seg.prefix}.2/24`);
}
