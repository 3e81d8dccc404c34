/**
 * The install layer: step 3 → 4, a generic GNU/Linux installed over HTTP and reached over SSH. It hands
 * boot what boot needs to start an installer (`bootHandoff`: the relayed installer calls, the installer's
 * kernel command line with its token, whether the disk is installed), and drops its status section when a
 * node is reprovisioned.
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
