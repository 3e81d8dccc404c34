/**
 * Control-plane benchmark: `strata up` on SQLite and on PostgreSQL (scripts/services.sh), NODES Nodes
 * applied in one request, then:
 *   - the apply's time, and how fast the ladder reconciles every Node once (target 1, hardware: none: each
 *     ends waiting for its machine to show up, a step and an event each);
 *   - list latency through the API: paged (`?limit=PAGE`, following `continue`) and the whole set at once;
 *   - get latency (one Node by name), and a CLI `strata get nodes` (process start included);
 *   - the worst event-loop delay in the server through all of it (`perf_hooks.monitorEventLoopDelay`,
 *     loaded with NODE_OPTIONS=--import bench/eld-probe.ts), after start-up, and the longest the loop was
 *     held by work: the main thread's CPU time between two ticks of a 5 ms timer (a delay on a loaded
 *     machine is mostly waiting for a core; this part is what the code holds).
 * The two stores run one after the other, so their columns are not interleaved: read the load beside them.
 *
 *   node bench/control-plane.ts [--nodes 10000] [--page 500] [--gets 300] [--databases sqlite,postgres]
 *                               [--converge-timeout 600] [--prof DIR] [--write]
 * The reconcile wait stops after --converge-timeout seconds and reports how many Nodes were reconciled.
 * --prof DIR runs the server with `--cpu-prof` and leaves its `.cpuprofile` in DIR (see BENCHMARKS.md).
 */
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { postgresSkipReason, withPostgres } from '../test/helpers/services.ts';
import { type StrataServer, startStrata, waitFor } from '../test/helpers/strata.ts';
import {
  benchArgs,
  Cleanup,
  fmt,
  type Load,
  nodesManifest,
  percentile,
  publish,
  REPO,
  type Row,
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
) {
  return withScratch('cp', async ({ dir, cleanup }) => {
    const strata = await startStrata(cleanup, {
      ...(database ? { database } : {}),
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
    writeFileSync(join(dir, `reset-${pid}`), '');
    await waitFor('the probe reset', () => !existsSync(join(dir, `reset-${pid}`)), 10_000, 100);
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
      return { applyS: applyMs / 1000, convergeS, reconciled, pageMs, fullMs, getMs, cliMs };
    });
    await sleep(600);
    const eld = JSON.parse(readFileSync(eldFile, 'utf8')) as { maxMs: number; maxCpuMs: number };
    // The longest stalls, with their end on the profile's clock, beside the profile.
    if (opts.prof) copyFileSync(eldFile, join(opts.prof, `eld-${pid}.json`));
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
}) {
  const results = new Map<string, StoreResult>();
  for (const db of o.databases) {
    if (db === 'postgres') {
      const skip = await postgresSkipReason();
      if (skip) {
        console.error(`control-plane: PostgreSQL skipped (${skip})`);
        continue;
      }
      const c = new Cleanup();
      try {
        const pg = await withPostgres(c);
        results.set(db, await measureStore(o, pg.url));
      } finally {
        await c.run();
      }
    } else results.set(db, await measureStore(o));
  }
  const rows: Row[] = [];
  const p = (xs: number[]) => `p50 ${fmt(percentile(xs, 0.5), 1)} ms, p99 ${fmt(percentile(xs, 0.99), 1)} ms`;
  for (const [db, r] of results) {
    const label = db === 'postgres' ? 'PostgreSQL' : 'SQLite';
    const row = (what: string, value: string) =>
      rows.push({ what: `${label}: ${what}`, strata: value, peer: '—', ratio: '—', load: r.load });
    row(
      `apply ${fmt(o.nodes)} Nodes (one request)`,
      `${fmt(r.applyS, 2)} s (${fmt(o.nodes / r.applyS)} Nodes/s)`,
    );
    row(
      'every Node reconciled once after the apply (a step and an event each)',
      `${fmt(r.convergeS, 1)} s (${fmt(o.nodes / r.convergeS)} Nodes/s)`,
    );
    row(`list, paged (limit ${o.page}), per request`, p(r.pageMs));
    row(`list, all ${fmt(o.nodes)} at once`, p(r.fullMs));
    row('get one Node', p(r.getMs));
    row('CLI `strata get nodes` (process start included)', `median ${fmt(percentile(r.cliMs, 0.5))} ms`);
    row('worst event-loop delay, from the apply to the last request', `${fmt(r.eldMaxMs, 1)} ms`);
    row(
      'longest the loop was held by work (main-thread CPU time between two 5 ms ticks)',
      `${fmt(r.eldMaxCpuMs, 1)} ms`,
    );
  }
  return rows;
}

if (import.meta.main) {
  const rows = await runControlPlane({
    nodes: Number(opts.nodes),
    page: Number(opts.page),
    gets: Number(opts.gets),
    convergeS: Number(opts['converge-timeout']),
    databases: opts.databases.split(','),
  });
  publish(
    {
      name: 'control-plane',
      title: `Control plane: ${fmt(Number(opts.nodes))} Nodes`,
      command: `node bench/control-plane.ts ${argv}`.trim(),
      rows,
      notes: [
        'No peer: the figures are Strata against its targets (list p99 < 50 ms with paging; the event loop never blocked > 100 ms). Requests are made one at a time from the benchmark process over loopback; the list figures include reading the whole body.',
      ],
    },
    write,
  );
  process.exit(0);
}
