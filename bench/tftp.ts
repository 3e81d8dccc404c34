/**
 * TFTP benchmark: CLIENTS clients fetch one FILE-size file (1 MiB, an iPXE binary's size class) at once
 * (bench/tftp-client.ts, spread over CLIENT_PROCS processes), from Strata's TFTP server (without windowsize
 * and with each given windowsize) and from tftpd-hpa and dnsmasq, each in its own namespace; at 0 ms and at
 * added delay through a user-space UDP relay (bench/udp-delay.ts: this kernel has no netem). Rounds are
 * interleaved; medians are reported.
 *
 *   node bench/tftp.ts [--clients 100] [--client-procs 4] [--size-kib 1024] [--blksize 1428]
 *                      [--windowsize 8,16] [--delays 0,5] [--rounds 3] [--warmup 1] [--workers N]
 *                      [--baseline DIR] [--write]
 *
 * `--delays` is one-way milliseconds added in each direction (5 → 10 ms of added round trip). Each server
 * first serves `--warmup` unmeasured rounds at each delay: Strata's transfer processes start on the first
 * request (until then the listener serves alone) and every Node server compiles its hot path then, so
 * without it the median mixes start-up into steady state. Strata's
 * transfers run in --workers processes (default one per core, as a segment's worker runs them; 1 = the
 * listener's process alone); a --baseline checkout runs in as many.
 * Beside the times, each cell counts what slowed a run down, summed over its rounds: the clients' 1 s
 * timeouts, the Strata server's retransmissions, and datagrams the kernel dropped for a full socket buffer
 * (UDP RcvbufErrors + SndbufErrors in the client and server namespaces); the notes give the relay's own
 * lateness.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { NetnsSet } from '../test/helpers/netns.ts';
import {
  benchArgs,
  fmt,
  type LineChannel,
  lineChannel,
  publish,
  REPO,
  type Row,
  ratio,
  Samples,
  withScratch,
} from './lib.ts';
import { cpuSeconds, dnsmasqTftp, strataServe, tftpdHpa } from './peers.ts';

const {
  opts: values,
  write,
  argv,
} = benchArgs('node bench/tftp.ts (options in the comment above) [--write]', {
  clients: '100',
  'client-procs': '4',
  'size-kib': '1024',
  blksize: '1428',
  windowsize: '8,16',
  delays: '0,5',
  rounds: '3',
  warmup: '1',
  baseline: '',
  workers: String(availableParallelism()),
});

interface Server {
  name: string;
  label: string;
  port: number;
  windowsize: number;
  /** The Strata process serving it (CPU time and counters); none for the peers. */
  strata?: Awaited<ReturnType<typeof strataServe>>;
}

interface Relay {
  forwarded: number;
  lateP50Ms: number;
  lateP99Ms: number;
  lateMaxMs: number;
}

/** Datagrams the kernel of namespace `ns` dropped so far for a full socket buffer (both directions). */
function udpDrops(ns: string): number {
  const snmp = execFileSync('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp'], { encoding: 'utf8' });
  const [names, vals] = snmp.split('\n').filter((l) => l.startsWith('Udp:'));
  const n = names!.trim().split(/\s+/);
  const v = vals!.trim().split(/\s+/).map(Number);
  return v[n.indexOf('RcvbufErrors')]! + v[n.indexOf('SndbufErrors')]!;
}

export async function runTftp(o: {
  clients: number;
  clientProcs: number;
  sizeKib: number;
  blksize: number;
  windowsizes: number[];
  delays: number[];
  rounds: number;
  /** Unmeasured rounds before them, per delay. */
  warmup?: number;
  /** Processes running Strata's transfers (spec.tftp.processes; a segment's default is one per core). */
  workers?: number;
  /** Another checkout whose Strata TFTP server runs beside this one (before/after in one run). */
  baseline?: string;
}): Promise<{ rows: Row[]; relay: Map<number, Relay> }> {
  return withScratch('tftp', async ({ set, dir, cleanup }) => {
    const root = join(dir, 'root');
    execFileSync('mkdir', ['-p', root]);
    writeFileSync(join(root, 'undionly.kpxe'), randomBytes(o.sizeKib * 1024));
    const m = set.segment('t', ['tc']);
    const srv = set.name('t');
    const cli = m.tc!;
    set.addr(srv, 'br0', '10.67.0.1/24');
    set.addr(cli, 'eth0', '10.67.0.2/24');
    const strata = await strataServe(set, srv, 'tftp', root, 6901, undefined, o.workers ?? 1);
    const servers: Server[] = [
      { name: 'strata', label: 'Strata, no windowsize', port: 6901, windowsize: 0, strata },
    ];
    for (const w of o.windowsizes)
      servers.push({
        name: `strata-w${w}`,
        label: `Strata, windowsize ${w}`,
        port: 6901,
        windowsize: w,
        strata,
      });
    servers.push(
      { name: 'hpa', label: 'tftpd-hpa', port: 6902, windowsize: 0 },
      { name: 'dnsmasq', label: 'dnsmasq', port: 69, windowsize: 0 },
    );
    if (o.baseline) {
      // The same server from another checkout (e.g. the commit before a change), measured in the same run.
      const before = await strataServe(set, srv, 'tftp', root, 6904, o.baseline, o.workers ?? 1);
      for (const win of [0, ...o.windowsizes]) {
        const label = `Strata before (${o.baseline}), ${win ? `windowsize ${win}` : 'no windowsize'}`;
        servers.push({ name: `before-w${win}`, label, port: 6904, windowsize: win, strata: before });
      }
    }
    // Node's floor: what a bare Node lock-step server (bench/serve.ts tftp-floor) reaches on this machine.
    const floor = await strataServe(set, srv, 'tftp-floor', root, 6905, undefined, o.workers ?? 1);
    const floorLabel = `Node's floor (bare dgram lock-step, ${o.workers ?? 1} process${o.workers === 1 ? '' : 'es'}, no windowsize)`;
    servers.push({ name: 'floor', label: floorLabel, port: 6905, windowsize: 0, strata: floor });
    await tftpdHpa(set, srv, root, 6902);
    await dnsmasqTftp(set, srv, join(dir, 'dnsmasq'), root);
    const res = new Samples();
    const counts = new Map<string, { failed: number; timeouts: number; resent: number; drops: number }>();
    const relayStats = new Map<number, Relay>();
    for (const delay of o.delays) {
      // Per server port, one relay per client process (delay 0: straight to the server): a relay is one
      // event loop, and 100 transfers through one held every datagram ~10 ms longer than asked.
      const target = new Map<number, { host: string; port: string; asks: LineChannel['ask'][] }>();
      for (const [i, port] of [6901, 6902, 69, 6904, 6905].entries()) {
        if (delay === 0) {
          target.set(port, { host: '10.67.0.1', port: String(port), asks: [] });
          continue;
        }
        const relays = Array.from({ length: o.clientProcs }, (_, j) => 17000 + 100 * i + j);
        const asks: LineChannel['ask'][] = [];
        for (const relayPort of relays) {
          const relay = set.spawn(cli, process.execPath, [
            join(REPO, 'bench/udp-delay.ts'),
            String(relayPort),
            '10.67.0.1',
            String(port),
            String(delay),
          ]);
          const channel = lineChannel(relay);
          await channel.next(); // ready
          cleanup.after(() => relay.kill('SIGKILL'));
          asks.push(channel.ask);
        }
        target.set(port, { host: '127.0.0.1', port: relays.join(','), asks });
      }
      const late: Relay[] = [];
      for (let round = 0; round < (o.warmup ?? 0); round++)
        for (const s of servers) await fetchAll(set, cli, target.get(s.port)!, s.windowsize, o);
      for (let round = 0; round < o.rounds; round++) {
        for (const s of servers) {
          const t = target.get(s.port)!;
          const key = `${s.name}@${delay}`;
          await res.measure(key, async () => {
            const pid = s.strata?.pid;
            const cpu0 = pid ? cpuSeconds(pid) : 0;
            const stats0 = await serverStats(s);
            const drops0 = udpDrops(cli) + udpDrops(srv);
            const r = await fetchAll(set, cli, t, s.windowsize, o);
            if (pid) res.add(`${key} cpu`, cpuSeconds(pid) - cpu0, { load1: 0, stealPct: 0, busyPct: 0 });
            res.add(`${key} slowest`, r.maxMs, { load1: 0, stealPct: 0, busyPct: 0 });
            res.add(`${key} median`, r.medianMs, { load1: 0, stealPct: 0, busyPct: 0 });
            const stats1 = await serverStats(s);
            const c = counts.get(key) ?? { failed: 0, timeouts: 0, resent: 0, drops: 0 };
            c.failed += r.failed;
            c.timeouts += r.timeouts;
            c.resent += stats0 && stats1 ? stats1.retransmits - stats0.retransmits : Number.NaN;
            c.drops += udpDrops(cli) + udpDrops(srv) - drops0;
            counts.set(key, c);
            for (const ask of t.asks) {
              const rl = await ask('stats');
              if (rl) late.push(JSON.parse(rl) as Relay);
            }
            return r.wallMs;
          });
        }
      }
      if (late.length) {
        const forwarded = late.reduce((a, l) => a + l.forwarded, 0);
        const worst = (f: (l: Relay) => number) => Math.max(...late.map(f));
        relayStats.set(delay, {
          forwarded,
          lateP50Ms: worst((l) => l.lateP50Ms),
          lateP99Ms: worst((l) => l.lateP99Ms),
          lateMaxMs: worst((l) => l.lateMaxMs),
        });
      }
    }
    const rows: Row[] = [];
    for (const delay of o.delays) {
      const k = (n: string) => `${n}@${delay}`;
      const cell = (s: Server) => {
        const c = counts.get(k(s.name))!;
        const parts = [
          `median client ${fmt(res.median(`${k(s.name)} median`) / 1000, 2)} s`,
          `slowest ${fmt(res.median(`${k(s.name)} slowest`) / 1000, 2)} s`,
        ];
        if (s.strata) parts.push(`server CPU ${fmt(res.median(`${k(s.name)} cpu`), 2)} s`);
        if (c.failed) parts.push(`${c.failed} failed`);
        if (c.timeouts) parts.push(`${c.timeouts} client timeouts`);
        if (c.resent) parts.push(`${fmt(c.resent)} resent`);
        if (c.drops) parts.push(`${fmt(c.drops)} dropped`);
        return `${fmt(res.median(k(s.name)) / 1000, 2)} s (${parts.join(', ')})`;
      };
      const pairs: [string, string][] = [];
      for (const a of ['strata', ...o.windowsizes.map((w) => `strata-w${w}`)])
        pairs.push([a, 'hpa'], [a, 'dnsmasq']);
      pairs.push(['floor', 'hpa'], ['strata', 'floor']);
      if (o.baseline) {
        pairs.push(['strata', 'before-w0']);
        for (const w of o.windowsizes) pairs.push([`strata-w${w}`, `before-w${w}`]);
      }
      for (const [a, b] of pairs) {
        const sa = servers.find((s) => s.name === a)!;
        const sb = servers.find((s) => s.name === b)!;
        rows.push({
          what: `${o.clients} × ${o.sizeKib} KiB at once, +${2 * delay} ms round trip: ${sa.label} vs ${sb.label}`,
          strata: cell(sa),
          peer: cell(sb),
          ratio: ratio(res.median(k(a)), res.median(k(b)), false),
          load: res.load(k(a), k(b)),
        });
      }
    }
    return { rows, relay: relayStats };
  });
}

/** The Strata server's counters (undefined for the peers, and for a checkout whose serve.ts does not answer). */
async function serverStats(s: Server): Promise<{ retransmits: number } | undefined> {
  if (s.name === 'floor') return undefined; // it keeps no counters
  const line = await s.strata?.ask('stats', 1000);
  return line?.startsWith('{') ? (JSON.parse(line) as { retransmits: number }) : undefined;
}

async function fetchAll(
  set: NetnsSet,
  ns: string,
  t: { host: string; port: string },
  windowsize: number,
  o: { clients: number; clientProcs: number; blksize: number },
) {
  const r = await set.exec(
    ns,
    process.execPath,
    [
      join(REPO, 'bench/tftp-client.ts'),
      t.host,
      t.port,
      'undionly.kpxe',
      String(o.clients),
      String(o.blksize),
      String(windowsize),
      String(o.clientProcs),
    ],
    { timeoutMs: 120_000 },
  );
  if (r.code !== 0) throw new Error(`tftp client exit ${r.code}: ${r.stderr.slice(0, 500)}`);
  return JSON.parse(r.stdout) as {
    wallMs: number;
    medianMs: number;
    maxMs: number;
    failed: number;
    timeouts: number;
  };
}

if (import.meta.main) {
  const { rows, relay } = await runTftp({
    clients: Number(values.clients),
    clientProcs: Number(values['client-procs']),
    sizeKib: Number(values['size-kib']),
    blksize: Number(values.blksize),
    windowsizes: values.windowsize.split(',').map(Number),
    delays: values.delays.split(',').map(Number),
    rounds: Number(values.rounds),
    warmup: Number(values.warmup),
    workers: Number(values.workers),
    ...(values.baseline ? { baseline: values.baseline } : {}),
  });
  const lateness = [...relay].map(
    ([d, r]) =>
      `at +${2 * d} ms the relays held ${fmt(r.forwarded)} datagrams, each at most ${fmt(r.lateMaxMs, 1)} ms longer than asked (p50 ${fmt(r.lateP50Ms, 2)} ms, p99 ${fmt(r.lateP99Ms, 2)} ms; the worst case's figures)`,
  );
  const notes = [
    `Time until all ${values.clients} clients have the whole file (median of ${values.rounds} interleaved rounds, after ${values.warmup} unmeasured), blksize ${values.blksize}. Strata runs its transfers in ${values.workers} process${values.workers === '1' ? '' : 'es'} (spec.tftp.processes; its server CPU is theirs and the listener's). The clients run in ${values['client-procs']} Node processes (bench/tftp-client.ts) in a client namespace; the servers share a bridge namespace. tftpd-hpa and dnsmasq do not implement windowsize (RFC 7440), so they get the same requests without it. Counts in a cell are sums over its rounds (absent: none): "client timeouts", a client re-sent its ACK after 1 s without data; "resent", DATA or OACK packets the Strata server sent again after its retransmission timeout; "dropped", datagrams the kernel dropped for a full socket buffer in either namespace; "failed", a transfer made no progress for 10 s.`,
    `Delay: this kernel has no netem, so bench/udp-delay.ts (per server, one Node process per client process, in the client namespace) holds every datagram for the given time in each direction, in one FIFO with one timer, with 4 MiB socket buffers${lateness.length ? `; ${lateness.join('; ')}` : ''}.`,
  ];
  const command = `node bench/tftp.ts ${argv}`.trim();
  // A run with --baseline also measured everything the plain run does: it writes both sections.
  const title = 'TFTP: many clients at once, Strata against tftpd-hpa and dnsmasq';
  publish(
    { name: 'tftp', title, command, rows: rows.filter((r) => !r.what.includes(' vs Strata before')), notes },
    write,
  );
  if (values.baseline) {
    const title = 'TFTP: Strata before and after, beside tftpd-hpa and dnsmasq, in one run';
    publish({ name: 'tftp-before-after', title, command, rows, notes }, write);
  }
  process.exit(0);
}
