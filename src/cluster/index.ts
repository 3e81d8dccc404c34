/**
 * The cluster layer (state 6, the layer-1 cluster node): the Cluster kind, its PKI and join tokens
 * (sealed secrets), the cluster manager (a core controller that talks to each cluster's API server with
 * @kubernetes/client-node), the ladder step `cluster.join` that installs the distribution over SSH in
 * global scope, and `GET /api/v1/clusters/NAME/kubeconfig` (admin only) behind `strata kubeconfig`.
 */
import type { Layer, ManagerContext } from '../core/layer.ts';
import { StrataError } from '../core/resources/errors.ts';
import type { ClusterResource } from './kind.ts';
import './kind.ts';
import { startClusterManager } from './manager.ts';
import { adminKubeconfig, endpointOf, membersOf, storedPki } from './reconcile.ts';
import { resetClusterStatus } from './status.ts';
import { clusterJoinStep } from './step.ts';

export * from './kind.ts';
export * from './kube.ts';
export * from './kubeconfig.ts';
export * from './manager.ts';
export * from './manifests.ts';
export * from './pki.ts';
export * from './protocol.ts';
export * from './reconcile.ts';
export * from './step.ts';
export * from './upgrade.ts';
export * from './versions.ts';

export const KUBECONFIG_PATH = '/api/v1/clusters/:name/kubeconfig';

/** The admin kubeconfig of a cluster: it holds the admin key, so only admins get it. */
export function addKubeconfigRoute(ctx: ManagerContext): void {
  ctx.router.add(
    'GET',
    KUBECONFIG_PATH,
    async ({ params }) => {
      const c = (await ctx.resources.mustGet('Cluster', params.name!)) as unknown as ClusterResource;
      const endpoint = endpointOf(c, await membersOf(ctx, c));
      if (!endpoint)
        throw new StrataError(
          409,
          'Conflict',
          `cluster "${c.metadata.name}" has no API server address yet: no control-plane node has an overlay address (state 5) and spec.endpoint is not set`,
        );
      const pki = await storedPki(ctx, c.metadata.name).catch((e: Error) => {
        throw new StrataError(409, 'Conflict', e.message);
      });
      return {
        kind: 'Kubeconfig',
        cluster: c.metadata.name,
        server: endpoint,
        kubeconfig: adminKubeconfig(c.metadata.name, endpoint, pki),
      };
    },
    {
      role: 'admin',
      summary: "A cluster's admin kubeconfig (holds the admin client key: admin tokens only)",
      tags: ['cluster'],
      errors: [404, 409],
    },
  );
}

export const clusterLayer: Layer = {
  name: 'cluster',
  roles: [],
  steps: [clusterJoinStep()],
  resetStatus: resetClusterStatus,
  providers: { cluster: ['kubernetes', 'k3s'] },
  async manager(ctx) {
    addKubeconfigRoute(ctx);
    return startClusterManager(ctx);
  },
};
