/** The install layer: step 3 → 4, a generic GNU/Linux installed over HTTP and reached over SSH. */
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
