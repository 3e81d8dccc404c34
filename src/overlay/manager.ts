/**
 * The overlay manager: a core controller over Overlay objects. It re-decides an Overlay whenever it
 * changes, every Overlay whenever a Node changes (labels move a node in or out), and all of them on a
 * resync so certificates are renewed before they expire even when nothing else happens. Each decision is
 * `reconcileOverlay` (addresses, keys, certificates, status); the resulting plan goes to `onPlan`, which is
 * where the shell layer will push changed distributables and run the leavers' undo. The manager itself
 * never touches a node. A failed reconcile is retried with the core's backoff.
 */
import type { NodeResource } from '../core/kinds/node.ts';
import { controller } from '../core/ladder/controller.ts';
import type { ManagerContext, Stoppable } from '../core/layer.ts';
import type { OverlayResource } from './kind.ts';
import type { LighthouseRunner } from './lighthouse.ts';
import type { OverlayPlan } from './membership.ts';
import { memberLeft, type OverlayContext, purgeOverlay, reconcileOverlay } from './reconcile.ts';

export interface OverlayManagerOptions {
  /** Runs what Strata hosts itself: Nebula lighthouses and its WireGuard peers. */
  lighthouse?: LighthouseRunner;
  /** Re-decides every Overlay this often (certificate renewal needs no other trigger). Default 10 min. */
  resyncMs?: number;
  /**
   * Receives each fresh plan: push the members whose digest changed and run the leavers' undo. When it
   * resolves, the leavers' addresses are released, and a deleted Overlay's records are removed.
   */
  onPlan?: (plan: OverlayPlan) => Promise<void> | void;
}

/** Overlays whose selector picks this node (what the state-5 step of a node looks up). */
export async function overlaysOf(ctx: OverlayContext, node: NodeResource): Promise<OverlayResource[]> {
  const labels = node.metadata.labels ?? {};
  return (await ctx.resources.list<OverlayResource>('Overlay')).filter((o) =>
    Object.entries(o.spec.selector.matchLabels).every(([k, v]) => labels[k] === v),
  );
}

export async function startOverlayManager(
  ctx: OverlayContext & Pick<ManagerContext, 'hub' | 'log'>,
  opts: OverlayManagerOptions = {},
): Promise<Stoppable> {
  const ctl = controller(ctx, {
    kind: 'Overlay',
    resyncOn: ['Node'],
    resyncMs: opts.resyncMs ?? 600_000,
    concurrency: 2,
    async reconcile(name) {
      const plan = await reconcileOverlay(ctx, name);
      if (plan) await opts.lighthouse?.update(plan);
      // Without a shell layer to run their undo, leavers stay leaving (and a deleted Overlay waits).
      if (plan && opts.onPlan) {
        await opts.onPlan(plan);
        for (const l of plan.leaving) await memberLeft(ctx, name, l.node);
        if (plan.deleting) await purgeOverlay(ctx, name);
      }
    },
  });
  await ctl.start();
  return {
    async stop() {
      // No new runs after this; a run under way finishes before the caller stops the lighthouses.
      ctl.stop();
      await ctl.whenIdle();
    },
  };
}
