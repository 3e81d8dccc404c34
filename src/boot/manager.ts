/**
 * The boot manager (the seed's DHCP, DNS, PXE and TFTP managers in one place): answers each segment's
 * worker on the transport and wires the boot layer's jobs, one file each: the workers' configuration and
 * its fan-out (config.ts), their leases kept in the store (here), what every machine boots (scripts.ts,
 * deciding through decide.ts), the workers' reports made into timelines, evidence and enrolments
 * (reports.ts), and the steps 1 → 2 and 2 → 3 that read that evidence (steps.ts).
 */
import type { ManagerContext } from '../core/layer.ts';
import { cleanText } from '../core/limits.ts';
import { addMetricsSource, type MetricsJson } from '../core/metrics.ts';
import type { BootScriptResult } from '../ipxe/http.ts';
import { buildConfig, placements, startConfigFanOut } from './config.ts';
import { leaseCollection } from './nodes.ts';
import type {
  BootConfig,
  BootReport,
  BootScriptRequest,
  Lease,
  NetworkPlacement,
  WorkerStatus,
} from './protocol.ts';
import { subjects } from './protocol.ts';
import { onReport } from './reports.ts';
import { answerScript } from './scripts.ts';
import { recordWorkerStatus } from './status.ts';

export async function startBootManager(ctx: ManagerContext): Promise<() => Promise<void>> {
  // Workers get a fresh configuration whenever what they hold changes (config.ts).
  const fanOut = await startConfigFanOut(ctx);
  const subs = [
    // Workers ask for the segments when they start (and after a restart of either side): without this
    // answer a restarted `strata up` would serve no Network until one changed.
    await ctx.transport.serve<Record<string, never>, NetworkPlacement[]>(subjects.networks, () =>
      placements(ctx),
    ),
    await ctx.transport.serve<{ network: string }, BootConfig>(subjects.config, (q) =>
      buildConfig(ctx, q.network),
    ),
    await ctx.transport.serve<{ network: string }, Lease[]>(subjects.leasesLoad, async (q) =>
      (await ctx.store.listRecords(leaseCollection(q.network))).map((r) => r.value as Lease),
    ),
    await ctx.transport.serve<{ network: string; leases: Lease[] }, { ok: boolean }>(
      subjects.leasesPersist,
      async (q) => {
        await ctx.store.putRecords(
          leaseCollection(q.network),
          // The host name is what the client's packet said: stored like every string from the wire.
          q.leases.map((l) => ({
            key: l.ip,
            value: l.hostname ? { ...l, hostname: cleanText(l.hostname, 64) } : l,
          })),
        );
        fanOut.leasesChanged(
          q.network,
          q.leases.map((l) => l.mac),
        );
        return { ok: true };
      },
    ),
    await ctx.transport.serve<BootScriptRequest, BootScriptResult>(subjects.script, (q) =>
      answerScript(ctx, q),
    ),
    await ctx.transport.subscribe<BootReport>(subjects.report, (r) => {
      void onReport(ctx, r).catch((err) => ctx.log.warn('boot report not recorded', { err }));
    }),
    await ctx.transport.subscribe<WorkerStatus>(subjects.workerStatus, (s) => {
      void recordWorkerStatus(ctx, s).catch((err) => ctx.log.warn('worker status not recorded', { err }));
    }),
  ];
  // The protocol counters of every segment's worker process, at each scrape of /metrics.
  const offMetrics = addMetricsSource(async () => {
    const nets = await ctx.resources.list('Network');
    const got = await Promise.all(
      nets.map((n) =>
        ctx.transport
          .request<Record<string, never>, MetricsJson>(
            subjects.metrics(n.metadata.name),
            {},
            { timeout: 2000 },
          )
          .catch(() => undefined),
      ),
    );
    return got.filter((m): m is MetricsJson => Array.isArray(m));
  });
  return async () => {
    fanOut.stop();
    offMetrics();
    for (const s of subs) await s.unsubscribe();
  };
}
