/**
 * DHCP benchmark: perfdhcp (Kea's load generator, full DORA exchanges from many MACs) against Strata's
 * DHCP server alone (src/dhcp), Strata through `strata up` (the boot worker, leases made durable through
 * the manager's store before the ACK) and Kea 2.2 (memfile), each on a bridge in a namespace of its own:
 * the highest rate with < 1 % drops along a ramp, and REQUEST→ACK latency at a fixed rate, interleaved,
 * after a warm-up exchange per server that is not counted.
 * --base DIR adds DIR's own `bin/strata up` (a checkout of an earlier commit, e.g. from `git archive`,
 * with node_modules beside it) as "before", in the same interleaved runs.
 *
 *   node bench/dhcp.ts [--rates 250,500,…] [--seconds 4] [--clients 10000] [--latency-rate 200]
 *                      [--rounds 3] [--only strata,strata-up,kea] [--base DIR] [--write]
 */
import { join } from 'node:path';
import { currentNetns, type NetnsSet } from '../test/helpers/netns.ts';
import { startStrata } from '../test/helpers/strata.ts';
import {
  benchArgs,
  type Cleanup,
  fmt,
  have,
  type Load,
  publish,
  type Row,
  ratio,
  Samples,
  underLoad,
  withScratch,
} from './lib.ts';
import { type DhcpPool, dnsmasqDhcp, kea, listening, strataDhcp } from './peers.ts';

const {
  opts: values,
  write,
  argv,
} = benchArgs('node bench/dhcp.ts (options in the comment above) [--write]', {
  rates: '250,500,1000,2000,3000,4000,6000',
  seconds: '4',
  clients: '10000',
  'latency-rate': '200',
  rounds: '3',
  only: 'strata,strata-up,kea',
  base: '',
});

const POOL: DhcpPool = {
  iface: 'br0',
  serverIp: '10.66.0.1',
  subnet: '10.66.0.0/16',
  mask: '255.255.0.0',
  start: '10.66.1.0',
  end: '10.66.200.255',
  leaseTime: 3600,
};

export interface PerfdhcpStats {
  sent: number;
  received: number;
  dropPct: number;
  avgMs: number;
  minMs: number;
  maxMs: number;
}

/** perfdhcp's summary: both exchanges' sent/received/drops and the REQUEST-ACK delays (ms). */
export function parsePerfdhcp(out: string): PerfdhcpStats {
  const r: Record<string, number> = {};
  let block = '';
  for (const line of out.split('\n')) {
    const b = /Statistics for: ([A-Z-]+)/.exec(line);
    if (b) block = b[1]!;
    const m = /^\s*(sent packets|received packets|drops|min delay|avg delay|max delay)\s*:\s*([\d.]+)/.exec(
      line,
    );
    if (m && block) r[`${block} ${m[1]}`] = Number(m[2]);
  }
  const sent = r['DISCOVER-OFFER sent packets'] ?? 0;
  const offers = r['DISCOVER-OFFER received packets'] ?? 0;
  const reqs = r['REQUEST-ACK sent packets'] ?? 0;
  const acks = r['REQUEST-ACK received packets'] ?? 0;
  const dropPct = sent === 0 ? 100 : 100 * Math.max((sent - offers) / sent, reqs ? (reqs - acks) / reqs : 1);
  return {
    sent,
    received: acks,
    dropPct,
    minMs: r['REQUEST-ACK min delay'] ?? Number.NaN,
    avgMs: r['REQUEST-ACK avg delay'] ?? Number.NaN,
    maxMs: r['REQUEST-ACK max delay'] ?? Number.NaN,
  };
}

interface Target {
  name: string;
  label: string;
  client: string;
  start(set: NetnsSet, serverNs: string, dir: string, cleanup: Cleanup): Promise<void>;
}

const TARGETS: Target[] = [
  {
    name: 'strata',
    label: 'Strata DHCP (src/dhcp alone)',
    client: '',
    start: (set, ns) => strataDhcp(set, ns, POOL),
  },
  strataUp('strata-up', 'Strata through `strata up`'),
  { name: 'kea', label: 'Kea 2.2 (memfile)', client: '', start: (set, ns, dir) => kea(set, ns, dir, POOL) },
  {
    name: 'dnsmasq',
    label: 'dnsmasq 2.90 (lease file)',
    client: '',
    start: (set, ns, dir) => dnsmasqDhcp(set, ns, dir, POOL),
  },
];

/** `strata up` (this tree's, or `base`'s: an earlier checkout) serving one Network on the segment. */
function strataUp(name: string, label: string, base?: string): Target {
  return {
    name,
    label,
    client: '',
    start: async (_set, ns, _dir, cleanup) => {
      const strata = await startStrata(cleanup, {
        env: { STRATA_HOST_NETNS: currentNetns(), STRATA_LOG_LEVEL: 'warn' },
        readyTimeoutMs: 60_000,
        ...(base ? { bin: join(base, 'bin/strata') } : {}),
      });
      const manifest = `apiVersion: strata.dev/v1alpha1
kind: Network
metadata: {name: bench}
spec:
  interface: br0
  namespace: ${ns}
  subnet: ${POOL.subnet}
  serverAddress: ${POOL.serverIp}
  pool: {start: ${POOL.start}, end: ${POOL.end}}
  dns: {enabled: false}
  boot: {unknownNodes: ignore}
`;
      const r = await strata.cli(['apply', '-f', '-'], { stdin: manifest });
      if (r.code !== 0) throw new Error(`strata apply: ${r.stderr}`);
      await listening(ns, 'udp', 67, 'strata up boot worker', () => strata.stderr());
    },
  };
}

async function perfdhcp(set: NetnsSet, ns: string, rate: number, clients: number, seconds: number) {
  const r = await set.exec(
    ns,
    'perfdhcp',
    ['-4', '-r', String(rate), '-R', String(clients), '-p', String(seconds), '-l', 'eth0'],
    { timeoutMs: (seconds + 20) * 1000 },
  );
  if (![0, 3].includes(r.code ?? -1)) throw new Error(`perfdhcp exit ${r.code}: ${r.stderr.slice(0, 500)}`);
  return parsePerfdhcp(r.stdout);
}

export async function runDhcp(o: {
  rates: number[];
  seconds: number;
  clients: number;
  latencyRate: number;
  rounds: number;
  only?: string[];
  base?: string;
}): Promise<Row[]> {
  if (!have('perfdhcp')) throw new Error('perfdhcp missing: bash scripts/setup.sh installs kea-admin');
  return withScratch('dhcp', async ({ set, dir, cleanup }) => {
    const all = o.base
      ? [...TARGETS, strataUp('strata-up-base', `Strata through \`strata up\`, before (${o.base})`, o.base)]
      : TARGETS;
    const targets = all.filter((t) => !o.only || o.only.includes(t.name) || t.name === 'strata-up-base');
    for (const [i, t] of targets.entries()) {
      const m = set.segment(`d${i}`, [`d${i}c`]);
      const srv = set.name(`d${i}`);
      t.client = m[`d${i}c`]!;
      set.addr(srv, 'br0', `${POOL.serverIp}/16`);
      set.ip(srv, 'route', 'add', '255.255.255.255', 'dev', 'br0');
      set.addr(t.client, 'eth0', '10.66.0.2/16');
      await t.start(set, srv, join(dir, t.name), cleanup);
    }
    // A warm-up exchange per server, not counted: the first seconds after a start (JIT, the worker's HTTP
    // processes forking, the store's first writes) say nothing about the rate it holds.
    for (const t of targets) await perfdhcp(set, t.client, o.rates[0]!, o.clients, 2);
    // Rate ramp, interleaved.
    const best = new Map<string, { rate: number; load: Load }>();
    const alive = new Set(targets.map((t) => t.name));
    for (const rate of o.rates) {
      for (const t of targets.filter((x) => alive.has(x.name))) {
        const { value: s, load } = await underLoad(() => perfdhcp(set, t.client, rate, o.clients, o.seconds));
        console.error(
          `dhcp ramp ${t.name} ${rate}/s: drops ${s.dropPct.toFixed(2)} % (${loadTextShort(load)})`,
        );
        if (s.dropPct < 1) best.set(t.name, { rate, load });
        else alive.delete(t.name);
      }
    }
    // Latency at a fixed rate, interleaved rounds.
    const lat = new Samples();
    for (let round = 0; round < o.rounds; round++) {
      for (const t of targets) {
        await lat.measure(`${t.name} avg`, async () => {
          const s = await perfdhcp(set, t.client, o.latencyRate, o.clients, o.seconds);
          lat.add(`${t.name} max`, s.maxMs, { load1: 0, stealPct: 0, busyPct: 0 });
          return s.avgMs;
        });
      }
    }
    const rows: Row[] = [];
    const peers = targets.filter((t) => !t.name.startsWith('strata'));
    for (const s of targets.filter((t) => t.name.startsWith('strata'))) {
      for (const p of peers) {
        const a = best.get(s.name);
        const b = best.get(p.name);
        rows.push({
          what: `highest rate < 1 % drops (DORA/s): ${s.label} vs ${p.label}`,
          strata: a ? `${fmt(a.rate)}/s` : 'none',
          peer: b ? `${fmt(b.rate)}/s` : 'none',
          ratio: ratio(a?.rate ?? 0, b?.rate ?? 0, true),
          load: (a ?? b)?.load ?? lat.load(),
        });
        const [ka, kb] = [s.name, p.name];
        rows.push({
          what: `REQUEST→ACK at ${o.latencyRate}/s, avg (max) ms: ${s.label} vs ${p.label}`,
          strata: `${fmt(lat.median(`${ka} avg`), 2)} (${fmt(lat.median(`${ka} max`), 1)})`,
          peer: `${fmt(lat.median(`${kb} avg`), 2)} (${fmt(lat.median(`${kb} max`), 1)})`,
          ratio: ratio(lat.median(`${ka} avg`), lat.median(`${kb} avg`), false),
          load: lat.load(`${ka} avg`, `${kb} avg`),
        });
      }
    }
    return rows;
  });
}

function loadTextShort(l: Load): string {
  return `load ${l.load1.toFixed(2)}, steal ${l.stealPct.toFixed(1)} %`;
}

if (import.meta.main) {
  const rows = await runDhcp({
    rates: values.rates.split(',').map(Number),
    seconds: Number(values.seconds),
    clients: Number(values.clients),
    latencyRate: Number(values['latency-rate']),
    rounds: Number(values.rounds),
    only: values.only.split(','),
    ...(values.base ? { base: values.base } : {}),
  });
  publish(
    {
      name: 'dhcp',
      title: 'DHCP: perfdhcp against Strata and Kea',
      command: `node bench/dhcp.ts ${argv}`.trim(),
      rows,
      notes: [
        `perfdhcp (Kea 2.2) runs full DORA exchanges from ${values.clients} distinct MACs, so each server's lease database grows to that many leases. Each server runs alone on a bridge in its own namespace, perfdhcp in a client namespace on that bridge; servers run side by side and are measured in turn, at each rate of the ramp. The load generator shares the two cores with the server.`,
        "dnsmasq is not in this table: dnsmasq 2.90 answered none of perfdhcp's requests here (perfdhcp 2.2 sends them as a relay would, giaddr set, from port 67; dnsmasq logged the packets and sent nothing), so its DHCP is measured in the boot storm, with a client that asks as firmware does.",
      ],
    },
    write,
  );
  process.exit(0);
}
