/**
 * The install layer: step 3 → 4, a generic GNU/Linux installed over HTTP and reached over SSH. The node's
 * installer (agent.sh in an installer initramfs, or the distribution's own installer with a kickstart,
 * preseed or cloud-init answer file from answers/) fetches its config with a short-lived install token,
 * reports progress, pins its SSH host keys and, once the installed system has booted, reports in; the
 * manager (manager.ts) turns those calls, relayed by the segment's boot worker, into the node's timeline
 * and its `install` status section. The installer protocol is protocol.ts (PROTOCOL.md in words).
 * It hands boot what boot needs to start an installer (`bootHandoff`: the relayed installer calls, the
 * installer's kernel command line with its token, whether the disk is installed), and drops its status
 * section when a node is reprovisioned (`resetStatus`).
 */
import type { InstallingLayer } from '../boot/handoff.ts';
import { installerArgs, installStep, startInstallManager } from './manager.ts';
import { INSTALL_PATH_PREFIX, subjects } from './protocol.ts';
import { diskInstalled, resetInstallStatus } from './status.ts';

export const installLayer: InstallingLayer = {
  name: 'install',
  roles: [],
  steps: [installStep],
  bootHandoff: {
    relay: { prefix: INSTALL_PATH_PREFIX, subject: subjects.http },
    cmdline: installerArgs,
    installed: diskInstalled,
  },
  resetStatus: resetInstallStatus,
  async manager(ctx) {
    const stop = await startInstallManager(ctx);
    return { stop };
  },
};

export type { InstallConfig, InstallEvent, InstalledReport } from './protocol.ts';
export { INSTALL_ATTEMPTS, installerCmdline, installPaths } from './protocol.ts';
