/**
 * The objects Strata server-side applies into every cluster it makes, beside the join token's Secret:
 * the RBAC that kubelet TLS bootstrapping needs (as kubeadm sets it up), bound to the group Strata's join
 * tokens authenticate into. A joining kubelet authenticates with the token, may create a
 * CertificateSigningRequest, has it approved by the controller-manager's CSR approver, and later renews
 * its own client certificate as `system:nodes`. With `cni: kube-router`, also kube-router (the seed's pod
 * network): its ServiceAccount and RBAC, a ConfigMap with the CNI configuration and a kubeconfig, and a
 * DaemonSet whose image comes from Strata's registry. The clusters Strata makes run no kube-proxy, so
 * kube-router runs its service proxy too and reaches the API server at the cluster's endpoint (not the
 * `kubernetes` Service, which only a service proxy makes reachable). Nodes may also list Nodes (the Node
 * authorizer lets a kubelet read only its own): each node's pod-route service (scripts/kubernetes/apply.sh)
 * reads the other nodes' pod subnets and overlay addresses with its kubelet's credentials. Pure data: no I/O.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { ClusterSpec } from './kind.ts';
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

/** kube-router's version; its image is `<spec.registry>/strata/kube-router:<this>` in Strata's registry. */
export const KUBE_ROUTER_VERSION = 'v2.1.0';
export const kubeRouterImage = (registry: string) => `${registry}/strata/kube-router:${KUBE_ROUTER_VERSION}`;

type Obj = KubernetesObject & Record<string, unknown>;

/**
 * kube-router as a DaemonSet on every node (control plane included): BGP routes between the nodes' pod
 * subnets (`--run-router`), NetworkPolicy (`--run-firewall`) and Services (`--run-service-proxy`, IPVS).
 * Its init container writes the CNI configuration (a bridge on the node's pod subnet, host-local IPAM)
 * and the kubeconfig onto the host, where containerd's CNI and kube-router find them.
 */
export function kubeRouter(spec: Pick<ClusterSpec, 'podCIDR' | 'registry'>, endpoint: string): Obj[] {
  const ns = 'kube-system';
  const labels = { 'k8s-app': 'kube-router', [MANAGED_BY_LABEL]: FIELD_MANAGER };
  const image = kubeRouterImage(spec.registry ?? '');
  const cni = {
    cniVersion: '0.3.1',
    name: 'kube-router',
    plugins: [
      {
        type: 'bridge',
        name: 'kubernetes',
        bridge: 'kube-bridge',
        isDefaultGateway: true,
        hairpinMode: true,
        ipam: { type: 'host-local' },
      },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  };
  const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
  const kubeconfig = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: cluster\n  cluster:\n    certificate-authority: ${sa}/ca.crt\n    server: ${endpoint}`,
    'users:',
    `- name: kube-router\n  user:\n    tokenFile: ${sa}/token`,
    'contexts:',
    '- name: kube-router\n  context:\n    cluster: cluster\n    user: kube-router',
    'current-context: kube-router',
    '',
  ].join('\n');
  const hostPath = (name: string, path: string, type?: string) => ({
    name,
    hostPath: { path, ...(type ? { type } : {}) },
  });
  const read = ['get', 'list', 'watch'];
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'kube-router', namespace: ns, labels } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'strata:kube-router', labels },
      rules: [
        {
          apiGroups: [''],
          resources: ['namespaces', 'pods', 'services', 'nodes', 'endpoints'],
          verbs: read,
        },
        { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: read },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: read },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
        { apiGroups: [''], resources: ['services/status'], verbs: ['update'] },
        { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'strata:kube-router', labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'strata:kube-router' },
      subjects: [{ kind: 'ServiceAccount', name: 'kube-router', namespace: ns }],
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'kube-router', namespace: ns, labels },
      data: { 'cni-conf.json': `${JSON.stringify(cni, null, 2)}\n`, kubeconfig },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'kube-router', namespace: ns, labels },
      spec: {
        selector: { matchLabels: { 'k8s-app': 'kube-router' } },
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'kube-router',
            priorityClassName: 'system-node-critical',
            hostNetwork: true,
            hostPID: true,
            // Every node, tainted or not: without it no pod there has a network.
            tolerations: [{ operator: 'Exists' }],
            initContainers: [
              {
                name: 'install-cni',
                image,
                command: [
                  '/bin/sh',
                  '-c',
                  'set -e; install -m 0644 /config/cni-conf.json /etc/cni/net.d/10-kuberouter.conflist; install -m 0600 /config/kubeconfig /var/lib/kube-router/kubeconfig',
                ],
                volumeMounts: [
                  { name: 'config', mountPath: '/config' },
                  { name: 'cni-conf', mountPath: '/etc/cni/net.d' },
                  { name: 'state', mountPath: '/var/lib/kube-router' },
                ],
              },
            ],
            containers: [
              {
                name: 'kube-router',
                image,
                args: [
                  '--run-router=true',
                  '--run-firewall=true',
                  '--run-service-proxy=true',
                  '--bgp-graceful-restart=true',
                  `--cluster-cidr=${spec.podCIDR}`,
                  '--kubeconfig=/var/lib/kube-router/kubeconfig',
                ],
                env: [
                  { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                  { name: 'KUBE_ROUTER_CNI_CONF_FILE', value: '/etc/cni/net.d/10-kuberouter.conflist' },
                ],
                livenessProbe: {
                  httpGet: { path: '/healthz', port: 20244 },
                  initialDelaySeconds: 10,
                  periodSeconds: 5,
                },
                resources: { requests: { cpu: '100m', memory: '128Mi' } },
                securityContext: { privileged: true },
                volumeMounts: [
                  { name: 'lib-modules', mountPath: '/lib/modules', readOnly: true },
                  { name: 'cni-conf', mountPath: '/etc/cni/net.d' },
                  { name: 'state', mountPath: '/var/lib/kube-router' },
                  { name: 'xtables-lock', mountPath: '/run/xtables.lock' },
                ],
              },
            ],
            volumes: [
              { name: 'config', configMap: { name: 'kube-router' } },
              hostPath('lib-modules', '/lib/modules'),
              hostPath('cni-conf', '/etc/cni/net.d', 'DirectoryOrCreate'),
              hostPath('state', '/var/lib/kube-router', 'DirectoryOrCreate'),
              hostPath('xtables-lock', '/run/xtables.lock', 'FileOrCreate'),
            ],
          },
        },
      },
    },
  ];
}
