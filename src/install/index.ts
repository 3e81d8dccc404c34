/**
 * The install layer: step 3 → 4, a generic GNU/Linux installed over HTTP and reached over SSH. The node's
 * installer (agent.sh in an installer initramfs, or the distribution's own installer with a kickstart,
 * preseed or cloud-init answer file from answers/) fetches its config with a short-lived install token,
 * reports progress, pins its SSH host keys and, once the installed system has booted, reports in; the
 * manager (manager.ts) turns those calls, relayed by the segment's boot worker, into the node's timeline
 * and its `install` status section. The installer protocol is protocol.ts (PROTOCOL.md in words).
 */
import type { Layer } from '../core/layer.ts';
import { installStep, startInstallManager } from './manager.ts';

export const installLayer: Layer = {
  name: 'install',
  roles: [],
  steps: [installStep],
  async manager(ctx) {
    const stop = await startInstallManager(ctx);
    return { stop };
  },
};

export type { InstallConfig, InstallEvent, InstalledReport } from './protocol.ts';
export { INSTALL_ATTEMPTS, installerCmdline, installPaths } from './protocol.ts';
