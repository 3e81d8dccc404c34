/**
 * Boot storm: N machines power on at once (bench/storm-client.ts simulates each: PXE DHCP, TFTP of
 * undionly.kpxe, DHCP as iPXE, the script over HTTP, kernel and initramfs over HTTP, report-in), served
 * by `strata up` (a Network, a Profile and N declared Nodes; the script is decided per machine, the lease
 * recorded, the report put on the Node's timeline) and by dnsmasq (DHCP + TFTP) plus nginx serving the
 * same files and one static script: they decide nothing per machine, so they are the lower bound. The two
 * run on segments of their own and are measured in turn, `--rounds` times.
 *
 *   node bench/storm.ts [--machines 100] [--spread 10] [--kernel-mib 8] [--initrd-mib 20] [--rounds 1]
 *                       [--clients K] [--base DIR] [--prof DIR] [--sides strata,base,peer]
 *                       [--peer-dynamic] [--peer-log FILE] [--artifact-server node|nginx] [--write]
 * `--artifact-server nginx`: Strata's Network sets spec.boot.artifactServer nginx (its worker's own nginx
 * serves the kernel and initramfs; scripts and reports stay Strata's); its rows say so.
 *
 * `--clients`: how many client processes simulate the machines (default one per core), each a disjoint
 * range of MACs, all powering on from one common start; their results are merged (all done = the last
 * machine's report-in from that start). One process for thousands of machines is itself the limit: it
 * drops DHCP replies and stalls transfers while it copies gigabytes. `--base DIR` adds a third side,
 * `strata up` from DIR (a checkout of an earlier commit with node_modules beside it:
 * `git archive C | tar -x -C DIR && ln -s $PWD/node_modules DIR/`), in the same interleaved rounds.
 * `--prof DIR`: every process of `strata up` (manager, boot worker, its HTTP processes) writes a CPU
 * profile into DIR (DIR/base for `--base`'s) when it exits (DevTools or speedscope read them).
 * `--sides`: which of the sides to run (a debug run of one side; `base` only with `--base`).
 * `--peer-dynamic`: dnsmasq hands out the pool by its MAC hash instead of one reserved address per machine
 * (see peerSide: at 1,000 machines about half are NAKed four times in a row).
 * `--peer-log FILE`: dnsmasq logs every DHCP and TFTP packet, with its reasons (`--log-dhcp`), into FILE.
 * `--write` replaces this run's rows in BENCHMARKS.md and keeps the others (a 5,000-machine run with
 * smaller artifacts is its own command).
 *
 * `--spread`: the machines power on at random moments within this many seconds (self-tests end at different
 * times); 0 sends every first DISCOVER in the same millisecond. A machine whose DHCP goes unanswered
 * through the PXE firmware's four tries (4, 8, 16, 32 s) has failed.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { intToIp, ipToInt } from '../src/dhcp/codec.ts';
import { currentNetns, type NetnsSet } from '../test/helpers/netns.ts';
import { startStrata } from '../test/helpers/strata.ts';
import {
  benchArgs,
  benchMac,
  fmt,
  nodesManifest,
  percentile,
  probedPids,
  publish,
  REPO,
  type Row,
  ratio,
  readProbe,
  resetProbes,
  Samples,
  type Scratch,
  withScratch,
} from './lib.ts';
import { listening, nginx } from './peers.ts';
import { PHASES, type Phase, STEPS, type Storm } from './storm-client.ts';

const { opts, flags, write, argv } = benchArgs(
  'node bench/storm.ts (options in the comment above)',
  {
    machines: '100',
    spread: '10',
    'kernel-mib': '8',
    'initrd-mib': '20',
    rounds: '1',
    clients: String(availableParallelism()),
    base: '',
    prof: '',
    sides: 'strata,base,peer',
    'peer-log': '',
    'artifact-server': 'node',
  },
  ['peer-dynamic'],
);

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
  // Replies to the pool go through the client namespace's one address: a neighbour entry per machine
  // would overflow the kernel's table (gc_thresh3, 1,024 here, machine-wide) past a thousand machines
  // and drop packets on every side alike.
  set.ip(srv, 'route', 'add', `${prefix}.128.0/17`, 'via', `${prefix}.0.2`);
  return { srv, cli };
}

function files(dir: string, o: { kernelMib: number; initrdMib: number }) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vmlinuz'), randomBytes(o.kernelMib * 2 ** 20));
  writeFileSync(join(dir, 'initrd.img'), randomBytes(o.initrdMib * 2 ** 20));
}

/**
 * A Strata side's event-loop probes: `reset` before a storm, `read` after it. The manager's worst delay
 * and the longest its work held the loop; the same for its other processes (boot worker, TFTP, HTTP).
 */
const loops = new Map<
  string,
  {
    reset(): Promise<void>;
    read(): { managerMs: number; managerCpuMs: number; othersMs: number; othersCpuMs: number; each: string };
  }
>();

/** A Strata side's TFTP counters (retransmits, transfers), by its client namespace: read after each storm. */
const tftpCounters = new Map<string, () => Promise<string>>();

/** `strata up` (this tree's, or `base`'s) serving a segment of its own with `machines` declared Nodes. */
async function strataSide(
  s: Scratch,
  machines: number,
  o: { kernelMib: number; initrdMib: number },
  short: string,
  prefix: string,
  base?: string,
) {
  const { srv, cli } = segment(s.set, short, prefix);
  // Every process of `strata up` measures its event loop (bench/eld-probe.ts) into a directory of its own;
  // with --prof beside the CPU profiles, where `node bench/stalls.ts` reads both.
  const eldDir = opts.prof
    ? join(opts.prof, base ? 'base' : '', `eld-${short}`)
    : join(s.dir, `eld-${short}`);
  mkdirSync(eldDir, { recursive: true });
  const strata = await startStrata(s.cleanup, {
    env: {
      STRATA_HOST_NETNS: currentNetns(),
      STRATA_LOG_LEVEL: 'warn',
      STRATA_BENCH_ELD_DIR: eldDir,
      NODE_OPTIONS: [
        `--import ${join(REPO, 'bench/eld-probe.ts')}`,
        ...(opts.prof ? [`--cpu-prof --cpu-prof-dir=${base ? join(opts.prof, 'base') : opts.prof}`] : []),
      ].join(' '),
    },
    readyTimeoutMs: 60_000,
    ...(base ? { bin: join(base, 'bin/strata') } : {}),
  });
  files(join(strata.dataDir, 'artifacts', 'bench'), o);
  const manifest = `apiVersion: strata.dev/v1alpha1
kind: Network
metadata: {name: bench}
spec:
  interface: br0
  namespace: ${srv}
  subnet: ${prefix}.0.0/16
  serverAddress: ${prefix}.0.1
  pool: {start: ${prefix}.128.1, end: ${prefix}.255.254}
  dns: {enabled: false}
  boot: {unknownNodes: ignore${opts['artifact-server'] === 'nginx' ? ', artifactServer: nginx' : ''}}
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
  // Nodes are applied in one request; the profile's decision needs them all known before the storm.
  if (r.status >= 300) throw new Error(`strata apply: ${r.status} ${r.text.slice(0, 500)}`);
  await listening(srv, 'tcp', 7421, 'strata boot worker (HTTP)', () => strata.stderr());
  await listening(srv, 'udp', 69, 'strata boot worker (TFTP)', () => strata.stderr());
  const manager = strata.child.pid!;
  let probed: number[] = [];
  let adopt: NodeJS.Timeout | undefined;
  loops.set(cli, {
    async reset() {
      probed = probedPids(eldDir);
      await resetProbes(eldDir, probed);
      // Processes started during the storm (TFTP processes start at the first transfer) are measured from
      // their probe's first report on (a probe reports once its process's loop runs): their start-up, one
      // long stretch of module loading, is left out as the others' is.
      adopt = setInterval(() => {
        for (const pid of probedPids(eldDir)) {
          if (probed.includes(pid)) continue;
          probed.push(pid);
          writeFileSync(join(eldDir, `reset-${pid}`), '');
        }
      }, 100);
    },
    read() {
      clearInterval(adopt);
      // A late process whose probe has not taken its reset yet is left out: its figures hold its start-up.
      const all = probed
        .filter((pid) => !existsSync(join(eldDir, `reset-${pid}`)))
        .map((pid) => readProbe(eldDir, pid));
      // With --prof, what was read is kept beside the probes (which go on writing until strata stops).
      if (opts.prof) writeFileSync(join(eldDir, 'read.json'), JSON.stringify(all));
      const m = all.find((x) => x.pid === manager);
      const others = all.filter((x) => x.pid !== manager);
      return {
        managerMs: m?.maxMs ?? Number.NaN,
        managerCpuMs: m?.maxCpuMs ?? Number.NaN,
        othersMs: Math.max(0, ...others.map((x) => x.maxMs)),
        othersCpuMs: Math.max(0, ...others.map((x) => x.maxCpuMs)),
        each: others.map((x) => `${x.pid} ${fmt(x.maxMs)} (${fmt(x.maxCpuMs)})`).join(', '),
      };
    },
  });
  tftpCounters.set(cli, async () => {
    const m = await strata.api('GET', '/metrics');
    return m.text
      .split('\n')
      .filter((l) =>
        /^strata_tftp_(retransmits|transfers|duplicate_acks|unexpected_packets)\w*(\{[^}]*\})? /.test(l),
      )
      .join(', ');
  });
  return cli;
}

/**
 * dnsmasq + nginx. Each machine's MAC has an address reserved (`--dhcp-hostsfile`), as an admin who knows
 * the fleet writes it (Strata's side knows it too: every machine is a declared Node). From the dynamic pool
 * (`--peer-dynamic`) dnsmasq cannot boot a storm of a thousand: it does not hold an address it offers, and
 * it picks one from a hash of the MAC, walking to the next free address on a collision, so machines that
 * ask together are offered the same address, the first REQUEST takes it and the others are NAKed
 * ("address in use") and start over into the same walk.
 */
async function peerSide(s: Scratch, machines: number, o: { kernelMib: number; initrdMib: number }) {
  const { srv, cli } = segment(s.set, 'sp', '10.72');
  const root = join(s.dir, 'peer');
  const hosts = join(s.dir, 'dnsmasq-storm.hosts');
  const base = ipToInt('10.72.128.1');
  writeFileSync(
    hosts,
    Array.from({ length: machines }, (_, i) => `${benchMac(i)},${intToIp(base + i)}\n`).join(''),
  );
  files(join(root, 'artifacts'), o);
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
    ...(flags['peer-dynamic'] ? [] : [`--dhcp-hostsfile=${hosts}`]),
    // Default 1,000 leases: the 1,001st machine would get no OFFER.
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
    // Default 50 concurrent transfers: a storm's machines would queue behind them (fds allow far more).
    '--tftp-max=5000',
    ...(opts['peer-log']
      ? ['--log-dhcp', `--log-facility=${opts['peer-log']}`]
      : // Routine per-packet logging off, as Strata's is at STRATA_LOG_LEVEL=warn.
        ['--quiet-dhcp', '--quiet-tftp']),
  ]);
  await listening(srv, 'udp', 69, 'dnsmasq (TFTP)', () => '');
  await listening(srv, 'udp', 67, 'dnsmasq (DHCP)', () => '');
  return cli;
}

interface Merged {
  wallMs: number;
  slowestMs: number;
  medianMs: number;
  failed: Partial<Record<Phase, number>>;
  lateMs: number;
  retries: number;
  naks: number;
  stallMs: number;
}

/** The machines spread over `clients` processes (disjoint MAC ranges), powering on from one common start. */
async function storm(set: NetnsSet, ns: string, machines: number, spread: number, clients: number) {
  const k = Math.max(1, Math.min(clients, machines));
  // Far enough ahead for every process to start and bind; a late one is reported, not hidden.
  const startAt = Date.now() + 2000 + 300 * k;
  const outs = await Promise.all(
    Array.from({ length: k }, async (_, j) => {
      const from = Math.floor((j * machines) / k);
      const to = Math.floor(((j + 1) * machines) / k);
      const args = [join(REPO, 'bench/storm-client.ts'), String(to - from), String(from), String(spread)];
      const r = await set.exec(ns, process.execPath, [...args, String(startAt)], { timeoutMs: 1_800_000 });
      if (r.code !== 0) throw new Error(`storm client exit ${r.code}: ${r.stderr.slice(0, 800)}`);
      return JSON.parse(r.stdout) as Storm;
    }),
  );
  const ms = outs.flatMap((o) => o.ms).sort((a, b) => a - b);
  const failed: Partial<Record<Phase, number>> = {};
  for (const o of outs)
    for (const [p, n] of Object.entries(o.failed) as [Phase, number][]) {
      failed[p] = (failed[p] ?? 0) + n;
      console.error(`storm: ${n} failed at ${p}, e.g. ${o.examples[p]}`);
    }
  const m: Merged = {
    wallMs: Math.max(...outs.flatMap((o) => o.doneAt)) - startAt,
    slowestMs: ms.at(-1) ?? Number.NaN,
    medianMs: ms[Math.floor(ms.length / 2)] ?? Number.NaN,
    failed,
    lateMs: Math.max(...outs.map((o) => o.lateMs)),
    retries: outs.reduce((a, o) => a + o.retries, 0),
    naks: outs.reduce((a, o) => a + o.naks, 0),
    stallMs: Math.max(...outs.map((o) => o.stallMs)),
  };
  console.error(`storm: the client processes' worst event-loop delay ${fmt(m.stallMs)} ms`);
  // Where the machines' time went, step by step (median and 90th percentile over the booted machines).
  const steps = STEPS.map((st) => {
    const xs = outs.flatMap((o) => o.stepMs[st]);
    return `${st} ${fmt(percentile(xs, 0.5) / 1000, 2)}/${fmt(percentile(xs, 0.9) / 1000, 2)}`;
  });
  console.error(
    `storm: each step, median/p90 s: ${steps.join(', ')}; ${fmt(m.retries)} retries (script, report, DHCP)`,
  );
  const sum = (f: (o: Storm) => number) => fmt(outs.reduce((a, o) => a + f(o), 0));
  console.error(
    `storm: TFTP ${sum((o) => o.tftpTimeouts)} client timeouts (1 s each), ${sum((o) => o.tftpOutOfOrder)} blocks out of order`,
  );
  if (m.naks) console.error(`storm: ${fmt(m.naks)} NAKs, each answered by a new DISCOVER`);
  if (m.lateMs > 0) console.error(`storm: a client process was ${fmt(m.lateMs)} ms late for the start`);
  return m;
}

/** `12 (no ACK 10, TFTP 2)`, causes in boot order. */
function failures(f: Partial<Record<Phase, number>>): string {
  const parts = PHASES.filter((p) => f[p]).map((p) => `${p} ${fmt(f[p]!)}`);
  const total = PHASES.reduce((a, p) => a + (f[p] ?? 0), 0);
  return total ? `${fmt(total)} (${parts.join(', ')})` : '';
}

export async function runStorm(o: {
  machines: number[];
  spread: number;
  kernelMib: number;
  initrdMib: number;
  rounds: number;
  clients: number;
  base?: string;
  sides?: string[];
}) {
  const rows: Row[] = [];
  for (const n of o.machines) {
    await withScratch('storm', async (s) => {
      const run = new Set(o.sides ?? ['strata', 'base', 'peer']);
      const sides: [string, string][] = [];
      if (run.has('strata')) sides.push(['strata', await strataSide(s, n, o, 'ss', '10.71')]);
      if (o.base && run.has('base')) sides.push(['base', await strataSide(s, n, o, 'sb', '10.73', o.base)]);
      if (run.has('peer')) sides.push(['peer', await peerSide(s, n, o)]);
      const res = new Samples();
      const failed = new Map<string, Partial<Record<Phase, number>>>();
      const naks = new Map<string, number>();
      const stall = new Map<string, number>();
      for (let round = 0; round < o.rounds; round++) {
        for (const [side, cli] of sides) {
          await res.measure(`storm ${n} ${side}`, async () => {
            await loops.get(cli)?.reset();
            const r = await storm(s.set, cli, n, o.spread, o.clients);
            const l = loops.get(cli)?.read();
            if (l)
              console.error(
                `storm: ${side}'s event loops: manager worst delay ${fmt(l.managerMs)} ms (held by work ${fmt(l.managerCpuMs)} ms), ` +
                  `its other processes ${fmt(l.othersMs)} ms (${fmt(l.othersCpuMs)} ms; by pid: ${l.each})`,
              );
            const counters = await tftpCounters.get(cli)?.();
            if (counters) console.error(`storm: ${side}'s TFTP counters (since it started): ${counters}`);
            res.add(`storm ${n} ${side} slowest`, r.slowestMs, { load1: 0, stealPct: 0, busyPct: 0 });
            res.add(`storm ${n} ${side} median`, r.medianMs, { load1: 0, stealPct: 0, busyPct: 0 });
            naks.set(side, (naks.get(side) ?? 0) + r.naks);
            stall.set(side, Math.max(stall.get(side) ?? 0, r.stallMs));
            const f = failed.get(side) ?? {};
            for (const [p, k] of Object.entries(r.failed) as [Phase, number][]) f[p] = (f[p] ?? 0) + k;
            failed.set(side, f);
            return r.wallMs;
          });
        }
      }
      const s1 = (side: string, what: string) => fmt(res.median(`storm ${n} ${side}${what}`) / 1000, 1);
      const cell = (side: string) => {
        const f = failures(failed.get(side) ?? {});
        const nak = naks.get(side) ? `, ${fmt(naks.get(side)!)} DHCP NAKs answered by a new DISCOVER` : '';
        const sim = `, simulator stalled up to ${fmt((stall.get(side) ?? 0) / 1000, 1)} s`;
        const times = `slowest machine ${s1(side, ' slowest')} s, median ${s1(side, ' median')} s${nak}${sim}`;
        return f
          ? `${f} of ${fmt(n * o.rounds)} machines failed; the rest done in ${s1(side, '')} s (${times})`
          : `${s1(side, '')} s (${times})`;
      };
      const ok = (side: string) => !failures(failed.get(side) ?? {});
      const handed = opts['artifact-server'] === 'nginx' ? ", Strata's artifacts through its nginx" : '';
      const what = `${fmt(n)} machines (${o.kernelMib} + ${o.initrdMib} MiB each) powering on within ${o.spread} s: all done${handed}`;
      rows.push({
        what,
        strata: cell('strata'),
        peer: `dnsmasq + nginx ${cell('peer')}`,
        ratio:
          ok('strata') && ok('peer')
            ? ratio(res.median(`storm ${n} strata`), res.median(`storm ${n} peer`), false)
            : '—',
        load: res.load(`storm ${n} strata`, `storm ${n} peer`),
      });
      if (o.base)
        rows.push({
          what: `${what}, Strata before (${o.base})`,
          strata: cell('strata'),
          peer: `Strata before ${cell('base')}`,
          ratio:
            ok('strata') && ok('base')
              ? ratio(res.median(`storm ${n} strata`), res.median(`storm ${n} base`), false)
              : '—',
          load: res.load(`storm ${n} strata`, `storm ${n} base`),
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
    clients: Number(opts.clients),
    ...(opts.base ? { base: opts.base } : {}),
    sides: opts.sides.split(','),
  });
  publish(
    {
      name: 'storm',
      title: 'Boot storm: N machines powering on within seconds of each other',
      command: `node bench/storm.ts ${argv}`.trim(),
      rows,
      // A run of N machines replaces every earlier row of N machines, whatever its sizes.
      merge: (what) => what.replace(/ machines.*/, ''),
      notes: [
        `Each simulated machine (bench/storm-client.ts; the machines spread over --clients Node processes in one client namespace, one per core unless the command says otherwise, each a disjoint range of MACs, all from one common start) does PXE DHCP (on a thread of its own per process, so a machine answers an OFFER within milliseconds, as firmware does, however busy the process is with downloads), TFTP of undionly.kpxe (blksize 1432, no windowsize, as PXE ROMs ask), DHCP as iPXE, its script over HTTP, the kernel and initramfs (sizes in the row) over HTTP, then a report-in (Strata: an install event with the script's token, on the Node's timeline, sent again up to 5 times on a 5xx answer as the install agent does; peer: a POST nginx answers 204). All done: from the common start to the last report-in; slowest and median: machines' own times from power-on. A machine that fails is counted by the phase it failed in: no OFFER or no ACK (no DHCP answer through the firmware's four tries, 60 s, or four NAKs in a row; a NAK starts DHCP over from DISCOVER, as RFC 2131 has clients do), TFTP (no progress for 10 s), script, HTTP, report. "Simulator stalled": the client processes' worst event-loop delay; a stall of seconds means machines failed or were slow for the simulator, not the server.`,
        'Strata makes a decision per machine (declared Node, lease recorded, script with an install token); dnsmasq + nginx hand every machine the same static script, the lower bound. dnsmasq runs as an admin would for a storm of this size: an address reserved for each MAC (`dhcp-hostsfile`; Strata declares every machine too; from its dynamic pool dnsmasq NAKs about half of a 1,000-machine storm four times in a row, see peerSide), pool and `dhcp-lease-max` larger than the fleet (its default is 1,000 leases), `tftp-max` 5,000 (default 50 concurrent transfers), `no-ping` (Strata does not ping either), its lease file written as it always is. Rows from separate commands (e.g. 5,000 machines with smaller artifacts) are kept when another command writes; each command line above names its run.',
      ],
    },
    write,
  );
  process.exit(0);
}
