/**
 * The steps into state 1 (powered and cabled), one per kind of provider: `human` issues a work order and
 * waits for a person to confirm it, machine providers (`lab`, and the BMC providers `redfish`/`ipmi` that
 * the `bmc` worker role drives) are asked over the transport to power the node on, and `none` waits for the
 * machine to show up on the network. A BMC is first told to boot from the network once, unless the node is
 * installed, so PXE-once holds whatever the firmware's boot order; a Redfish node without MACs is enrolled
 * from the NICs its BMC reports. A node whose firmware was already heard on the network (DHCP) is powered
 * and cabled by evidence.
 */
import type { NetworkResource } from '../core/kinds/network.ts';
import type { NodeResource } from '../core/kinds/node.ts';
import { networkOf } from '../core/kinds/placement.ts';
import type { Step, StepContext } from '../core/ladder/step.ts';
import { STEPS } from '../ladder.ts';
import { hardwareRequest, isBmcProvider } from './control.ts';
import { type HardwareOp, type PowerReply, WORK_ORDERS, type WorkOrder } from './protocol.ts';

function instructions(node: NodeResource): string {
  const macs = node.spec.macAddresses.join(', ') || 'unknown MAC';
  const net = node.spec.network ? ` on network "${node.spec.network}"` : '';
  return `Connect node ${node.metadata.name} (${macs}) to energy and to its switch port${net}, set it to boot from the network, and power it on.`;
}

export const humanStep: Step = {
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
export const machineStep: Step = {
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
    const pending = await bootServicesPending(ctx);
    if (pending) return { status: 'waiting', message: pending, recheckAfterMs: 2000 };
    // PXE-once: only a node that is not installed (or is to be reinstalled) is sent to the network.
    if (isBmcProvider(provider) && (!node.status?.installedAt || node.spec.reprovision)) {
      const b = await powerRequest(ctx, 'pxe-once');
      ctx.record('BootOnce', b.message ?? 'next boot: network, once');
    }
    const r = await powerRequest(ctx, 'on');
    // A provider that could not switch the machine on (the lab has no VM by that name, a BMC refused) is a
    // failure with its reason, retried with backoff: calling it done would have the engine check, find the
    // node off, and ask again at once, without end and without an error anyone could see.
    if (r.state !== 'on')
      throw new Error(
        `the ${ctx.node.spec.providers.hardware} provider did not power the node on (${r.state}${r.message ? `: ${r.message}` : ''})`,
      );
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
  const cur = await ctx.resources.get<NodeResource>('Node', ctx.node.metadata.name);
  if (!cur || cur.spec.macAddresses.length) return;
  // NodeStatus is typed per layer, the store's Resource is not: the update writes back what it read.
  await ctx.resources.update({ ...cur, spec: { ...cur.spec, macAddresses: macs } } as never);
  ctx.record('EnrolledFromBmc', `MAC addresses from the BMC: ${macs.join(', ')}`, { macs });
}

/** No provider: the machine is managed outside Strata; it counts as powered once it shows up on the network. */
export const noneStep: Step = {
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
