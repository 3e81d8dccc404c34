/**
 * What the `cluster.join` step pushes to a node: a distributable (see src/shell/distributable.ts) holding
 * the distribution's check/apply/undo scripts (scripts/<distribution>/), a `cluster.env` with the plan, and
 * the node's credentials: on a control-plane node the cluster's PKI and the kubeconfigs of the control
 * plane's own components, on every node the kubelet's bootstrap kubeconfig carrying the join token. On
 * k3s an agent joins with the join token in k3s's secure format (`K10<CA hash>::<id>.<secret>`: k3s
 * accepts bootstrap tokens for agents, and the hash lets the agent check the server's CA before it sends
 * them), while servers use a server token derived from the cluster CA's key: k3s refuses a bootstrap
 * token as the server token, encrypts its datastore's bootstrap data with it, and it must never change. Key files are marked secret so the shell layer never
 * logs them. Binaries and Debian packages travel as registry artifacts, each checked by digest on the
 * node. Pure: the artifact references are looked up by the step.
 */
import { createHmac, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { containerdHostsToml } from '../registry/containerd.ts';
import type { ArtifactSpec, BundleFile, Distributable } from '../shell/distributable.ts';
import type { ClusterResource } from './kind.ts';
import { type JoinToken, renderKubeconfig } from './kubeconfig.ts';
import type { ClusterPki } from './pki.ts';
import type { Member } from './reconcile.ts';

const SCRIPTS = join(import.meta.dirname, 'scripts');

/**
 * The name a cluster's images give Strata's registry (`strata.registry/strata/web:1.35.0`). containerd on
 * every node resolves it through a `hosts.toml` (src/registry/containerd.ts) to the site's local registry
 * (`/registry/v2/`, a pull-through mirror of the global registry), so one image name works on every site.
 */
export const IMAGE_REGISTRY = 'strata.registry';

/**
 * The sandbox (pause) image containerd is told to use: scripts/build/images.sh builds it, and
 * `strata registry push-image $(bash scripts/build/images.sh)` puts it in Strata's registry.
 */
export const SANDBOX_IMAGE = `${IMAGE_REGISTRY}/strata/pause:1.0`;

/**
 * The Debian packages of an upstream Kubernetes node: containerd, runc, the CNI plugins, and what they
 * need that a minimal Debian lacks (iptables for the bridge plugin's masquerading, and its libraries),
 * as `scripts/registry/debian-packages.sh containerd runc containernetworking-plugins` pushes them.
 */
const NODE_DEBS = [
  'containerd',
  'runc',
  'containernetworking-plugins',
  'iptables',
  'libip4tc2',
  'libip6tc2',
  'libxtables12',
  'libmnl0',
  'libnftnl11',
  'libnfnetlink0',
  'libnetfilter-conntrack3',
  'netbase',
];

/** The artifacts a node needs: registry names (`kubernetes/kubelet`) and Debian packages. */
export function neededArtifacts(
  c: ClusterResource,
  role: Member['role'],
): { binaries: string[]; debs: string[] } {
  if (c.spec.distribution === 'k3s')
    return { binaries: ['k3s/k3s', 'k3s/install.sh', 'k3s/k3s-airgap-images-amd64.tar.zst'], debs: [] };
  const binaries = ['kubernetes/kubelet', 'kubernetes/kubectl'];
  const debs = [...NODE_DEBS];
  if (role === 'control-plane') {
    binaries.push(
      'kubernetes/kube-apiserver',
      'kubernetes/kube-controller-manager',
      'kubernetes/kube-scheduler',
    );
    if (c.spec.datastore === 'kine') binaries.push('kubernetes/kine');
    else debs.push('etcd-server');
  }
  return { binaries, debs };
}

/**
 * k3s's secure token for an agent: `K10`, the SHA-256 of the cluster CA's DER (its fingerprint: what k3s
 * checks a custom CA by), `::`, and the bootstrap token.
 */
export function k3sAgentToken(pki: Pick<ClusterPki, 'ca'>, bootstrapToken: string): string {
  const hash = new X509Certificate(pki.ca.cert).fingerprint256.replace(/:/g, '').toLowerCase();
  return `K10${hash}::${bootstrapToken}`;
}

/** k3s's server token: stable for the cluster's life (k3s encrypts its bootstrap data with it), secret. */
export function k3sServerToken(pki: Pick<ClusterPki, 'ca'>, cluster: string): string {
  return createHmac('sha256', pki.ca.key).update(`strata k3s server token ${cluster}`).digest('hex');
}

const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

export interface BundleInput {
  cluster: ClusterResource;
  node: string;
  role: Member['role'];
  /** The node's overlay address (global scope): what it advertises and is reached on. */
  address: string;
  endpoint: string;
  firstServer: boolean;
  pki: ClusterPki;
  token: JoinToken;
  artifacts: ArtifactSpec[];
  /** The site's local registry as the node reaches it (`http://10.213.0.1:7421`): containerd's mirror. */
  registryMirror?: string;
}

export function clusterBundle(b: BundleInput, undoOnly = false): Distributable {
  const dist = b.cluster.spec.distribution;
  const c = b.cluster.spec;
  const env = {
    CLUSTER: b.cluster.metadata.name,
    ROLE: b.role,
    NODE_NAME: b.node,
    ADDRESS: b.address,
    ENDPOINT: b.endpoint,
    VERSION: c.version,
    POD_CIDR: c.podCIDR,
    SERVICE_CIDR: c.serviceCIDR,
    CNI: c.cni,
    DATASTORE: c.datastore,
    SANDBOX_IMAGE,
    IMAGE_REGISTRY,
    FIRST_SERVER: b.firstServer ? 'yes' : 'no',
  };
  const files: BundleFile[] = [
    {
      name: 'cluster.env',
      content: `${Object.entries(env)
        .map(([k, v]) => `${k}=${q(v)}`)
        .join('\n')}\n`,
      mode: 0o644,
    },
  ];
  for (const s of undoOnly ? ['undo.sh'] : ['check.sh', 'apply.sh', 'undo.sh'])
    files.push({ name: s, content: readFileSync(join(SCRIPTS, dist, s), 'utf8'), mode: 0o755 });
  if (!undoOnly) {
    const secret = (name: string, content: string): BundleFile => ({
      name,
      content,
      mode: 0o600,
      secret: true,
    });
    const p = b.pki;
    files.push({ name: 'ca.crt', content: p.ca.cert, mode: 0o644 });
    if (dist === 'kubernetes' && b.registryMirror) {
      const hosts = containerdHostsToml({
        registry: IMAGE_REGISTRY,
        server: `http://${IMAGE_REGISTRY}`,
        mirrors: [b.registryMirror],
      });
      files.push({ name: 'containerd-hosts.toml', content: hosts.content, mode: 0o644 });
    }
    const token = `${b.token.id}.${b.token.secret}`;
    if (dist === 'k3s') {
      files.push(secret('join-token', `${k3sAgentToken(p, token)}\n`));
      if (b.role === 'control-plane')
        files.push(secret('server-token', `${k3sServerToken(p, b.cluster.metadata.name)}\n`));
    } else
      files.push(
        secret(
          'bootstrap-kubelet.conf',
          renderKubeconfig(b.cluster.metadata.name, 'kubelet-bootstrap', {
            server: b.endpoint,
            caPem: p.ca.cert,
            token,
          }),
        ),
      );
    if (b.role === 'control-plane') {
      const local = 'https://127.0.0.1:6443';
      const kc = (user: string, kp: { cert: string; key: string }) =>
        renderKubeconfig(b.cluster.metadata.name, user, {
          server: local,
          caPem: p.ca.cert,
          certPem: kp.cert,
          keyPem: kp.key,
        });
      files.push(
        secret('ca.key', p.ca.key),
        { name: 'apiserver.crt', content: p.apiserver.cert, mode: 0o644 },
        secret('apiserver.key', p.apiserver.key),
        { name: 'apiserver-kubelet-client.crt', content: p.apiserverKubeletClient.cert, mode: 0o644 },
        secret('apiserver-kubelet-client.key', p.apiserverKubeletClient.key),
        { name: 'front-proxy-ca.crt', content: p.frontProxyCa.cert, mode: 0o644 },
        secret('front-proxy-ca.key', p.frontProxyCa.key),
        { name: 'front-proxy-client.crt', content: p.frontProxyClient.cert, mode: 0o644 },
        secret('front-proxy-client.key', p.frontProxyClient.key),
        secret('sa.key', p.serviceAccount.key),
        { name: 'sa.pub', content: p.serviceAccount.pub, mode: 0o644 },
        secret('controller-manager.conf', kc('system:kube-controller-manager', p.controllerManager)),
        secret('scheduler.conf', kc('system:kube-scheduler', p.scheduler)),
        secret('admin.conf', kc('strata-admin', p.admin)),
      );
    }
  }
  return {
    manifest: {
      name: `cluster-${b.cluster.metadata.name}`,
      version: `${dist}-${c.version}-${b.role}`,
      scripts: undoOnly ? { undo: 'undo.sh' } : { check: 'check.sh', apply: 'apply.sh', undo: 'undo.sh' },
      artifacts: undoOnly ? [] : b.artifacts,
    },
    files,
  };
}
