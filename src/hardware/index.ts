/**
 * The hardware layer: state 0 → 1 (powered and cabled). For the `human` provider the seed's human manager
 * issues a work order ("connect node X to energy and the network, power it on") and the human worker (a
 * person) confirms it through the CLI or API; machine providers (the lab's QEMU, a BMC over Redfish or IPMI
 * served by the `bmc` worker role) are workers asked over the transport (protocol.ts) to switch power, a
 * BMC first to boot from the network once; `none` is a machine managed outside Strata that counts once it
 * shows up on the network. Steps in steps.ts, API routes in routes.ts, the BMC worker in worker.ts, what a
 * BMC reports in the Node's `status.bmc` (status.ts).
 */
import type { Layer } from '../core/layer.ts';
import { addHardwareRoutes } from './routes.ts';
import { humanStep, machineStep, noneStep } from './steps.ts';
import { bmcWorker } from './worker.ts';

export type { PowerReply, PowerRequest, WorkOrder } from './protocol.ts';
export { subjects, WORK_ORDERS } from './protocol.ts';
export type { HardwareProvider } from './provider.ts';
export { powerTarget } from './provider.ts';
export type { BmcInventory } from './status.ts';

export const hardwareLayer: Layer = {
  name: 'hardware',
  roles: ['bmc'],
  steps: [humanStep, machineStep, noneStep],
  providers: { hardware: ['human', 'none', 'redfish', 'ipmi'] },
  async manager(ctx) {
    addHardwareRoutes(ctx);
    return undefined;
  },
  worker: (ctx) => bmcWorker(ctx),
};
