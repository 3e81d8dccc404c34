/**
 * The boot layer's status: its section of a Node's status (the boot evidence that steps 1 → 2 and 2 → 3
 * check, declared here onto the core's NodeStatus), and a Network's own status, kept by the boot manager
 * from what the supervisor and the segment's worker say: the worker's phase (Starting, Running, Failing with the reason), Kubernetes-style conditions
 * (`WorkerReady`, `PoolExhausted`) and events on the Network's timeline at each transition. So a namespace
 * or bridge that does not exist, or a pool that ran dry, shows in `strata describe network` instead of only
 * in the server's log. Only transitions are written: a worker restarting in a loop with the same error
 * changes nothing, and does not flood the timeline.
 */
import type { NetworkResource, NetworkStatus } from '../core/kinds/network.ts';
import type { CoreServices } from '../core/ladder/step.ts';
import { setCondition } from '../core/resources/types.ts';
import { SOURCE } from './nodes.ts';
import type { BootReport, WorkerStatus } from './protocol.ts';

/** Boot evidence kept in node status, set from what the workers saw. */
export interface BootEvidence {
  firmwareAt?: string;
  firmwareArch?: string;
  ipxeAt?: string;
  scriptAt?: string;
  scriptMode?: string;
  kernelAt?: string;
}

declare module '../core/kinds/node.ts' {
  /** The boot layer's section of a Node's status. */
  interface NodeStatus {
    boot?: BootEvidence;
    /** The generation whose `spec.reprovision` was acted on: one fresh install per ask. */
    reprovisionedGeneration?: number;
  }
}

type Status = NetworkStatus & Record<string, unknown>;

/** The worker of a Network started, serves, or failed: phase, `WorkerReady`, and an event on a change. */
export async function recordWorkerStatus(ctx: CoreServices, s: WorkerStatus): Promise<void> {
  const now = new Date().toISOString();
  let changed = false;
  await ctx.resources.patchStatus<Status>('Network', s.network, (st) => {
    const w = st.worker;
    if (w?.phase === s.phase && w.message === s.message) return undefined;
    // A restart after a failure keeps showing the failure until the worker actually serves.
    if (s.phase === 'Starting' && w?.phase === 'Failing') return undefined;
    changed = true;
    const failing = s.phase === 'Failing';
    return {
      ...st,
      worker: {
        phase: s.phase,
        since: w?.phase === s.phase ? w.since : now,
        ...(s.message ? { message: s.message } : {}),
        ...(failing
          ? { lastError: s.message ?? 'unknown error', lastErrorAt: now }
          : w?.lastError
            ? { lastError: w.lastError, ...(w.lastErrorAt ? { lastErrorAt: w.lastErrorAt } : {}) }
            : {}),
      },
      conditions: setCondition(
        st.conditions,
        {
          type: 'WorkerReady',
          status: s.phase === 'Running' ? 'True' : 'False',
          reason: s.phase === 'Running' ? 'Serving' : failing ? 'WorkerFailing' : 'Starting',
          ...(s.message ? { message: s.message } : {}),
        },
        now,
      ),
    };
  });
  if (!changed || s.phase === 'Starting') return;
  ctx.hub.record({
    kind: 'Network',
    name: s.network,
    source: SOURCE,
    step: 'boot.worker',
    type: s.phase === 'Failing' ? 'Warning' : 'Normal',
    reason: s.phase === 'Failing' ? 'WorkerFailing' : 'WorkerReady',
    message: s.message ?? (s.phase === 'Running' ? 'boot worker serving' : 'boot worker failing'),
  });
}

/** The segment's pool ran dry, or has an address again: `PoolExhausted` and an event. */
export async function recordPool(ctx: CoreServices, r: Extract<BootReport, { kind: 'pool' }>): Promise<void> {
  const net = await ctx.resources.get<NetworkResource>('Network', r.network);
  if (!net) return;
  const pool = net.spec.pool ? `${net.spec.pool.start}–${net.spec.pool.end}` : '(none)';
  const message = r.exhausted
    ? `no address left for ${r.mac}: every address of the pool ${pool} is leased and no offer is left to reclaim; widen spec.pool or shorten spec.dhcp.leaseTime`
    : `the pool ${pool} has free addresses again`;
  const now = new Date().toISOString();
  await ctx.resources.patchStatus<Status>('Network', r.network, (st) => ({
    ...st,
    conditions: setCondition(
      st.conditions,
      {
        type: 'PoolExhausted',
        status: r.exhausted ? 'True' : 'False',
        reason: r.exhausted ? 'NoFreeAddress' : 'AddressesFree',
        message,
      },
      now,
    ),
  }));
  ctx.hub.record({
    kind: 'Network',
    name: r.network,
    source: `dhcp-worker@${r.network}`,
    step: 'dhcp',
    type: r.exhausted ? 'Warning' : 'Normal',
    reason: r.exhausted ? 'PoolExhausted' : 'PoolAvailable',
    message,
    data: { mac: r.mac },
  });
}
