/**
 * Boot storm: N machines power on at once (bench/storm-client.ts simulates each: PXE DHCP, TFTP of
 * undionly.kpxe, DHCP as iPXE, the script over HTTP, kernel and initramfs over HTTP, report-in), served
 * by `strata up` (a Network, a Profile and N declared Nodes; the script is decided per machine, the lease
 * recorded, the report put on the Node's timeline) and by dnsmasq (DHCP + TFTP) plus nginx serving the
 * same files and one static script: they decide nothing per machine, so they are the lower bound. The two
 * run on segments of their own and are measured in turn, `--rounds` times.
 *
 *   node bench/storm.ts [--machines 100] [--spread 10] [--kernel-mib 8] [--initrd-mib 20] [--rounds 1] [--write]
 *
 * `--spread`: the machines power on at random moments within this many seconds (self-tests end at different
 * times); 0 sends every first DISCOVER in the same millisecond. A machine whose DHCP goes unanswered
 * through the PXE firmware's four tries (4, 8, 16, 32 s) has failed.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { currentNetns, type NetnsSet } from '../test/helpers/netns.ts';
import { startStrata } from '../test/helpers/strata.ts';
import {
  benchArgs,
  fmt,
  nodesManifest,
  publish,
  REPO,
  type Row,
  ratio,
  Samples,
  type Scratch,
  withScratch,
} from './lib.ts';
import { listening, nginx } from './peers.ts';

const { opts, write, argv } = benchArgs('node bench/storm.ts (options in the comment above)', {
  machines: '100',
  spread: '10',
  'kernel-mib': '8',
  'initrd-mib': '20',
  rounds: '1',
});

const IPXE = '/usr/lib/ipxe/undionly.kpxe';

/** A segment: bridge namespace `short` (br0 = PREFIX.0.1/16) and a client namespace owning the pool. */
function segment(set: NetnsSet, short: string, prefix: string) {
  const m = set.segment(short, [`${short}c`]);
  const srv = set.name(short);
  const cli = m[`${short}c`]!;
  set.addr(srv, 'br0', `${prefix}.0.1/16`);
  set.ip(srv, 'route', 'add', '255.255.255.255', 'dev', 'br0');
  set.addr(cli, 'eth0', `${prefix}.0.2/16`);
  set.ip(cli, 'route', 'add', '255.255.255.255', 'dev', 'eth0');
  // The pool's addresses are this namespace's own: each simulated machine sends from its lease.
  set.ip(cli, 'route', 'add', 'local', `${prefix}.128.0/17`, 'dev', 'lo');
  return { srv, cli };
}

function files(dir: string, o: { kernelMib: number; initrdMib: number }) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vmlinuz'), randomBytes(o.kernelMib * 2 ** 20));
  writeFileSync(join(dir, 'initrd.img'), randomBytes(o.initrdMib * 2 ** 20));
}

async function strataSide(s: Scratch, machines: number, o: { kernelMib: number; initrdMib: number }) {
  const { srv, cli } = segment(s.set, 'ss', '10.71');
  const strata = await startStrata(s.cleanup, {
    env: { STRATA_HOST_NETNS: currentNetns(), STRATA_LOG_LEVEL: 'warn' },
    readyTimeoutMs: 60_000,
  });
  files(join(strata.dataDir, 'artifacts', 'bench'), o);
  const manifest = `apiVersion: strata.dev/v1alpha1
kind: Network
metadata: {name: bench}
spec:
  interface: br0
  namespace: ${srv}
  subnet: 10.71.0.0/16
  serverAddress: 10.71.0.1
  pool: {start: 10.71.128.1, end: 10.71.255.254}
  dns: {enabled: false}
  boot: {unknownNodes: ignore}
---
apiVersion: strata.dev/v1alpha1
kind: Profile
metadata: {name: bench}
spec:
  kernel: bench/vmlinuz
  initrd: [bench/initrd.img]
  image: bench/rootfs.tar.gz
---
${nodesManifest(machines, 4, { network: 'bench', providers: { hardware: 'none' } })}
`;
  const r = await strata.api('POST', '/api/v1/apply', manifest, { contentType: 'application/yaml' });
  if (r.status >= 300) throw new Error(`strata apply: ${r.status} ${r.text.slice(0, 500)}`);
  await listening(srv, 'tcp', 7421, 'strata boot worker (HTTP)', () => strata.stderr());
  await listening(srv, 'udp', 69, 'strata boot worker (TFTP)', () => strata.stderr());
  return cli;
}

async function peerSide(s: Scratch) {
  const { srv, cli } = segment(s.set, 'sp', '10.72');
  const root = join(s.dir, 'peer');
  files(join(root, 'artifacts'), {
    kernelMib: Number(opts['kernel-mib']),
    initrdMib: Number(opts['initrd-mib']),
  });
  mkdirSync(join(root, 'boot'), { recursive: true });
  writeFileSync(
    join(root, 'boot', 'ipxe'),
    '#!ipxe\nkernel http://10.72.0.1:8090/artifacts/vmlinuz console=ttyS0\ninitrd http://10.72.0.1:8090/artifacts/initrd.img\nboot\n',
  );
  copyFileSync(IPXE, join(root, 'undionly.kpxe'));
  await nginx(s.set, srv, join(s.dir, 'nginx'), root, 8090, 'location = /report { return 204; }');
  s.set.spawn(srv, 'dnsmasq', [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--port=0',
    '--interface=br0',
    '--bind-interfaces',
    '--user=root',
    `--pid-file=${join(s.dir, 'dnsmasq-storm.pid')}`,
    `--dhcp-leasefile=${join(s.dir, 'dnsmasq-storm.leases')}`,
    '--dhcp-range=10.72.128.1,10.72.255.254,255.255.0.0,1h',
    '--dhcp-lease-max=1000000',
    '--dhcp-authoritative',
    // Every pool address answers ping here (the client namespace owns the pool), and Strata does not
    // ping before offering either.
    '--no-ping',
    '--dhcp-userclass=set:ipxe,iPXE',
    '--dhcp-boot=tag:!ipxe,undionly.kpxe,,10.72.0.1',
    '--dhcp-boot=tag:ipxe,http://10.72.0.1:8090/boot/ipxe',
    '--enable-tftp',
    `--tftp-root=${root}`,
    '--tftp-max=5000',
  ]);
  await listening(srv, 'udp', 69, 'dnsmasq (TFTP)', () => '');
  await listening(srv, 'udp', 67, 'dnsmasq (DHCP)', () => '');
  return cli;
}

async function storm(set: NetnsSet, ns: string, machines: number, spread: number) {
  const r = await set.exec(
    ns,
    process.execPath,
    [join(REPO, 'bench/storm-client.ts'), String(machines), '0', String(spread)],
    {
      timeoutMs: 900_000,
    },
  );
  if (r.code !== 0) throw new Error(`storm client exit ${r.code}: ${r.stderr.slice(0, 800)}`);
  const out = JSON.parse(r.stdout) as {
    wallMs: number;
    slowestMs: number;
    failed: number;
    errors: Record<string, number>;
    retries: number;
  };
  if (out.failed) console.error(`storm: ${out.failed} machines failed: ${JSON.stringify(out.errors)}`);
  return out;
}

export async function runStorm(o: {
  machines: number[];
  spread: number;
  kernelMib: number;
  initrdMib: number;
  rounds: number;
}) {
  const rows: Row[] = [];
  for (const n of o.machines) {
    await withScratch('storm', async (s) => {
      const strataCli = await strataSide(s, n, o);
      const peerCli = await peerSide(s);
      const res = new Samples();
      const failed = new Map<string, number>();
      for (let round = 0; round < o.rounds; round++) {
        for (const [side, cli] of [
          ['strata', strataCli],
          ['peer', peerCli],
        ] as const) {
          await res.measure(`storm ${n} ${side}`, async () => {
            const r = await storm(s.set, cli, n, o.spread);
            res.add(`storm ${n} ${side} slowest`, r.slowestMs, { load1: 0, stealPct: 0, busyPct: 0 });
            failed.set(side, (failed.get(side) ?? 0) + r.failed);
            return r.wallMs;
          });
        }
      }
      const cell = (side: string) =>
        failed.get(side)
          ? `${failed.get(side)} of ${fmt(n * o.rounds)} machines failed (${fmt(res.median(`storm ${n} ${side}`) / 1000, 1)} s)`
          : `${fmt(res.median(`storm ${n} ${side}`) / 1000, 1)} s (slowest machine ${fmt(res.median(`storm ${n} ${side} slowest`) / 1000, 1)} s)`;
      const anyFailed = Boolean(failed.get('strata') || failed.get('peer'));
      rows.push({
        what: `${fmt(n)} machines powering on within ${o.spread} s: all done`,
        strata: cell('strata'),
        peer: `dnsmasq + nginx ${cell('peer')}`,
        ratio: anyFailed ? '—' : ratio(res.median(`storm ${n} strata`), res.median(`storm ${n} peer`), false),
        load: res.load(`storm ${n} strata`, `storm ${n} peer`),
      });
    });
  }
  return rows;
}

if (import.meta.main) {
  const rows = await runStorm({
    machines: opts.machines.split(',').map(Number),
    spread: Number(opts.spread),
    kernelMib: Number(opts['kernel-mib']),
    initrdMib: Number(opts['initrd-mib']),
    rounds: Number(opts.rounds),
  });
  publish(
    {
      name: 'storm',
      title: 'Boot storm: N machines powering on within seconds of each other',
      command: `node bench/storm.ts ${argv}`.trim(),
      rows,
      notes: [
        `Each simulated machine (bench/storm-client.ts, one Node process for all of them in a client namespace) does PXE DHCP, TFTP of undionly.kpxe (blksize 1432, no windowsize, as PXE ROMs ask), DHCP as iPXE, its script over HTTP, a ${opts['kernel-mib']} MiB kernel and a ${opts['initrd-mib']} MiB initramfs over HTTP, then a report-in (Strata: an install event with the script's token, on the Node's timeline; peer: a POST nginx answers 204). Time until all are done; the slowest machine's own time. Strata makes a decision per machine (declared Node, lease recorded, script with an install token); dnsmasq + nginx hand every machine the same static script, the lower bound.`,
      ],
    },
    write,
  );
  process.exit(0);
}
