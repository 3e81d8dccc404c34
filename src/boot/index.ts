/**
 * The boot layer: steps 1 → 2 (firmware network boot) and 2 → 3 (iPXE). Its manager decides and records;
 * its `boot` workers run DHCP, DNS, TFTP and HTTP on each segment.
 */
import type { Layer } from '../core/layer.ts';
import { startBootManager } from './manager.ts';
import { firmwareStep, ipxeStep } from './steps.ts';
import { superviseBootWorkers } from './supervisor.ts';

export const bootLayer: Layer = {
  name: 'boot',
  roles: ['boot'],
  steps: [firmwareStep, ipxeStep],
  async manager(ctx) {
    const stop = await startBootManager(ctx);
    return { stop };
  },
  async worker(ctx) {
    return superviseBootWorkers(ctx);
  },
};
