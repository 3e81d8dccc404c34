/**
 * Step 0 (state 0 → 1, "powered and cabled"). For the `human` provider the seed's human manager issues a
 * work order ("connect node X to energy and the network, power it on") and the human worker confirms it
 * through the CLI or API. Machine providers (lab, BMC) are asked over the transport to power the node on.
 * A node whose firmware was already heard on the network (DHCP) is powered and cabled by evidence.
 */

import { z } from 'zod';
import type { NetworkResource } from '../core/kinds/network.ts';
import type { NodeResource } from '../core/kinds/node.ts';
import { networkOf } from '../core/kinds/placement.ts';
import type { Step, StepContext } from '../core/ladder/step.ts';
import type { Layer, ManagerContext } from '../core/layer.ts';
import { StrataError } from '../core/resources/errors.ts';
import type { Transport } from '../core/transport/types.ts';
import { STEPS } from '../ladder.ts';
import { type PowerReply, type PowerRequest, powerTarget, providerSubject } from './provider.ts';

export const WORK_ORDERS = 'workorders';

export interface WorkOrder {
  node: string;
  action: 'connect' | 'disconnect';
  instructions: string;
  state: 'open' | 'done';
  createdAt: string;
  doneAt?: string;
  doneBy?: string;
}

function instructions(node: NodeResource): string {
  const macs = node.spec.macAddresses.join(', ') || 'unknown MAC';
  const net = node.spec.network ? ` on network "${node.spec.network}"` : '';
  return `Connect node ${node.metadata.name} (${macs}) to energy and to its switch port${net}, set it to boot from the network, and power it on.`;
}

const humanStep: Step = {
  name: STEPS.hardwareHuman,
  description: 'a person powers and cables the node (work order)',
  async check(ctx) {
    if (ctx.node.status?.discovered) return true;
    const wo = (await ctx.store.getRecord(WORK_ORDERS, ctx.node.metadata.name)) as WorkOrder | undefined;
    return wo?.action === 'connect' && wo.state === 'done';
  },
  async action(ctx) {
    const name = ctx.node.metadata.name;
    const wo = (await ctx.store.getRecord(WORK_ORDERS, name)) as WorkOrder | undefined;
    if (wo?.action !== 'connect') {
      const order: WorkOrder = {
        node: name,
        action: 'connect',
        instructions: instructions(ctx.node),
        state: 'open',
        createdAt: new Date().toISOString(),
      };
      await ctx.store.putRecords(WORK_ORDERS, [{ key: name, value: order }]);
      ctx.record('WorkOrderCreated', order.instructions, { action: 'connect' });
    }
    return {
      status: 'waiting',
      message: `waiting for a person: confirm with "strata workorder done ${name}"`,
      recheckAfterMs: 60_000,
    };
  },
  async undo(ctx) {
    const name = ctx.node.metadata.name;
    const order: WorkOrder = {
      node: name,
      action: 'disconnect',
      instructions: `Power off node ${name} and disconnect it.`,
      state: 'open',
      createdAt: new Date().toISOString(),
    };
    await ctx.store.putRecords(WORK_ORDERS, [{ key: name, value: order }]);
    ctx.record('WorkOrderCreated', order.instructions, { action: 'disconnect' });
  },
};

/**
 * Why a machine that boots from the network must not be powered on yet: its Network's boot worker does not
 * serve (WorkerReady is not True). Firmware powered earlier finds no DHCP server and gives up (a BIOS's
 * iPXE ROM after about 15 s: "No bootable device"), and nothing would power it again.
 */
async function bootServicesPending(ctx: StepContext): Promise<string | undefined> {
  if (ctx.node.spec.providers.boot !== 'network') return undefined;
  const net = networkOf(ctx.node, await ctx.resources.list<NetworkResource>('Network'));
  if (!net) return undefined;
  const ready = net.status?.conditions?.find((c) => c.type === 'WorkerReady');
  if (ready?.status === 'True') return undefined;
  return `waiting for the boot worker of network ${net.metadata.name} to serve (WorkerReady${ready?.message ? `: ${ready.message}` : ''}) before powering the node on`;
}

/** Power step for providers that a worker drives (lab, BMC). */
const machineStep: Step = {
  name: STEPS.hardwarePower,
  description: 'the hardware provider powers the node on',
  async check(ctx) {
    const r = await powerRequest(ctx, 'status');
    return r.state === 'on';
  },
  async action(ctx) {
    const pending = await bootServicesPending(ctx);
    if (pending) return { status: 'waiting', message: pending, recheckAfterMs: 2000 };
    const r = await powerRequest(ctx, 'on');
    return { status: 'done', message: r.message ?? `powered ${r.state}` };
  },
  async undo(ctx) {
    await powerRequest(ctx, 'off');
  },
};

/** No provider: the machine is managed outside Strata; it counts as powered once it shows up on the network. */
const noneStep: Step = {
  name: STEPS.hardwareNone,
  description: 'the machine shows up on the network by itself (no hardware provider)',
  async check(ctx) {
    return Boolean(ctx.node.status?.lastSeen || ctx.node.status?.discovered);
  },
  async action() {
    return {
      status: 'waiting',
      message: 'waiting for the machine to show up on the network',
      recheckAfterMs: 60_000,
    };
  },
};

/** Asks the worker of the node's hardware provider to switch it (or to say how it is). */
function askProvider(transport: Transport, node: NodeResource, op: PowerRequest['op']): Promise<PowerReply> {
  return transport.request<PowerRequest, PowerReply>(
    providerSubject(node.spec.providers.hardware),
    { op, node: powerTarget(node) },
    { timeout: 60_000 },
  );
}

function powerRequest(ctx: StepContext, op: PowerRequest['op']): Promise<PowerReply> {
  return askProvider(ctx.transport, ctx.node, op);
}

function routes(ctx: ManagerContext): void {
  ctx.router.add('POST', '/api/v1/nodes/:name/power', async ({ params, json }) => {
    const node = (await ctx.resources.mustGet('Node', params.name!)) as unknown as NodeResource;
    const { op } = await json<{ op?: string }>();
    if (op !== 'on' && op !== 'off' && op !== 'cycle' && op !== 'status') {
      throw new StrataError(
        422,
        'Invalid',
        `op: expected one of on, off, cycle, status; got ${JSON.stringify(op)}`,
      );
    }
    const provider = node.spec.providers.hardware;
    if (provider === 'human' || provider === 'none') {
      throw new StrataError(
        409,
        'Conflict',
        `node "${node.metadata.name}" has hardware provider "${provider}": Strata cannot switch its power`,
      );
    }
    const reply = await askProvider(ctx.transport, node, op);
    if (op !== 'status') {
      ctx.hub.record({
        kind: 'Node',
        name: node.metadata.name,
        source: 'api',
        step: STEPS.hardwarePower,
        reason: 'Power',
        message: `power ${op} requested: now ${reply.state}${reply.message ? ` (${reply.message})` : ''}`,
      });
    }
    return { kind: 'PowerStatus', node: node.metadata.name, ...reply };
  });
  ctx.router.add('GET', '/api/v1/workorders', async () => ({
    kind: 'WorkOrderList',
    items: (await ctx.store.listRecords(WORK_ORDERS)).map((r) => r.value),
  }));
  ctx.router.add('POST', '/api/v1/workorders/:node/done', async ({ params, json, req }) => {
    const name = params.node!;
    const wo = (await ctx.store.getRecord(WORK_ORDERS, name)) as WorkOrder | undefined;
    if (!wo) throw new StrataError(404, 'NotFound', `no work order for node "${name}"`);
    if (wo.state === 'done') return wo;
    const body =
      req.headers['content-length'] && req.headers['content-length'] !== '0'
        ? await json<{ by?: string }>()
        : {};
    const done: WorkOrder = {
      ...wo,
      state: 'done',
      doneAt: new Date().toISOString(),
      doneBy: body.by ?? 'api',
    };
    await ctx.store.putRecords(WORK_ORDERS, [{ key: name, value: done }]);
    ctx.hub.record({
      kind: 'Node',
      name,
      step: STEPS.hardwareHuman,
      source: 'human-worker',
      reason: 'WorkOrderDone',
      message: `work order "${wo.action}" confirmed by ${done.doneBy}`,
    });
    return done;
  });
  // The routes' shapes, for /openapi.json; a zod body schema also validates what `json()` returns.
  const workOrder = z.object({
    node: z.string(),
    action: z.enum(['connect', 'disconnect']),
    instructions: z.string(),
    state: z.enum(['open', 'done']),
    createdAt: z.string(),
    doneAt: z.string().optional(),
    doneBy: z.string().optional(),
  });
  ctx.router.describe('POST', '/api/v1/nodes/:name/power', {
    scope: { node: 'name' },
    operationId: 'powerNode',
    summary: "Switch a node's power through its hardware provider, or ask its state",
    tags: ['hardware'],
    body: {
      schema: {
        type: 'object',
        required: ['op'],
        properties: { op: { enum: ['on', 'off', 'cycle', 'status'] } },
      },
      required: true,
    },
    response: {
      schema: z.object({
        kind: z.literal('PowerStatus'),
        node: z.string(),
        state: z.enum(['on', 'off', 'unknown']),
        message: z.string().optional(),
      }),
    },
    errors: [404, 409, 422],
  });
  ctx.router.describe('GET', '/api/v1/workorders', {
    operationId: 'listWorkOrders',
    summary: 'Work orders for people: connect or disconnect a node',
    tags: ['hardware'],
    response: { schema: z.object({ kind: z.literal('WorkOrderList'), items: z.array(workOrder) }) },
  });
  ctx.router.describe('POST', '/api/v1/workorders/:node/done', {
    scope: { node: 'node' },
    operationId: 'completeWorkOrder',
    summary: 'Confirm that a person did what a work order asked',
    tags: ['hardware'],
    body: { schema: z.object({ by: z.string().optional().describe('who did it') }) },
    response: { schema: workOrder },
    errors: [404],
  });
}

export const hardwareLayer: Layer = {
  name: 'hardware',
  roles: [],
  steps: [humanStep, machineStep, noneStep],
  providers: { hardware: ['human', 'none'] },
  async manager(ctx) {
    routes(ctx);
    return undefined;
  },
};
