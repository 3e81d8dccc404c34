/**
 * The overlay manager: it re-decides an Overlay whenever the Overlay or a Node changes, and on a timer so
 * certificates are renewed before they expire even when nothing else happens. Each decision is
 * `reconcileOverlay` (addresses, keys, certificates, status); the resulting plan goes to `onPlan`, which is
 * where the shell layer will push changed distributables and run the leavers' undo. The manager itself
 * never touches a node. A failed reconcile is retried with the core's backoff.
 */
import type { NodeResource } from '../core/kinds/node.ts';
import { backoffMs, WorkQueue } from '../core/ladder/queue.ts';
import type { Stoppable } from '../core/layer.ts';
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
  ctx: OverlayContext,
  opts: OverlayManagerOptions = {},
): Promise<Stoppable> {
  const attempts = new Map<string, number>();
  const queue = new WorkQueue(async (name) => {
    try {
      const plan = await reconcileOverlay(ctx, name);
      if (plan) await opts.lighthouse?.update(plan);
      // Without a shell layer to run their undo, leavers stay leaving (and a deleted Overlay waits).
      if (plan && opts.onPlan) {
        await opts.onPlan(plan);
        for (const l of plan.leaving) await memberLeft(ctx, name, l.node);
        if (plan.deleting) await purgeOverlay(ctx, name);
      }
      attempts.delete(name);
    } catch (err) {
      const n = (attempts.get(name) ?? 0) + 1;
      attempts.set(name, n);
      ctx.log?.warn('overlay reconcile failed', { overlay: name, attempt: n, err });
      queue.addAfter(name, backoffMs(n, 1000, 300_000));
    }
  }, 2);
  const all = async () => {
    for (const o of await ctx.resources.list('Overlay')) queue.add(o.metadata.name);
  };
  const off = ctx.hub?.onChange((ev) => {
    if (ev.object.kind === 'Overlay') queue.add(ev.object.metadata.name);
    else if (ev.object.kind === 'Node') void all().catch(() => {});
  });
  await all();
  const timer = setInterval(() => void all().catch(() => {}), opts.resyncMs ?? 600_000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      off?.();
      await queue.whenIdle();
      queue.stop();
    },
  };
}
