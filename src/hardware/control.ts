/**
 * The manager's side of hardware control: one way to ask a node's hardware provider for anything (power,
 * boot once from the network, virtual media, inventory), used by the ladder's power step and by the API.
 * For a BMC it reads the credentials the Node names from the sealed secret store (`secrets.bmc`), asks the
 * `bmc` worker over the transport, and records what came back: every BMC call with its duration on the
 * node's timeline, the node's `BmcReachable` condition, and inventory in `status.bmc`. Credentials go only
 * to the worker: never into a reply, an event, a condition or a log line.
 */
import type { NodeResource, NodeStatus } from '../core/kinds/node.ts';
import type { CoreServices } from '../core/ladder/step.ts';
import { setCondition } from '../core/resources/types.ts';
import type { Transport } from '../core/transport/types.ts';
import { STEPS } from '../ladder.ts';
import {
  BMC_SECRETS,
  type BmcCredentials,
  type BmcTarget,
  type HardwareOp,
  type PowerReply,
  type PowerRequest,
  subjects,
} from './protocol.ts';
import { powerTarget } from './provider.ts';
import type { BmcInventory } from './status.ts';

export const isBmcProvider = (p: string) => p === 'redfish' || p === 'ipmi';

/** The node's BMC with its credentials, or a reply saying what is missing. */
export async function bmcTarget(ctx: CoreServices, node: NodeResource): Promise<BmcTarget | PowerReply> {
  const bmc = node.spec.bmc;
  if (!bmc)
    return {
      state: 'unknown',
      error: { status: 409, reason: 'NoBmc', message: `node "${node.metadata.name}" has no spec.bmc` },
    };
  const cred = (await ctx.store.getRecord(BMC_SECRETS, bmc.credentialsSecret)) as BmcCredentials | undefined;
  if (!cred)
    return {
      state: 'unknown',
      error: {
        status: 409,
        reason: 'BmcCredentialsMissing',
        message: `BMC secret "${bmc.credentialsSecret}" does not exist: create it with "strata bmc secret ${bmc.credentialsSecret} --username USER" (the password is read from stdin)`,
      },
    };
  return { ...bmc, username: cred.username, password: cred.password };
}

/** Generous: the worker's own retries, backoff and waits for the power state run inside it. */
const REQUEST_TIMEOUT_MS = 180_000;

/** Asks the node's hardware provider for `op`; records calls, condition and inventory for a BMC. */
export async function hardwareRequest(
  ctx: CoreServices,
  node: NodeResource,
  op: HardwareOp,
  opts: { imageUrl?: string; source?: string } = {},
): Promise<PowerReply> {
  const provider = node.spec.providers.hardware;
  const req: PowerRequest = { op, node: powerTarget(node) };
  if (opts.imageUrl) req.imageUrl = opts.imageUrl;
  if (isBmcProvider(provider)) {
    const t = await bmcTarget(ctx, node);
    if ('state' in t) {
      await recordOutcome(ctx, node, op, t, opts.source);
      return t;
    }
    req.bmc = t;
  }
  const reply = await ask(ctx.transport, provider, req);
  if (isBmcProvider(provider)) await recordOutcome(ctx, node, op, reply, opts.source);
  return reply;
}

function ask(transport: Transport, provider: string, req: PowerRequest): Promise<PowerReply> {
  return transport.request<PowerRequest, PowerReply>(subjects.power(provider), req, {
    timeout: REQUEST_TIMEOUT_MS,
  });
}

/** Timeline events for each BMC call, and the node's `BmcReachable` condition and inventory. */
async function recordOutcome(
  ctx: CoreServices,
  node: NodeResource,
  op: HardwareOp,
  reply: PowerReply,
  source = 'bmc-worker',
): Promise<void> {
  const name = node.metadata.name;
  const base = { kind: 'Node', name, source, step: STEPS.hardwarePower };
  for (const c of reply.calls ?? []) {
    ctx.hub.record({
      ...base,
      type: c.error ? 'Warning' : 'Normal',
      reason: 'BmcCall',
      message: `${c.call}${c.status !== undefined ? ` → ${c.status}` : ''} in ${c.ms} ms${c.attempt > 1 ? ` (attempt ${c.attempt})` : ''}${c.error ? `: ${c.error}` : ''}`,
      data: { ...c },
    });
  }
  if (reply.warning)
    ctx.hub.record({ ...base, type: 'Warning', reason: 'BmcWarning', message: `${op}: ${reply.warning}` });
  const e = reply.error;
  // 501 (cannot) and 409 (not now) say nothing about whether the BMC answers.
  const reachable = !e ? 'True' : e.status === 501 || e.reason === 'NoBmc' ? undefined : 'False';
  if (e) ctx.hub.record({ ...base, type: 'Warning', reason: e.reason, message: `${op}: ${e.message}` });
  const now = new Date().toISOString();
  await ctx.resources.patchStatus<NodeStatus>('Node', name, (st) => {
    const prev = st.conditions?.find((c) => c.type === 'BmcReachable');
    const inv: BmcInventory | undefined = reply.inventory;
    if (!inv && (!reachable || (prev?.status === reachable && prev.reason === (e?.reason ?? 'Answered'))))
      return undefined;
    return {
      ...st,
      ...(inv ? { bmc: inv } : {}),
      ...(reachable
        ? {
            conditions: setCondition(
              st.conditions,
              {
                type: 'BmcReachable',
                status: reachable,
                reason: e?.reason ?? 'Answered',
                message: e?.message ?? `the BMC answered ${op}`,
              },
              now,
            ),
          }
        : {}),
    };
  });
}
