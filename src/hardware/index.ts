/**
 * The hardware layer: state 0 → 1 (powered and cabled). For the `human` provider the seed's human manager
 * issues a work order ("connect node X to energy and the network, power it on") and the human worker (a
 * person) confirms it through the CLI or API; machine providers (the lab's QEMU, a BMC) are workers asked
 * over the transport (protocol.ts) to switch power; `none` is a machine managed outside Strata that counts
 * once it shows up on the network. Steps in steps.ts, API routes in routes.ts.
 */
import type { Layer } from '../core/layer.ts';
import { addHardwareRoutes } from './routes.ts';
import { humanStep, machineStep, noneStep } from './steps.ts';

export type { PowerReply, PowerRequest, WorkOrder } from './protocol.ts';
export { subjects, WORK_ORDERS } from './protocol.ts';
export type { HardwareProvider } from './provider.ts';
export { powerTarget } from './provider.ts';

export const hardwareLayer: Layer = {
  name: 'hardware',
  roles: [],
  steps: [humanStep, machineStep, noneStep],
  providers: { hardware: ['human', 'none'] },
  async manager(ctx) {
    addHardwareRoutes(ctx);
    return undefined;
  },
};
