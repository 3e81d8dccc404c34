/**
 * The overlay layer (state 5): the Overlay kind, IPAM, the Nebula CA, WireGuard keys, the ZeroTier
 * scripts and the membership plan. Its ladder step is not registered yet (the ladder is becoming a table
 * elsewhere); the step will call {@link reconcileOverlay} and hand the plan to the shell layer.
 */
import { join } from 'node:path';
import type { Layer } from '../core/layer.ts';
import './kind.ts';
import { LighthouseRunner } from './lighthouse.ts';
import { startOverlayManager } from './manager.ts';

export * from './ipam.ts';
export * from './kind.ts';
export * from './lighthouse.ts';
export * from './manager.ts';
export * from './membership.ts';
export * from './reconcile.ts';

/**
 * The layer for src/layers.ts (not listed there yet: the ladder is becoming a table on another branch).
 * Its manager keeps every Overlay's addresses, keys, certificates and status current.
 */
export const overlayLayer: Layer = {
  name: 'overlay',
  roles: [],
  async manager(ctx) {
    const lighthouse = new LighthouseRunner({ dir: join(ctx.dataDir, 'overlay'), log: ctx.log });
    const mgr = await startOverlayManager(ctx, { lighthouse });
    return {
      async stop() {
        await mgr.stop();
        lighthouse.stopAll();
      },
    };
  },
};
