/**
 * The overlay layer (state 5): the Overlay kind, IPAM, the Nebula CA, WireGuard keys, the ZeroTier
 * scripts, the membership plan, and the ladder step `overlay.join` (step.ts), which reconciles the
 * Overlays that select a node, pushes its plan as a distributable through the shell layer and reaches the
 * node over its overlay address.
 */
import { join } from 'node:path';
import type { Layer } from '../core/layer.ts';
import './kind.ts';
import { LighthouseRunner } from './lighthouse.ts';
import { startOverlayManager } from './manager.ts';
import { resetOverlayStatus } from './status.ts';
import { overlayJoinStep, pushPlan } from './step.ts';

export * from './ipam.ts';
export * from './kind.ts';
export * from './lighthouse.ts';
export * from './manager.ts';
export * from './membership.ts';
export * from './protocol.ts';
export * from './reconcile.ts';
export * from './status.ts';
export * from './step.ts';
export * from './wgpeer.ts';

export interface OverlayLayerOptions {
  /**
   * Run Strata's lighthouses through this prefix (`['ip', 'netns', 'exec', NS]`): where its overlay
   * endpoint is. Default: inside STRATA_OVERLAY_NETNS when set (the shell layer's global worker runs
   * there too), else in the manager's own namespace.
   */
  lighthousePrefix?: string[];
}

/**
 * The layer: the step into state 5, and a manager that keeps every Overlay's addresses, keys,
 * certificates, Strata's lighthouse and status current, and pushes changed plans to joined members.
 */
export function overlayLayerWith(opts: OverlayLayerOptions = {}): Layer {
  const deps: { lighthouse?: LighthouseRunner } = {};
  return {
    name: 'overlay',
    roles: [],
    steps: [overlayJoinStep(deps)],
    resetStatus: resetOverlayStatus,
    async manager(ctx) {
      const netns = process.env.STRATA_OVERLAY_NETNS;
      const prefix = opts.lighthousePrefix ?? (netns ? ['ip', 'netns', 'exec', netns] : undefined);
      const lighthouse = new LighthouseRunner({
        dir: join(ctx.dataDir, 'overlay'),
        log: ctx.log,
        ...(prefix ? { prefix } : {}),
      });
      deps.lighthouse = lighthouse;
      const mgr = await startOverlayManager(ctx, { lighthouse, onPlan: (plan) => pushPlan(ctx, plan) });
      return {
        async stop() {
          await mgr.stop();
          lighthouse.stopAll();
          delete deps.lighthouse;
        },
      };
    },
  };
}

export const overlayLayer: Layer = overlayLayerWith();
