/**
 * The cluster layer's section of a Node's status, declared here onto the core's NodeStatus: which Cluster
 * the node is Ready in, as what, and under which Kubernetes Node name; and the hook that drops it when the
 * node is reprovisioned, since the new OS runs no kubelet yet.
 */
import type { NodeStatus } from '../core/kinds/node.ts';
import type { ClusterNodeStatus } from './kind.ts';

/** The node's typed status section of this layer. */
export interface NodeClusterStatus {
  cluster: string;
  role: ClusterNodeStatus['role'];
  /** The Kubernetes Node's name. */
  nodeName: string;
  readyAt: string;
}

declare module '../core/kinds/node.ts' {
  /** The cluster layer's section of a Node's status. */
  interface NodeStatus {
    cluster?: NodeClusterStatus;
  }
}

/** Reprovisioning: the cluster section goes with the old install. */
export function resetClusterStatus({ cluster: _c, ...s }: NodeStatus): NodeStatus {
  return s;
}
