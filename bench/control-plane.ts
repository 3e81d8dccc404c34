/**
 * Control-plane benchmark: `strata up` on SQLite and on PostgreSQL (scripts/services.sh), NODES Nodes
 * applied in one request, then:
 *   - the apply's time, and how fast the ladder reconciles every Node once (target 1, hardware: none: each
 *     ends waiting for its machine to show up, a step and an event each);
 *   - list latency through the API: paged (`?limit=PAGE`, following `continue`; also split into the pages
 *     read while the ladder still reconciled, writing a step and an event per Node, and those read after)
 *     and the whole set at once;
 *   - get latency (one Node by name), and a CLI `strata get nodes` (process start included);
 *   - the worst event-loop delay in the server through all of it (`perf_hooks.monitorEventLoopDelay`,
 *     loaded with NODE_OPTIONS=--import bench/eld-probe.ts), after start-up, and the longest the loop was
 *     held by work: the main thread's CPU time between two ticks of a 5 ms timer (a delay on a loaded
 *     machine is mostly waiting for a core; this part is what the code holds).
 * The two stores run one after the other, so their columns are not interleaved: read the load beside them.
 * --base DIR adds a "before" side (the peer column): DIR's own bin/strata (a checkout of an earlier
 * commit, e.g. `git archive COMMIT | tar -x -C DIR && ln -s $PWD/node_modules DIR/`), run alternately
 * with this tree's, --rounds times each per store; the figures are over all rounds (each run's are printed).
 *
 *   node bench/control-plane.ts [--nodes 10000] [--page 500] [--gets 300] [--databases sqlite,postgres]
 *                               [--converge-timeout 600] [--prof DIR] [--base DIR] [--rounds 1] [--write]
 * The reconcile wait stops after --converge-timeout seconds and reports how many Nodes were reconciled.
 * --prof DIR runs the server with `--cpu-prof` and leaves its `.cpuprofile` in DIR (see BENCHMARKS.md).
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { postgresSkipReason, withPostgres } from '../test/helpers/services.ts';
import { type StrataServer, startStrata, waitFor } from '../test/helpers/strata.ts';
import {
  benchArgs,
  Cleanup,
  fmt,
  type Load,
  median,
  nodesManifest,
  percentile,
  publish,
  REPO,
  type Row,
  ratio,
  readProbe,
  resetProbes,
  sleep,
  underLoad,
  withScratch,
} from './lib.ts';

const { opts, write, argv } = benchArgs('node bench/control-plane.ts (options in the comment above)', {
  nodes: '10000',
  page: '500',
  gets: '300',
  databases: 'sqlite,postgres',
  'converge-timeout': '600',
  prof: '',
  base: '',
  rounds: '1',
});

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

interface StoreResult {
  applyS: number;
  convergeS: number;
  reconciled: number;
  pageMs: number[];
  /** The pages of pageMs read while the ladder still reconciled (the rest were read after). */
  busyPageMs: number[];
  fullMs: number[];
  getMs: number[];
  cliMs: number[];
  eldMaxMs: number;
  eldMaxCpuMs: number;
  load: Load;
}

async function measureStore(
  o: { nodes: number; page: number; gets: number; convergeS: number },
  database?: string,
  base?: string,
) {
  return withScratch('cp', async ({ dir, cleanup }) => {
    const strata = await startStrata(cleanup, {
      ...(database ? { database } : {}),
      ...(base ? { bin: join(base, 'bin/strata') } : {}),
      env: {
        STRATA_LOG_LEVEL: 'warn',
        STRATA_BENCH_ELD_DIR: dir,
        NODE_OPTIONS: [
          `--import ${join(REPO, 'bench/eld-probe.ts')}`,
          ...(opts.prof ? [`--cpu-prof --cpu-prof-dir=${opts.prof}`] : []),
        ].join(' '),
      },
      readyTimeoutMs: 60_000,
    });
    console.error('control-plane: strata up ready', strata.url);
    const pid = strata.child.pid!;
    const eldFile = join(dir, `eld-${pid}.json`);
    await waitFor('the event-loop probe', () => existsSync(eldFile), 10_000, 100);
    await resetProbes(dir, [pid]);
    const call = (path: string, init: RequestInit = {}) =>
      fetch(strata.url + path, {
        ...init,
        headers: { authorization: `Bearer ${strata.token}`, ...(init.headers as Record<string, string>) },
      }).then(async (r) => {
        const text = await r.text();
        if (!r.ok) throw new Error(`${path}: ${r.status} ${text.slice(0, 300)}`);
        return text;
      });
    const { value, load } = await underLoad(async () => {
      const applyMs = await timed(() =>
        call('/api/v1/apply', {
          method: 'POST',
          headers: { 'content-type': 'application/yaml' },
          body: nodesManifest(o.nodes, 1, { providers: { hardware: 'none' } }),
        }),
      );
      const t0 = performance.now();
      const pageMs: number[] = [];
      let reconciled = 0;
      while (reconciled < o.nodes && performance.now() - t0 < o.convergeS * 1000) {
        reconciled = await countAtState(call, o.page, pageMs);
        console.error(`control-plane: ${reconciled} of ${o.nodes} Nodes reconciled`);
        if (reconciled < o.nodes) await sleep(1000);
      }
      const convergeS = (performance.now() - t0) / 1000;
      const busyPageMs = [...pageMs];
      for (let i = 0; i < 3; i++) await countAtState(call, o.page, pageMs);
      const fullMs: number[] = [];
      for (let i = 0; i < 10; i++) fullMs.push(await timed(() => call('/api/v1/nodes')));
      const getMs: number[] = [];
      for (let i = 0; i < o.gets; i++)
        getMs.push(await timed(() => call(`/api/v1/nodes/bench-${(i * 7919) % o.nodes}`)));
      const cliMs: number[] = [];
      for (let i = 0; i < 3; i++)
        cliMs.push(
          await timed(async () => {
            const r = await strata.cli(['get', 'nodes'], { timeoutMs: 120_000 });
            if (r.code !== 0) throw new Error(`strata get nodes: ${r.stderr}`);
          }),
        );
      return { applyS: applyMs / 1000, convergeS, reconciled, pageMs, busyPageMs, fullMs, getMs, cliMs };
    });
    await sleep(600);
    const eld = readProbe(dir, pid);
    // The longest stalls, with their end on the profile's clock, beside the profile.
    if (opts.prof) {
      // Node makes the profile's directory only when it writes the profile, at exit: after this copy.
      mkdirSync(opts.prof, { recursive: true });
      copyFileSync(eldFile, join(opts.prof, `eld-${pid}.json`));
    }
    await stopQuietly(strata);
    return { ...value, eldMaxMs: eld.maxMs, eldMaxCpuMs: eld.maxCpuMs, load } satisfies StoreResult;
  });
}

async function stopQuietly(strata: StrataServer) {
  await strata.stop().catch(() => {});
}

/** Pages through all Nodes (`limit` per request, timing each request) and counts those the ladder has reconciled (a step on their status). */
async function countAtState(call: (p: string) => Promise<string>, limit: number, times: number[]) {
  let n = 0;
  let cont: string | undefined;
  do {
    const path = `/api/v1/nodes?limit=${limit}${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`;
    const t0 = performance.now();
    const text = await call(path);
    times.push(performance.now() - t0);
    const page = JSON.parse(text) as {
      metadata: { continue?: string };
      items: { status?: { step?: unknown } }[];
    };
    n += page.items.filter((i) => i.status?.step !== undefined).length;
    cont = page.metadata.continue;
  } while (cont);
  return n;
}

export async function runControlPlane(o: {
  nodes: number;
  page: number;
  gets: number;
  convergeS: number;
  databases: string[];
  base?: string;
  rounds?: number;
}) {
  const results = new Map<string, { now: StoreResult[]; base: StoreResult[] }>();
  for (const db of o.databases) {
    if (db === 'postgres') {
      const skip = await postgresSkipReason();
      if (skip) {
        console.error(`control-plane: PostgreSQL skipped (${skip})`);
        continue;
      }
    }
    const runs = { now: [] as StoreResult[], base: [] as StoreResult[] };
    results.set(db, runs);
    for (let round = 0; round < (o.rounds ?? 1); round++)
      for (const side of o.base ? (['base', 'now'] as const) : (['now'] as const)) {
        const base = side === 'base' ? o.base : undefined;
        let r: StoreResult;
        if (db === 'postgres') {
          const c = new Cleanup();
          try {
            r = await measureStore(o, (await withPostgres(c)).url, base);
          } finally {
            await c.run();
          }
        } else r = await measureStore(o, undefined, base);
        runs[side].push(r);
        console.error(
          `control-plane: ${db} ${side === 'base' ? `before (${o.base})` : 'this tree'}: ${summary(r)}`,
        );
      }
  }
  const rows: Row[] = [];
  const p = (xs: number[]) => `p50 ${fmt(percentile(xs, 0.5), 1)} ms, p99 ${fmt(percentile(xs, 0.99), 1)} ms`;
  for (const [db, { now, base }] of results) {
    if (!now.length) continue;
    const label = db === 'postgres' ? 'PostgreSQL' : 'SQLite';
    /** A figure over every run of a side: samples pooled, single values by median. */
    const of = (rs: StoreResult[]) => ({
      applyS: median(rs.map((r) => r.applyS)),
      convergeS: median(rs.map((r) => r.convergeS)),
      pageMs: rs.flatMap((r) => r.pageMs),
      busyPageMs: rs.flatMap((r) => r.busyPageMs),
      quietPageMs: rs.flatMap((r) => r.pageMs.slice(r.busyPageMs.length)),
      fullMs: rs.flatMap((r) => r.fullMs),
      getMs: rs.flatMap((r) => r.getMs),
      cliMs: rs.flatMap((r) => r.cliMs),
      eldMaxMs: median(rs.map((r) => r.eldMaxMs)),
      eldMaxCpuMs: median(rs.map((r) => r.eldMaxCpuMs)),
      load: rs[rs.length - 1]!.load,
    });
    const r = of(now);
    const b = base.length ? of(base) : undefined;
    const row = (what: string, value: (x: typeof r) => string, n?: (x: typeof r) => number) =>
      rows.push({
        what: `${label}: ${what}`,
        strata: value(r),
        peer: b ? value(b) : '—',
        ratio: b && n ? ratio(n(r), n(b), false) : '—',
        load: r.load,
      });
    row(
      `apply ${fmt(o.nodes)} Nodes (one request)`,
      (x) => `${fmt(x.applyS, 2)} s (${fmt(o.nodes / x.applyS)} Nodes/s)`,
      (x) => x.applyS,
    );
    row(
      'every Node reconciled once after the apply (a step and an event each)',
      (x) => `${fmt(x.convergeS, 1)} s (${fmt(o.nodes / x.convergeS)} Nodes/s)`,
      (x) => x.convergeS,
    );
    row(
      `list, paged (limit ${o.page}), per request`,
      (x) => p(x.pageMs),
      (x) => percentile(x.pageMs, 0.99),
    );
    row(
      `list, paged (limit ${o.page}), per request, while the ladder reconciled them (${fmt(r.busyPageMs.length)} requests)`,
      (x) => p(x.busyPageMs),
      (x) => percentile(x.busyPageMs, 0.99),
    );
    row(
      `list, paged (limit ${o.page}), per request, once all were reconciled (${fmt(r.quietPageMs.length)} requests)`,
      (x) => p(x.quietPageMs),
      (x) => percentile(x.quietPageMs, 0.99),
    );
    row(
      `list, all ${fmt(o.nodes)} at once`,
      (x) => p(x.fullMs),
      (x) => percentile(x.fullMs, 0.5),
    );
    row(
      'get one Node',
      (x) => p(x.getMs),
      (x) => percentile(x.getMs, 0.99),
    );
    row(
      'CLI `strata get nodes` (process start included)',
      (x) => `median ${fmt(percentile(x.cliMs, 0.5))} ms`,
      (x) => percentile(x.cliMs, 0.5),
    );
    row(
      'worst event-loop delay, from the apply to the last request',
      (x) => `${fmt(x.eldMaxMs, 1)} ms`,
      (x) => x.eldMaxMs,
    );
    row(
      'longest the loop was held by work (main-thread CPU time between two 5 ms ticks)',
      (x) => `${fmt(x.eldMaxCpuMs, 1)} ms`,
      (x) => x.eldMaxCpuMs,
    );
  }
  return rows;
}

/** One run's figures on one line (stderr), so each run of a before/after can be read. */
function summary(r: StoreResult): string {
  const q = (xs: number[], p: number) => fmt(percentile(xs, p), 1);
  return (
    `apply ${fmt(r.applyS, 1)} s, reconciled ${r.reconciled} in ${fmt(r.convergeS, 1)} s, ` +
    `paged p50/p99 ${q(r.pageMs, 0.5)}/${q(r.pageMs, 0.99)} ms (while reconciling ${q(r.busyPageMs, 0.99)}, ` +
    `after ${q(r.pageMs.slice(r.busyPageMs.length), 0.99)}), whole p50 ${q(r.fullMs, 0.5)} ms, ` +
    `get p50/p99 ${q(r.getMs, 0.5)}/${q(r.getMs, 0.99)} ms, worst delay ${fmt(r.eldMaxMs, 1)} ms, ` +
    `held ${fmt(r.eldMaxCpuMs, 1)} ms, load ${fmt(r.load.load1, 2)}`
  );
}

if (import.meta.main) {
  const rows = await runControlPlane({
    nodes: Number(opts.nodes),
    page: Number(opts.page),
    gets: Number(opts.gets),
    convergeS: Number(opts['converge-timeout']),
    databases: opts.databases.split(','),
    ...(opts.base ? { base: opts.base } : {}),
    rounds: Number(opts.rounds),
  });
  publish(
    {
      name: 'control-plane',
      title: `Control plane: ${fmt(Number(opts.nodes))} Nodes`,
      command: `node bench/control-plane.ts ${argv}`.trim(),
      rows,
      notes: [
        opts.base
          ? `The peer column is the code before (${opts.base}, its own bin/strata), run alternately with this tree's, ${opts.rounds} run(s) of each per store: latencies pooled over the runs, single figures their median; the ratio is before/after (>1 = faster now). Targets: list p99 < 50 ms with paging; the event loop never blocked > 100 ms.`
          : 'No peer: the figures are Strata against its targets (list p99 < 50 ms with paging; the event loop never blocked > 100 ms).',
        'Requests are made one at a time from the benchmark process over loopback; the list figures include reading the whole body.',
      ],
    },
    write,
  );
  process.exit(0);
}
