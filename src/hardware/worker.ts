/**
 * The `bmc` worker role: serves `hardware.redfish` and `hardware.ipmi` (and Redfish discovery) over the
 * transport, so it can run on a machine next to the BMC network (`strata worker --roles bmc`) while the
 * manager stays in the control plane. It holds no store and no credentials of its own: each request carries
 * the BMC and the credentials the manager read from the sealed secret store, and each reply lists the calls
 * made with their durations, never the credentials.
 */
import type { WorkerContext } from '../core/layer.ts';
import type { CallPolicy } from './bmc.ts';
import { BmcError } from './bmc.ts';
import { ipmiAction } from './ipmi.ts';
import {
  type DiscoverReply,
  type DiscoverRequest,
  type PowerReply,
  type PowerRequest,
  subjects,
} from './protocol.ts';
import { redfishAction, redfishDiscover } from './redfish.ts';

function missingBmc(provider: string): PowerReply {
  return {
    state: 'unknown',
    error: {
      status: 409,
      reason: 'NoBmc',
      message: `hardware provider "${provider}" needs the node's spec.bmc`,
    },
  };
}

/** Call policy from the environment (tests shorten it); the defaults suit real BMCs. */
export function policyFromEnv(env = process.env): Partial<CallPolicy> {
  const p: Partial<CallPolicy> = {};
  const n = (k: string) => (env[k] && Number.isFinite(Number(env[k])) ? Number(env[k]) : undefined);
  const t = n('STRATA_BMC_TIMEOUT_MS');
  const a = n('STRATA_BMC_ATTEMPTS');
  const b = n('STRATA_BMC_BACKOFF_MS');
  const c = n('STRATA_BMC_CONCURRENCY');
  if (t) p.timeoutMs = t;
  if (a) p.attempts = a;
  if (b) p.backoffMs = b;
  if (c) p.concurrency = c;
  return p;
}

export async function bmcWorker(ctx: WorkerContext) {
  const policy = policyFromEnv();
  const subs = [
    await ctx.transport.serve<PowerRequest, PowerReply>(subjects.redfish, async (r) =>
      r.bmc ? redfishAction(r.bmc, r.op, r.imageUrl, policy) : missingBmc('redfish'),
    ),
    await ctx.transport.serve<PowerRequest, PowerReply>(subjects.ipmi, async (r) =>
      r.bmc ? ipmiAction(r.bmc, r.op, policy) : missingBmc('ipmi'),
    ),
    await ctx.transport.serve<DiscoverRequest, DiscoverReply>(subjects.discover, async (r) => {
      try {
        return await redfishDiscover(r.bmc, policy);
      } catch (err) {
        const e = err instanceof BmcError ? err : new BmcError(502, 'BmcError', (err as Error).message);
        return { error: e.toJSON() };
      }
    }),
  ];
  ctx.log.info('bmc worker serving', { subjects: [subjects.redfish, subjects.ipmi, subjects.discover] });
  return {
    async stop() {
      for (const s of subs) await s.unsubscribe();
    },
  };
}
