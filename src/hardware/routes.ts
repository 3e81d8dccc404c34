/**
 * The hardware layer's API: `POST /api/v1/nodes/NAME/power` asks the node's provider worker to switch it
 * (or to boot once from the network, insert virtual media, read inventory), the work-order routes are how
 * the seed's human worker (a person, through the CLI) confirms a step, and the BMC routes store sealed BMC
 * credentials (write-only) and read a Redfish BMC for `strata bmc discover`.
 */
import { z } from 'zod';
import { type NodeResource, nodeBmc } from '../core/kinds/node.ts';
import type { ManagerContext } from '../core/layer.ts';
import { StrataError } from '../core/resources/errors.ts';
import { STEPS } from '../ladder.ts';
import { bmcTarget, hardwareRequest } from './control.ts';
import {
  BMC_SECRETS,
  type BmcCredentials,
  type BmcTarget,
  type DiscoverReply,
  type DiscoverRequest,
  HARDWARE_OPS,
  type HardwareOp,
  type PowerReply,
  subjects,
  WORK_ORDERS,
  type WorkOrder,
} from './protocol.ts';

/** The API's answer for a provider's error: its status (409, 501, 502, 504) and reason, never a 500. */
function raise(r: PowerReply): PowerReply {
  if (r.error) throw new StrataError(r.error.status, r.error.reason, r.error.message);
  return r;
}

/** Power switching for providers a worker drives, and the work-order list a person confirms from. */
export function addHardwareRoutes(ctx: ManagerContext): void {
  ctx.router.add('POST', '/api/v1/nodes/:name/power', async ({ params, json }) => {
    const node = (await ctx.resources.mustGet('Node', params.name!)) as unknown as NodeResource;
    const { op, imageUrl } = await json<{ op?: string; imageUrl?: string }>();
    if (!HARDWARE_OPS.includes(op as HardwareOp)) {
      throw new StrataError(
        422,
        'Invalid',
        `op: expected one of ${HARDWARE_OPS.join(', ')}; got ${JSON.stringify(op)}`,
      );
    }
    if (op === 'media-boot' && !imageUrl)
      throw new StrataError(
        422,
        'Invalid',
        'imageUrl: media-boot needs the URL of the image the BMC inserts',
      );
    const provider = node.spec.providers.hardware;
    if (provider === 'human' || provider === 'none') {
      throw new StrataError(
        409,
        'Conflict',
        `node "${node.metadata.name}" has hardware provider "${provider}": Strata cannot switch its power`,
      );
    }
    const reply = raise(
      await hardwareRequest(ctx, node, op as HardwareOp, {
        source: 'api',
        ...(imageUrl ? { imageUrl } : {}),
      }),
    );
    if (op !== 'status' && op !== 'inventory') {
      ctx.hub.record({
        kind: 'Node',
        name: node.metadata.name,
        source: 'api',
        step: STEPS.hardwarePower,
        reason: 'Power',
        message: `power ${op} requested: now ${reply.state}${reply.message ? ` (${reply.message})` : ''}`,
      });
    }
    const { calls: _calls, ...rest } = reply;
    return { kind: 'PowerStatus', node: node.metadata.name, ...rest };
  });
  addBmcRoutes(ctx);
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
        properties: {
          op: { enum: [...HARDWARE_OPS] },
          imageUrl: { type: 'string', description: 'media-boot: the image the BMC inserts as virtual CD' },
        },
      },
      required: true,
    },
    response: {
      schema: z.object({
        kind: z.literal('PowerStatus'),
        node: z.string(),
        state: z.enum(['on', 'off', 'unknown']),
        message: z.string().optional(),
        inventory: z.record(z.string(), z.unknown()).optional(),
      }),
    },
    errors: [404, 409, 422, 501, 502, 504],
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

/** BMC secrets (write-only) and Redfish discovery. */
function addBmcRoutes(ctx: ManagerContext): void {
  ctx.router.add('PUT', '/api/v1/bmc/secrets/:name', async ({ params, json }) => {
    const name = params.name!;
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name))
      throw new StrataError(422, 'Invalid', `name: expected a DNS label like "rack1-bmc"; got "${name}"`);
    const b = await json<{ username?: unknown; password?: unknown }>();
    if (typeof b.username !== 'string' || !b.username)
      throw new StrataError(422, 'Invalid', 'username: expected the BMC user name, e.g. "admin"');
    if (typeof b.password !== 'string' || !b.password)
      throw new StrataError(
        422,
        'Invalid',
        'password: expected the BMC password (the CLI reads it from stdin)',
      );
    const cred: BmcCredentials = { username: b.username, password: b.password };
    await ctx.store.putRecords(BMC_SECRETS, [{ key: name, value: cred }]);
    return { kind: 'BmcSecret', name, username: cred.username };
  });
  ctx.router.add('GET', '/api/v1/bmc/secrets', async () => ({
    kind: 'BmcSecretList',
    items: (await ctx.store.listRecords(BMC_SECRETS)).map((r) => ({
      name: r.key,
      username: (r.value as BmcCredentials).username,
    })),
  }));
  ctx.router.add('POST', '/api/v1/bmc/discover', async ({ json }) => {
    const parsed = nodeBmc.safeParse({ protocol: 'redfish', ...(await json<Record<string, unknown>>()) });
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      throw new StrataError(422, 'Invalid', `${i.path.join('.') || 'body'}: ${i.message}`);
    }
    const b = parsed.data;
    const probe = {
      metadata: { name: 'discover' },
      spec: { providers: { hardware: 'redfish' }, macAddresses: [], bmc: b },
    } as unknown as NodeResource;
    const t = await bmcTarget(ctx, probe);
    if ('state' in t) raise(t);
    const r = await ctx.transport.request<DiscoverRequest, DiscoverReply>(
      subjects.discover,
      { bmc: t as BmcTarget },
      { timeout: 180_000 },
    );
    if ('error' in r) throw new StrataError(r.error.status, r.error.reason, r.error.message);
    return { kind: 'BmcDiscovery', address: b.address, ...r };
  });
  ctx.router.describe('PUT', '/api/v1/bmc/secrets/:name', {
    role: 'admin',
    operationId: 'putBmcSecret',
    summary: 'Store BMC credentials, sealed; they are never returned',
    tags: ['hardware'],
    body: { schema: z.object({ username: z.string(), password: z.string() }), required: true },
    response: { schema: z.object({ kind: z.literal('BmcSecret'), name: z.string(), username: z.string() }) },
    errors: [422],
  });
  ctx.router.describe('GET', '/api/v1/bmc/secrets', {
    role: 'operator',
    operationId: 'listBmcSecrets',
    summary: 'BMC secrets: names and user names only',
    tags: ['hardware'],
    response: {
      schema: z.object({
        kind: z.literal('BmcSecretList'),
        items: z.array(z.object({ name: z.string(), username: z.string() })),
      }),
    },
  });
  ctx.router.describe('POST', '/api/v1/bmc/discover', {
    role: 'operator',
    operationId: 'discoverBmc',
    summary: 'Read a Redfish service root and its systems (inventory, MACs) through a bmc worker',
    tags: ['hardware'],
    body: {
      schema: z.object({
        address: z.string(),
        credentialsSecret: z.string(),
        fingerprint: z.string().optional(),
        caCert: z.string().optional(),
        insecureSkipVerify: z.boolean().optional(),
      }),
      required: true,
    },
    response: { schema: z.object({ kind: z.literal('BmcDiscovery') }).passthrough() },
    errors: [409, 422, 501, 502, 504],
  });
}
