/**
 * Step 0 (state 0 → 1, "powered and cabled"). For the `human` provider the seed's human manager issues a
 * work order ("connect node X to energy and the network, power it on") and the human worker confirms it
 * through the CLI or API. Machine providers (lab, BMC) are asked over the transport to power the node on;
 * a BMC (Redfish, IPMI: the `bmc` worker role) is first told to boot from the network once, unless the node
 * is installed, so PXE-once holds whatever the firmware's boot order. A Redfish node without MACs is
 * enrolled from the NICs its BMC reports. A node whose firmware was already heard on the network (DHCP) is
 * powered and cabled by evidence.
 */

import { z } from 'zod';
import { type NodeResource, nodeBmc } from '../core/kinds/node.ts';
import type { Step, StepContext } from '../core/ladder/step.ts';
import type { Layer, ManagerContext } from '../core/layer.ts';
import { StrataError } from '../core/resources/errors.ts';
import { STEPS } from '../ladder.ts';
import { BMC_SECRETS, type BmcCredentials, bmcTarget, hardwareRequest, isBmcProvider } from './control.ts';
import { type BmcTarget, HARDWARE_OPS, type HardwareOp, type PowerReply } from './provider.ts';
import { bmcWorker, DISCOVER_SUBJECT, type DiscoverReply, type DiscoverRequest } from './worker.ts';

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

/** Power step for providers that a worker drives (lab, BMC). */
const machineStep: Step = {
  name: STEPS.hardwarePower,
  description: 'the hardware provider powers the node on',
  async check(ctx) {
    const r = await powerRequest(ctx, 'status');
    return r.state === 'on';
  },
  async action(ctx) {
    const node = ctx.node;
    const provider = node.spec.providers.hardware;
    if (provider === 'redfish' && node.spec.macAddresses.length === 0) await enrolFromBmc(ctx);
    // PXE-once: only a node that is not installed (or is to be reinstalled) is sent to the network.
    if (isBmcProvider(provider) && (!node.status?.installedAt || node.spec.reprovision)) {
      const b = await powerRequest(ctx, 'pxe-once');
      ctx.record('BootOnce', b.message ?? 'next boot: network, once');
    }
    const r = await powerRequest(ctx, 'on');
    return { status: 'done', message: r.message ?? `powered ${r.state}` };
  },
  async undo(ctx) {
    const r = await powerRequest(ctx, 'off');
    // An OS that ignores the ACPI button is cut off: going down must leave the machine off.
    if (isBmcProvider(ctx.node.spec.providers.hardware) && r.state !== 'off')
      await powerRequest(ctx, 'off-force');
  },
};

/** A Redfish node with no MACs takes them from the NICs its BMC reports (inventory goes to status.bmc). */
async function enrolFromBmc(ctx: StepContext): Promise<void> {
  const r = await powerRequest(ctx, 'inventory');
  const macs = (r.inventory?.nics ?? []).map((n) => n.mac);
  if (!macs.length) return;
  const cur = (await ctx.resources.mustGet('Node', ctx.node.metadata.name)) as unknown as NodeResource;
  if (cur.spec.macAddresses.length) return;
  await ctx.resources.update({ ...cur, spec: { ...cur.spec, macAddresses: macs } } as never);
  ctx.record('EnrolledFromBmc', `MAC addresses from the BMC: ${macs.join(', ')}`, { macs });
}

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

/** Asks the node's hardware provider; a failure becomes the step's error (the node stays where it is). */
async function powerRequest(ctx: StepContext, op: HardwareOp): Promise<PowerReply> {
  const r = await hardwareRequest(ctx, ctx.node, op, { source: 'hardware-manager' });
  if (r.error) throw new Error(`${r.error.reason}: ${r.error.message}`);
  return r;
}

/** The API's answer for a provider's error: its status (409, 501, 502, 504) and reason, never a 500. */
function raise(r: PowerReply): PowerReply {
  if (r.error) throw new StrataError(r.error.status, r.error.reason, r.error.message);
  return r;
}

function routes(ctx: ManagerContext): void {
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
  bmcRoutes(ctx);
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
function bmcRoutes(ctx: ManagerContext): void {
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
      DISCOVER_SUBJECT,
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

export const hardwareLayer: Layer = {
  name: 'hardware',
  roles: ['bmc'],
  steps: [humanStep, machineStep, noneStep],
  providers: { hardware: ['human', 'none', 'redfish', 'ipmi'] },
  async manager(ctx) {
    routes(ctx);
    return undefined;
  },
  worker: (ctx) => bmcWorker(ctx),
};
