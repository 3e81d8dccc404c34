/**
 * The cluster manager: a core controller over Cluster objects (changes, resync, backoff). Each run is
 * `reconcileCluster` (PKI, join token, manifests, Node states, leavers). While a cluster's API server
 * answers, the manager keeps one watch on its Nodes (client-node's Watch), so a Node turning Ready
 * re-runs the reconcile and pokes the ladder engine for that member at once instead of at the next resync;
 * while the API server is not up, Nodes are not Ready yet, or an upgraded node's health is awaited, the
 * cluster is re-queued every few seconds. A Node changing in Strata (labels: joining or leaving a Cluster)
 * re-queues every Cluster (the controller's `resyncOn`). Rolling upgrades run the member's bundle at the
 * new version over SSH (upgrade.ts); tests and other callers may give their own `upgrade`.
 */
import { Watch } from '@kubernetes/client-node';
import { controller } from '../core/ladder/controller.ts';
import type { ManagerContext, Stoppable } from '../core/layer.ts';
import type { ClusterResource } from './kind.ts';
import type { ClusterClient } from './kube.ts';
import { membersOf, type ReconcileHooks, reconcileCluster } from './reconcile.ts';
import { uninstall } from './step.ts';
import { upgradeOverShell } from './upgrade.ts';

export interface ClusterManagerOptions
  extends Pick<
    ReconcileHooks,
    'upgrade' | 'healthTimeoutMs' | 'unreachableTimeoutMs' | 'abandonedUninstallMs'
  > {
  resyncMs?: number;
  /** How soon a cluster that is not settled is looked at again. Default 3 s. */
  pollMs?: number;
}

export async function startClusterManager(
  ctx: Pick<ManagerContext, 'resources' | 'store' | 'hub' | 'log' | 'transport' | 'engine'>,
  opts: ClusterManagerOptions = {},
): Promise<Stoppable & { enqueue(name: string): void; whenIdle(): Promise<void> }> {
  const watches = new Map<string, { server: string; abort?: AbortController; stopped: boolean }>();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const watchNodes = async (name: string, client: ClusterClient) => {
    const cur = watches.get(name);
    if (cur && cur.server === client.server && !cur.stopped) return;
    cur?.abort?.abort();
    const w: { server: string; abort?: AbortController; stopped: boolean } = {
      server: client.server,
      stopped: false,
    };
    watches.set(name, w);
    try {
      w.abort = await new Watch(client.kc).watch(
        '/api/v1/nodes',
        {},
        () => ctl.enqueue(name),
        () => {
          w.stopped = true;
        },
      );
    } catch (err) {
      w.stopped = true;
      ctx.log.warn('cluster node watch failed', { cluster: name, err });
    }
  };

  const ctl = controller(ctx, {
    kind: 'Cluster',
    resyncMs: opts.resyncMs ?? 30_000,
    // A Node's change can move it into or out of a cluster.
    resyncOn: ['Node'],
    async reconcile(name) {
      const { resyncMs: _r, pollMs: _p, ...bounds } = opts;
      const r = await reconcileCluster(ctx, name, {
        uninstall: (c: ClusterResource, node) => uninstall(ctx, c, node),
        upgrade: async (c, node) => {
          const role = (await membersOf(ctx, c)).find(
            (m) => m.node.metadata.name === node.metadata.name,
          )?.role;
          await upgradeOverShell(ctx, c, node, role ?? 'worker');
        },
        poke: (node) => ctx.engine.poke(node),
        ...bounds,
      });
      if (r.client) await watchNodes(name, r.client);
      else {
        watches.get(name)?.abort?.abort();
        watches.delete(name);
      }
      if (r.again && !stopped) {
        const t = setTimeout(() => {
          timers.delete(t);
          ctl.enqueue(name);
        }, opts.pollMs ?? 3000);
        t.unref();
        timers.add(t);
      }
    },
  });
  await ctl.start();
  return {
    enqueue: (n) => ctl.enqueue(n),
    whenIdle: () => ctl.whenIdle(),
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      for (const w of watches.values()) w.abort?.abort();
      ctl.stop();
    },
  };
}
