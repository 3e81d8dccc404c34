/**
 * The cluster layer's wire and storage contract: which record collections hold its secrets and records, the
 * keys inside them, the finalizer on every Cluster, and the names it uses inside a Kubernetes cluster.
 * Kept in one place because the manager, the step and operators' tools read the same records, and because
 * which collection holds secrets is a security boundary: everything under SECRETS is sealed at rest by
 * the store and never logged or served (the admin kubeconfig leaves only through `strata kubeconfig`, an
 * admin-only route).
 */

import { SECRETS_COLLECTION, type WireContract, wireContract } from '../core/wire.ts';

/** The store's sealed secret records (the same collection the SSH keys and overlay CAs use). */
export const SECRETS = SECRETS_COLLECTION;
/** What Strata installed on which node, key `<cluster>/<node>`: an uninstall runs only where this exists. */
export const INSTALLED_COLLECTION = 'cluster-installed';

/** The cluster's PKI (CA, serving and client certificates, service-account key), one sealed record. */
export const pkiSecretKey = (cluster: string) => `cluster/${cluster}/pki`;
/** The current join (bootstrap) token and the ids of the ones it replaced. */
export const tokenSecretKey = (cluster: string) => `cluster/${cluster}/join-token`;
export const installedKey = (cluster: string, node: string) => `${cluster}/${node}`;

/** On every Cluster: its members are drained and uninstalled and its secrets removed before it goes. */
export const CLUSTER_FINALIZER = 'strata.dev/cluster';
/** Set to a new value (a date, a counter) to rotate the cluster's join token now. */
export const ROTATE_TOKEN_ANNOTATION = 'strata.dev/rotate-join-token';

/** Set to a new value to start a stopped rolling upgrade again, from the node it stopped at. */
export const RETRY_UPGRADE_ANNOTATION = 'strata.dev/retry-upgrade';
/**
 * Set to `true` to let members leave (and a deleted Cluster go) now, without the drain, when the API
 * server does not answer; without it Strata waits up to a bound (the manager's `unreachableTimeoutMs`).
 */
export const FORCE_LEAVE_ANNOTATION = 'strata.dev/force-leave';

/** Server-side apply field manager: every object Strata applies is owned by it. */
export const FIELD_MANAGER = 'strata';
/** The group a Strata bootstrap token authenticates into (bound to node bootstrapping by RBAC). */
export const BOOTSTRAP_GROUP = 'system:bootstrappers:strata:default-node-token';
/** Labels Strata puts on the Kubernetes objects it applies, to find (and prune) them. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';

/**
 * The cluster layer has no subjects of its own: its manager talks to the Kubernetes API and to nodes
 * through the shell layer. Its part of the wire is what it keeps in the store.
 */
export const wire: WireContract = wireContract('cluster', {}, {}, [
  {
    name: SECRETS,
    key: `${pkiSecretKey('<cluster>')}, ${tokenSecretKey('<cluster>')}`,
    holds: "the Cluster's PKI (CA and keys, one record) and its current join token with the ids it replaced",
    writers: ['manager'],
    readers: ['manager'],
  },
  {
    name: INSTALLED_COLLECTION,
    key: installedKey('<cluster>', '<node>'),
    holds: 'what Strata installed on a node for a cluster, so an uninstall runs only where this exists',
    writers: ['manager'],
    readers: ['manager'],
  },
]);
