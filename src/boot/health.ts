/**
 * `GET /api/v1/networks/:name/health`: one segment's health in one read-only answer, for the web UI's
 * network page and anyone scripting against the API. It gathers what is otherwise spread over three
 * places: the boot worker's phase and last error (the Network's status), the leases in use against the
 * pool (the lease records the manager keeps), and the segment's counters (the worker process's own
 * Prometheus registry, asked over the transport as /metrics does, plus the manager's counters labelled
 * with this network: discovery refused by its rate or cap, boot scripts refused). Drops, malformed
 * packets and rate limits are the counters whose name says so (`dropped`, `malformed`, `refused`,
 * `exhausted`); the rest is traffic.
 */
import { z } from 'zod';
import type { NetworkResource, NetworkStatus } from '../core/kinds/network.ts';
import type { NodeResource } from '../core/kinds/node.ts';
import type { ManagerContext } from '../core/layer.ts';
import { type MetricsJson, registry } from '../core/metrics.ts';
import { StrataError } from '../core/resources/errors.ts';
import { ipToInt } from '../core/resources/fields.ts';
import type { Lease } from './protocol.ts';
import { leaseCollection, subjects } from './protocol.ts';

const counterSchema = z.object({
  name: z.string(),
  help: z.string(),
  labels: z.record(z.string(), z.string()),
  value: z.number(),
  drop: z.boolean().describe('a drop, a malformed packet or a refusal by a rate limit or cap'),
});

export const networkHealthSchema = z.object({
  kind: z.literal('NetworkHealth'),
  network: z.string(),
  worker: z
    .object({
      phase: z.string(),
      since: z.string().optional(),
      message: z.string().optional(),
      lastError: z.string().optional(),
      lastErrorAt: z.string().optional(),
    })
    .optional()
    .describe("the segment's boot worker as last reported; absent before it ever reported"),
  conditions: z.array(z.record(z.string(), z.unknown())),
  leases: z.object({
    inUse: z.number().int().describe('bound, unexpired leases'),
    inPool: z.number().int().describe('of those, the ones inside spec.pool'),
    poolSize: z.number().int().describe('addresses in spec.pool; 0 without a pool'),
    reserved: z.number().int().describe('Nodes of this network with spec.ipAddress'),
    declined: z.number().int().describe('addresses in quarantine after a DHCPDECLINE'),
  }),
  counters: z.array(counterSchema),
  countersFrom: z
    .enum(['worker', 'manager'])
    .describe('worker: the worker process answered; manager: only the manager-side counters'),
});

export type NetworkHealth = z.infer<typeof networkHealthSchema>;

const DROP = /dropped|malformed|refused|exhausted|rate|send_errors|unexpected/;

function flatten(json: MetricsJson, network: string): NetworkHealth['counters'] {
  const out: NetworkHealth['counters'] = [];
  for (const m of json) {
    if (String(m.type) !== 'counter') continue;
    for (const v of m.values) {
      const labels = Object.fromEntries(
        Object.entries(v.labels ?? {}).map(([k, x]) => [k, String(x)]),
      ) as Record<string, string>;
      if (labels.network !== undefined && labels.network !== network) continue;
      delete labels.network;
      out.push({ name: m.name, help: m.help, labels, value: v.value, drop: DROP.test(m.name) });
    }
  }
  return out;
}

export async function networkHealth(ctx: ManagerContext, name: string): Promise<NetworkHealth> {
  const net = (await ctx.resources.mustGet('Network', name)) as unknown as NetworkResource;
  const status: NetworkStatus = net.status ?? {};
  const now = Date.now();
  const leases = (await ctx.store.listRecords(leaseCollection(name))).map((r) => r.value as Lease);
  const bound = leases.filter((l) => l.state === 'bound' && l.expiresAt > now);
  const pool = net.spec.pool;
  const lo = pool ? ipToInt(pool.start) : 0;
  const hi = pool ? ipToInt(pool.end) : -1;
  const nodes = await ctx.resources.list<NodeResource>('Node');
  const fromWorker = await ctx.transport
    .request<Record<string, never>, MetricsJson>(subjects.metrics(name), {}, { timeout: 2000 })
    .catch(() => undefined);
  const own = flatten(await registry.getMetricsAsJSON(), name).filter((c) =>
    c.name.startsWith('strata_boot_'),
  );
  return {
    kind: 'NetworkHealth',
    network: name,
    ...(status.worker ? { worker: status.worker } : {}),
    conditions: (status.conditions ?? []) as unknown as Record<string, unknown>[],
    leases: {
      inUse: bound.length,
      inPool: bound.filter((l) => ipToInt(l.ip) >= lo && ipToInt(l.ip) <= hi).length,
      poolSize: Math.max(0, hi - lo + 1),
      reserved: nodes.filter((n) => n.spec.network === name && n.spec.ipAddress).length,
      declined: leases.filter((l) => l.state === 'declined' && l.expiresAt > now).length,
    },
    counters: [...(Array.isArray(fromWorker) ? flatten(fromWorker, name) : []), ...own],
    countersFrom: Array.isArray(fromWorker) ? 'worker' : 'manager',
  };
}

export function addHealthRoute(ctx: ManagerContext): void {
  ctx.router.add(
    'GET',
    '/api/v1/networks/:name/health',
    async ({ params, principal }) => {
      const name = params.name!;
      if (principal?.networks && !principal.networks.includes(name))
        throw new StrataError(
          403,
          'Forbidden',
          `token "${principal.name}" may not read Network/${name}: it is outside the token's networks`,
        );
      return networkHealth(ctx, name);
    },
    {
      scope: 'objects',
      operationId: 'readNetworkHealth',
      summary:
        "A segment's health: its boot worker, leases in use against the pool, drops and rate limits (counters)",
      tags: ['boot'],
      response: { schema: networkHealthSchema },
      errors: [404],
    },
  );
}
