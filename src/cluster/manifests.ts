/**
 * The objects Strata server-side applies into every cluster it makes, beside the join token's Secret:
 * the RBAC that kubelet TLS bootstrapping needs (as kubeadm sets it up), bound to the group Strata's join
 * tokens authenticate into. A joining kubelet authenticates with the token, may create a
 * CertificateSigningRequest, has it approved by the controller-manager's CSR approver, and later renews
 * its own client certificate as `system:nodes`. Nodes may also list Nodes (the Node authorizer lets a kubelet
 * read only its own): each node's pod-route service (scripts/kubernetes/apply.sh) reads the other nodes'
 * pod subnets and overlay addresses with its kubelet's credentials. Pure data: no I/O.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { BOOTSTRAP_GROUP, FIELD_MANAGER, MANAGED_BY_LABEL } from './protocol.ts';

const binding = (name: string, role: string, group: string): KubernetesObject & Record<string, unknown> => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRoleBinding',
  metadata: { name, labels: { [MANAGED_BY_LABEL]: FIELD_MANAGER } },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: group }],
});

const NODE_LISTER = 'strata:node-lister';

export function bootstrapRbac(): KubernetesObject[] {
  return [
    // A token holder may submit a CSR for a kubelet client certificate…
    binding('strata:kubelet-bootstrap', 'system:node-bootstrapper', BOOTSTRAP_GROUP),
    // …which the CSR approver signs without a human…
    binding(
      'strata:node-autoapprove-bootstrap',
      'system:certificates.k8s.io:certificatesigningrequests:nodeclient',
      BOOTSTRAP_GROUP,
    ),
    // …and a node renews its own client certificate later.
    binding(
      'strata:node-autoapprove-certificate-rotation',
      'system:certificates.k8s.io:certificatesigningrequests:selfnodeclient',
      'system:nodes',
    ),
    // Every node routes to the other nodes' pod subnets: it lists Nodes (read-only).
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: NODE_LISTER, labels: { [MANAGED_BY_LABEL]: FIELD_MANAGER } },
      rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }],
    },
    binding(NODE_LISTER, NODE_LISTER, 'system:nodes'),
  ];
}
