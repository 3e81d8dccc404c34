/**
 * TFTP benchmark: CLIENTS clients fetch one FILE-size file (1 MiB, an iPXE binary's size class) at once
 * (bench/tftp-client.ts), from Strata's TFTP server (without and with windowsize) and from tftpd-hpa and
 * dnsmasq, each in its own namespace; at 0 ms and at added delay through a user-space UDP relay
 * (bench/udp-delay.ts: this kernel has no netem). Rounds are interleaved; medians are reported.
 *
 *   node bench/tftp.ts [--clients 100] [--size-kib 1024] [--blksize 1428] [--windowsize 8]
 *                      [--delays 0,5] [--rounds 3] [--write]
 *
 * `--delays` is one-way milliseconds added in each direction (5 → 10 ms of added round trip).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NetnsSet } from '../test/helpers/netns.ts';
import { benchArgs, fmt, publish, REPO, type Row, ratio, Samples, withScratch } from './lib.ts';
import { cpuSeconds, dnsmasqTftp, strataServe, tftpdHpa } from './peers.ts';

const {
  opts: values,
  write,
  argv,
} = benchArgs('node bench/tftp.ts (options in the comment above) [--write]', {
  clients: '100',
  'size-kib': '1024',
  blksize: '1428',
  windowsize: '8',
  delays: '0,5',
  rounds: '3',
  baseline: '',
});

interface Server {
  name: string;
  label: string;
  port: number;
  windowsize: number;
}

export async function runTftp(o: {
  clients: number;
  sizeKib: number;
  blksize: number;
  windowsize: number;
  delays: number[];
  rounds: number;
  /** Another checkout whose Strata TFTP server runs beside this one (before/after in one run). */
  baseline?: string;
}): Promise<Row[]> {
  return withScratch('tftp', async ({ set, dir, cleanup }) => {
    const root = join(dir, 'root');
    execFileSync('mkdir', ['-p', root]);
    writeFileSync(join(root, 'undionly.kpxe'), randomBytes(o.sizeKib * 1024));
    const m = set.segment('t', ['tc']);
    const srv = set.name('t');
    const cli = m.tc!;
    set.addr(srv, 'br0', '10.67.0.1/24');
    set.addr(cli, 'eth0', '10.67.0.2/24');
    const servers: Server[] = [
      { name: 'strata', label: 'Strata, no windowsize', port: 6901, windowsize: 0 },
      { name: 'strata-w', label: `Strata, windowsize ${o.windowsize}`, port: 6901, windowsize: o.windowsize },
      { name: 'hpa', label: 'tftpd-hpa', port: 6902, windowsize: 0 },
      { name: 'dnsmasq', label: 'dnsmasq', port: 69, windowsize: 0 },
    ];
    const pids = new Map<string, number>([['strata', await strataServe(set, srv, 'tftp', root, 6901)]]);
    pids.set('strata-w', pids.get('strata')!);
    if (o.baseline) {
      // The same server from another checkout (e.g. the commit before a change), measured in the same run.
      const pid = await strataServe(set, srv, 'tftp', root, 6904, o.baseline);
      for (const [name, win] of [
        ['before', 0],
        ['before-w', o.windowsize],
      ] as const) {
        const label = `Strata before (${o.baseline}), ${win ? `windowsize ${win}` : 'no windowsize'}`;
        servers.push({ name, label, port: 6904, windowsize: win });
        pids.set(name, pid);
      }
    }
    await tftpdHpa(set, srv, root, 6902);
    await dnsmasqTftp(set, srv, join(dir, 'dnsmasq'), root);
    const res = new Samples();
    const failed = new Map<string, number>();
    for (const delay of o.delays) {
      // One relay per server port (delay 0: straight to the server).
      const target = new Map<number, { host: string; port: number }>();
      for (const [i, port] of [6901, 6902, 69, 6904].entries()) {
        if (delay === 0) target.set(port, { host: '10.67.0.1', port });
        else {
          const relayPort = 17000 + i;
          const relay = set.spawn(cli, process.execPath, [
            join(REPO, 'bench/udp-delay.ts'),
            String(relayPort),
            '10.67.0.1',
            String(port),
            String(delay),
          ]);
          await new Promise<void>((r) => relay.stdout?.once('data', () => r()));
          cleanup.after(() => relay.kill('SIGKILL'));
          target.set(port, { host: '127.0.0.1', port: relayPort });
        }
      }
      for (let round = 0; round < o.rounds; round++) {
        for (const s of servers) {
          const t = target.get(s.port)!;
          const key = `${s.name}@${delay}`;
          await res.measure(key, async () => {
            const pid = pids.get(s.name);
            const cpu0 = pid ? cpuSeconds(pid) : 0;
            const r = await fetchAll(set, cli, t, s.windowsize, o);
            if (pid) res.add(`${key} cpu`, cpuSeconds(pid) - cpu0, { load1: 0, stealPct: 0, busyPct: 0 });
            res.add(`${key} slowest`, r.maxMs, { load1: 0, stealPct: 0, busyPct: 0 });
            failed.set(key, (failed.get(key) ?? 0) + r.failed);
            return r.wallMs;
          });
        }
      }
    }
    const rows: Row[] = [];
    for (const delay of o.delays) {
      const k = (n: string) => `${n}@${delay}`;
      const cpu = (n: string) => (pids.has(n) ? `, server CPU ${fmt(res.median(`${k(n)} cpu`), 2)} s` : '');
      const cell = (n: string) =>
        `${fmt(res.median(k(n)) / 1000, 2)} s (slowest ${fmt(res.median(`${k(n)} slowest`) / 1000, 2)} s${cpu(n)}${failed.get(k(n)) ? `, ${failed.get(k(n))} failed` : ''})`;
      const pairs: [string, string][] = [
        ['strata', 'hpa'],
        ['strata', 'dnsmasq'],
        ['strata-w', 'hpa'],
        ['strata-w', 'dnsmasq'],
      ];
      if (o.baseline) pairs.push(['strata', 'before'], ['strata-w', 'before-w']);
      for (const [a, b] of pairs) {
        const sa = servers.find((s) => s.name === a)!;
        const sb = servers.find((s) => s.name === b)!;
        rows.push({
          what: `${o.clients} × ${o.sizeKib} KiB at once, +${2 * delay} ms round trip: ${sa.label} vs ${sb.label}`,
          strata: cell(a),
          peer: cell(b),
          ratio: ratio(res.median(k(a)), res.median(k(b)), false),
          load: res.load(k(a), k(b)),
        });
      }
    }
    return rows;
  });
}

async function fetchAll(
  set: NetnsSet,
  ns: string,
  t: { host: string; port: number },
  windowsize: number,
  o: { clients: number; blksize: number },
) {
  const r = await set.exec(
    ns,
    process.execPath,
    [
      join(REPO, 'bench/tftp-client.ts'),
      t.host,
      String(t.port),
      'undionly.kpxe',
      String(o.clients),
      String(o.blksize),
      String(windowsize),
    ],
    { timeoutMs: 120_000 },
  );
  if (r.code !== 0) throw new Error(`tftp client exit ${r.code}: ${r.stderr.slice(0, 500)}`);
  return JSON.parse(r.stdout) as { wallMs: number; medianMs: number; maxMs: number; failed: number };
}

if (import.meta.main) {
  const rows = await runTftp({
    clients: Number(values.clients),
    sizeKib: Number(values['size-kib']),
    blksize: Number(values.blksize),
    windowsize: Number(values.windowsize),
    delays: values.delays.split(',').map(Number),
    rounds: Number(values.rounds),
    ...(values.baseline ? { baseline: values.baseline } : {}),
  });
  publish(
    {
      name: values.baseline ? 'tftp-before-after' : 'tftp',
      title: values.baseline
        ? 'TFTP send path: Strata before and after, beside tftpd-hpa and dnsmasq, in one run'
        : 'TFTP: many clients at once, Strata against tftpd-hpa and dnsmasq',
      command: `node bench/tftp.ts ${argv}`.trim(),
      rows,
      notes: [
        `Time until all ${values.clients} clients have the whole file (median of ${values.rounds} interleaved rounds), blksize ${values.blksize}. The clients are one Node process (bench/tftp-client.ts) in a client namespace; the servers share a bridge namespace. Delay: this kernel has no netem, so bench/udp-delay.ts (in the client namespace) holds every datagram for the given time in each direction; its own scheduling adds jitter under load. tftpd-hpa and dnsmasq do not implement windowsize (RFC 7440), so they get the same requests without it.`,
      ],
    },
    write,
  );
  process.exit(0);
}
