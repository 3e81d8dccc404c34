/**
 * HTTP benchmark: the boot worker's HTTP server (src/boot/http.ts, `serveHttp` as a segment's worker runs
 * it) against nginx serving the same directory, both in one namespace, loaded by wrk from a client
 * namespace: one client downloading a large artifact back to back, CLIENTS clients downloading it at
 * once, small requests for a 2 KiB static file, and small requests for iPXE scripts (Strata answers
 * `/boot/ipxe?mac=…` through its resolver, nginx a static file of the same size), over keep-alive.
 * Rounds are interleaved; medians are reported. The worker runs alone (spec.boot.httpProcesses 1, as
 * before) and with --workers N processes (default: one per core, the worker's default) sharing the port
 * with SO_REUSEPORT; --workers 1 leaves that side out.
 * A further side is Strata with its artifacts handed to nginx (spec.boot.artifactServer nginx): the boot
 * worker's own nginx (as many worker processes as --workers) on the port, serving /artifacts/ with
 * sendfile and passing the scripts to the worker's Node server, which decides them.
 * --base DIR adds "before" sides: DIR's own bench/serve.ts (a checkout of an earlier commit, e.g. from
 * `git archive`, with node_modules beside it) in one process, in --workers processes, and with its
 * artifacts handed to nginx, in the same interleaved rounds.
 *
 * Each round takes the sides in another order (rotated by one), so no side always follows the same one.
 *
 *   node bench/http.ts [--size-mib 50] [--clients 200] [--seconds 5] [--rounds 3] [--workers N]
 *                      [--base DIR] [--cases one,many,static,small] [--write]
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { NetnsSet } from '../test/helpers/netns.ts';
import { benchArgs, fmt, have, publish, type Row, ratio, Samples, withScratch } from './lib.ts';
import { nginx, strataServe } from './peers.ts';

const {
  opts: values,
  write,
  argv,
} = benchArgs('node bench/http.ts (options in the comment above)', {
  'size-mib': '50',
  clients: '200',
  seconds: '5',
  rounds: '3',
  workers: String(availableParallelism()),
  base: '',
  cases: 'one,many,static,small',
});

const UNITS: Record<string, number> = { B: 1, KB: 2 ** 10, MB: 2 ** 20, GB: 2 ** 30 };

/** wrk's requests/s and transfer/s (bytes). */
export function parseWrk(out: string): { rps: number; bps: number; errors: number } {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const t = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/.exec(out);
  const bps = t ? Number(t[1]) * UNITS[t[2]!]! : Number.NaN;
  const errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  return { rps, bps, errors };
}

async function wrk(set: NetnsSet, ns: string, url: string, connections: number, seconds: number) {
  const threads = Math.min(2, connections);
  const r = await set.exec(
    ns,
    'wrk',
    ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, url],
    {
      timeoutMs: (seconds + 30) * 1000,
    },
  );
  if (r.code !== 0) throw new Error(`wrk exit ${r.code}: ${r.stderr.slice(0, 500)}`);
  const w = parseWrk(r.stdout);
  if (w.errors) throw new Error(`wrk: ${w.errors} error responses from ${url}`);
  return w;
}

export async function runHttp(o: {
  sizeMib: number;
  clients: number;
  seconds: number;
  rounds: number;
  workers: number;
  /** A checkout whose bench/serve.ts is measured as "before". */
  base?: string;
  /** Which cases run (default all): one, many, static, small. */
  cases?: string[];
}) {
  if (!have('wrk')) throw new Error('wrk missing: bash scripts/setup.sh installs it');
  return withScratch('http', async ({ set, dir }) => {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'artifacts'), { recursive: true });
    mkdirSync(join(root, 'boot'), { recursive: true });
    // Strata's artifacts root is root/artifacts (served under /artifacts/); nginx serves root itself.
    writeFileSync(join(root, 'artifacts', 'initrd.img'), randomBytes(o.sizeMib * 2 ** 20));
    // A small static file (an iPXE binary's menu or a kickstart's size): small requests that need no decision.
    writeFileSync(join(root, 'artifacts', 'small.txt'), randomBytes(2048).toString('base64').slice(0, 2048));
    const script = '#!ipxe\nchain /artifacts/kernel?mac=52:54:00:12:34:56\n';
    writeFileSync(join(root, 'boot', 'ipxe'), script);
    const m = set.segment('h', ['hc']);
    const srv = set.name('h');
    const cli = m.hc!;
    set.addr(srv, 'br0', '10.68.0.1/24');
    set.addr(cli, 'eth0', '10.68.0.2/24');
    await strataServe(set, srv, 'http', join(root, 'artifacts'), 8081);
    await nginx(set, srv, join(dir, 'nginx'), root, 8082);
    const base = {
      strata: 'http://10.68.0.1:8081',
      nginx: 'http://10.68.0.1:8082',
      multi: 'http://10.68.0.1:8083',
      base: 'http://10.68.0.1:8084',
      handed: 'http://10.68.0.1:8085',
      floor: 'http://10.68.0.1:8086',
      basehanded: 'http://10.68.0.1:8087',
      basemulti: 'http://10.68.0.1:8088',
    };
    const sides: (keyof typeof base)[] = ['strata', 'nginx'];
    if (o.workers > 1) {
      await strataServe(set, srv, 'http', join(root, 'artifacts'), 8083, undefined, o.workers);
      sides.push('multi');
    }
    if (o.base) {
      await strataServe(set, srv, 'http', join(root, 'artifacts'), 8084, o.base);
      sides.push('base');
      if (o.workers > 1) {
        await strataServe(set, srv, 'http', join(root, 'artifacts'), 8088, o.base, o.workers);
        sides.push('basemulti');
      }
    }
    await strataServe(set, srv, 'http', join(root, 'artifacts'), 8085, undefined, o.workers, 'nginx');
    sides.push('handed');
    if (o.base) {
      await strataServe(set, srv, 'http', join(root, 'artifacts'), 8087, o.base, o.workers, 'nginx');
      sides.push('basehanded');
    }
    // Node's own floor for small answers (scripts only): bare node:http in as many processes.
    await strataServe(set, srv, 'floor', root, 8086, undefined, o.workers);
    const cases = [
      {
        key: 'one',
        what: `one client, ${o.sizeMib} MiB artifact back to back`,
        path: '/artifacts/initrd.img',
        c: 1,
        unit: 'MiB/s',
      },
      {
        key: 'many',
        what: `${o.clients} clients downloading the ${o.sizeMib} MiB artifact at once`,
        path: '/artifacts/initrd.img',
        c: o.clients,
        unit: 'MiB/s',
      },
      {
        key: 'static',
        what: 'small static file (2 KiB) requests, 50 keep-alive connections',
        path: '/artifacts/small.txt',
        c: 50,
        unit: 'req/s',
      },
      {
        key: 'small',
        what: 'iPXE script requests, 50 keep-alive connections',
        path: '/boot/ipxe?mac=52:54:00:12:34:56',
        c: 50,
        unit: 'req/s',
      },
    ].filter((c) => !o.cases || o.cases.includes(c.key));
    if (!cases.length) throw new Error(`--cases ${o.cases}: choose among one, many, static, small`);
    const res = new Samples();
    for (let round = 0; round < o.rounds; round++) {
      for (const c of cases) {
        const all = c.key === 'small' ? [...sides, 'floor' as const] : sides;
        const order = all.map((_, i) => all[(i + round) % all.length]!);
        for (const side of order) {
          await res.measure(`http ${c.key} ${side}`, async () => {
            const w = await wrk(set, cli, base[side] + c.path, c.c, o.seconds);
            return c.unit === 'req/s' ? w.rps : w.bps / 2 ** 20;
          });
        }
      }
    }
    return cases.flatMap((c): Row[] => {
      const b = `http ${c.key} nginx`;
      const row = (side: string, what: string): Row => {
        const a = `http ${c.key} ${side}`;
        return {
          what,
          strata: `${fmt(res.median(a))} ${c.unit}`,
          peer: `nginx ${fmt(res.median(b))} ${c.unit}`,
          ratio: ratio(res.median(a), res.median(b), true),
          load: res.load(a, b),
        };
      };
      return [
        row('strata', c.what),
        ...(sides.includes('base') ? [row('base', `${c.what}, before (${o.base})`)] : []),
        ...(sides.includes('multi') ? [row('multi', `${c.what}, Strata in ${o.workers} processes`)] : []),
        ...(sides.includes('basemulti')
          ? [row('basemulti', `${c.what}, Strata in ${o.workers} processes, before (${o.base})`)]
          : []),
        row(
          'handed',
          `${c.what}, artifacts handed to nginx (${c.key === 'small' ? 'scripts through nginx to Strata' : 'nginx serves them'})`,
        ),
        ...(sides.includes('basehanded')
          ? [row('basehanded', `${c.what}, artifacts handed to nginx, before (${o.base})`)]
          : []),
        ...(c.key === 'small'
          ? [row('floor', `${c.what}: Node's floor, bare node:http in ${o.workers} process(es), no decision`)]
          : []),
      ];
    });
  });
}

if (import.meta.main) {
  const rows = await runHttp({
    sizeMib: Number(values['size-mib']),
    clients: Number(values.clients),
    seconds: Number(values.seconds),
    rounds: Number(values.rounds),
    workers: Number(values.workers),
    ...(values.base ? { base: values.base } : {}),
    cases: values.cases.split(',').filter(Boolean),
  });
  publish(
    {
      name: 'http',
      title: 'HTTP: artifacts and iPXE scripts, Strata against nginx',
      command: `node bench/http.ts ${argv}`.trim(),
      rows,
      notes: [
        `wrk (2 threads) runs ${values.seconds} s per case from a client namespace, on the same two cores as the servers; median of ${values.rounds} interleaved rounds. nginx: worker_processes auto, sendfile, no access log. Strata: bench/serve.ts, the boot worker's own HTTP server (src/boot/http.ts) alone (httpProcesses 1), and (rows "in N processes") with httpProcesses N: N processes sharing the port with SO_REUSEPORT, script decisions and fetch reports going to the worker over IPC. Rows "artifacts handed to nginx": bench/serve.ts with spec.boot.artifactServer nginx, the worker's own nginx (${values.workers} worker processes, sendfile, each /artifacts/ fetch logged to the worker (a buffered log file it reads as it grows; over syslog UDP before 4 December 2026) and reported as Node's handler reports it) on the port; script requests go through it to the worker's Node server on a unix socket (keep-alive upstream), which decides them as in the other rows. Row "Node's floor": bench/serve.ts floor, a bare node:http handler answering the same bytes in ${values.workers} processes on the port (SO_REUSEPORT), with no routing, decision or IPC: the most any Node server answers here, for reading the script rows against.`,
      ],
    },
    write,
  );
  process.exit(0);
}
