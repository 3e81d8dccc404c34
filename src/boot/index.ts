/**
 * The boot layer: steps 1 → 2 (firmware network boot) and 2 → 3 (iPXE). Its manager decides and records
 * (which networks exist, what each MAC boots, leases, what the workers report); its `boot` workers, one per
 * network segment inside that segment's namespace (supervisor.ts), run DHCP, DNS, TFTP and HTTP with the
 * protocol folders' servers (src/dhcp, src/dns, src/tftp, src/ipxe), relay installer calls to the install
 * layer, and host the segment's shell worker and local registry. The two talk only over the transport
 * (protocol.ts), so a segment's worker can run on another machine. docs/boot-flow.md draws the whole boot.
 */
import type { Layer } from '../core/layer.ts';
import { addHealthRoute } from './health.ts';
import { startBootManager } from './manager.ts';
import { firmwareStep, ipxeStep } from './steps.ts';
import { superviseBootWorkers } from './supervisor.ts';

export const bootLayer: Layer = {
  name: 'boot',
  roles: ['boot'],
  steps: [firmwareStep, ipxeStep],
  async manager(ctx) {
    const stop = await startBootManager(ctx);
    addHealthRoute(ctx);
    return { stop };
  },
  async worker(ctx) {
    return superviseBootWorkers(ctx);
  },
};

export type { BootConfig, BootReport, NetworkPlacement, WorkerStatus } from './protocol.ts';
export { leaseCollection, subjects } from './protocol.ts';
