/**
 * The hardware layer's API: `POST /api/v1/nodes/NAME/power` asks the node's provider worker to switch it,
 * and the work-order routes are how the seed's human worker (a person, through the CLI) confirms a step.
 */
import { z } from 'zod';
import type { NodeResource } from '../core/kinds/node.ts';
import type { ManagerContext } from '../core/layer.ts';
import { StrataError } from '../core/resources/errors.ts';
import { STEPS } from '../ladder.ts';
import { WORK_ORDERS, type WorkOrder } from './protocol.ts';
import { askProvider } from './steps.ts';

/** Power switching for providers a worker drives, and the work-order list a person confirms from. */
export function addHardwareRoutes(ctx: ManagerContext): void {
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
