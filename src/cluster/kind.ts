/**
 * Cluster: one layer-1 Kubernetes cluster (the seed's state 6), declared in the cluster layer that owns it.
 * Its control-plane and worker nodes are the Nodes its two label selectors pick (a Node both pick is a
 * control-plane node). Strata generates its PKI and join token as sealed secrets, installs the chosen
 * distribution over SSH in global scope, and marks a member state 6 once its Kubernetes Node is Ready.
 * Every check names the field and the fix, because people write these by hand.
 */
import { z } from 'zod';
import { registerAdmission } from '../core/resources/admission.ts';
import type { FieldIssue } from '../core/resources/errors.ts';
import { cidr, duration, ipToInt, labels, parseCidr } from '../core/resources/fields.ts';
import { registerKind } from '../core/resources/kinds.ts';
import type { Condition, Resource } from '../core/resources/types.ts';
import { CLUSTER_FINALIZER } from './protocol.ts';
import { admitVersions } from './versions.ts';

const selector = (what: string, example: string) =>
  z
    .object(
      {
        matchLabels: labels.describe(
          `Labels a Node must all carry to be one of the ${what}, like {${example}}; never empty.`,
        ),
      },
      { message: `expected a label selector for the ${what}, like {matchLabels: {${example}}}` },
    )
    .strict();

export const clusterSpec = z
  .object({
    distribution: z
      .enum(['kubernetes', 'k3s'], { message: 'expected distribution "kubernetes" or "k3s"' })
      .default('kubernetes')
      .describe(
        "Which Kubernetes is installed: kubernetes (upstream binaries from Strata's registry as systemd units) or k3s (k3s's air-gap install).",
      ),
    version: z
      .string()
      .regex(/^v1\.\d{1,2}\.\d{1,3}$/, { message: 'expected a Kubernetes version like v1.34.4' })
      .default('v1.34.4')
      .describe(
        "Kubernetes version, like v1.34.4: the tag the binaries are pulled by from Strata's registry (kubernetes/kubelet:v1.34.4 and so on). Changing it upgrades the members one node at a time, control plane first; a version the registry lacks, or one skipping a minor version, is refused.",
      ),
    controlPlane: z
      .object({
        selector: selector('control-plane nodes', 'role: control-plane').describe(
          'The Nodes whose labels match matchLabels are control-plane nodes (also when the workers selector picks them too).',
        ),
        count: z
          .union([z.literal(1), z.literal(3)], { message: 'expected 1 or 3 control-plane nodes' })
          .default(1)
          .describe(
            'How many control-plane nodes the selector should pick: 1, or 3 for an HA etcd quorum (not with datastore kine). Another number is reported in status.problems.',
          ),
      })
      .strict()
      .describe(
        'The control-plane nodes: they run the datastore, kube-apiserver, kube-controller-manager and kube-scheduler (a k3s server on k3s), and a kubelet.',
      ),
    workers: z
      .object({
        selector: selector('worker nodes', 'role: worker').describe(
          'The Nodes whose labels match matchLabels (and not the control-plane selector) are workers.',
        ),
      })
      .strict()
      .optional()
      .describe(
        'The worker nodes: they run containerd and a kubelet only (a k3s agent on k3s). Absent: no workers.',
      ),
    podCIDR: cidr
      .default('10.244.0.0/16')
      .describe(
        "IPv4 network pods get addresses from, /8 to /24 and apart from serviceCIDR; each node's pods get a /24 of it.",
      ),
    serviceCIDR: cidr
      .default('10.96.0.0/12')
      .describe(
        "IPv4 network Service cluster IPs come from, /12 to /28 and apart from podCIDR; its first address is the kubernetes Service's, named in the API server's certificate.",
      ),
    cni: z
      .enum(['bridge', 'kube-router'], { message: 'expected cni "bridge" or "kube-router"' })
      .default('bridge')
      .describe(
        "The pod network. bridge: a CNI bridge on each node's pod subnet, routed to the other nodes' pod subnets over their overlay addresses (k3s: its own flannel). kube-router: Strata applies the kube-router DaemonSet (routing, network policy, service proxy) with its image from Strata's registry (spec.registry), and turns k3s's flannel off.",
      ),
    registry: z
      .string()
      .regex(/^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$/, {
        message:
          "expected Strata's registry as image names start with it, HOST or HOST:PORT like 10.77.0.1:7420",
      })
      .optional()
      .describe(
        "Strata's registry as the nodes' containerd names images from it (HOST:PORT, like 10.77.0.1:7420): where the images Strata applies (kube-router's) are pulled from. Needed with cni: kube-router.",
      ),
    datastore: z
      .enum(['etcd', 'kine'], { message: 'expected datastore "etcd" or "kine"' })
      .default('etcd')
      .describe(
        "Where the API server keeps its state. etcd: etcd on each control-plane node (k3s: its embedded etcd). kine: the etcd API on one SQLite file (k3s's default), so one control-plane node only.",
      ),
    endpoint: z
      .object({
        host: z
          .string()
          .regex(/^[A-Za-z0-9.:-]{1,253}$/, {
            message: 'expected the API server address or DNS name, like 10.77.0.1',
          })
          .describe(
            "The API server's address or DNS name, like 10.77.0.1; its serving certificate names it.",
          ),
        port: z
          .number({ message: 'expected a TCP port like 6443' })
          .int()
          .min(1, { message: 'expected a TCP port 1..65535' })
          .max(65535, { message: 'expected a TCP port 1..65535' })
          .default(6443)
          .describe("The API server's TCP port."),
      })
      .strict()
      .optional()
      .describe(
        "Where the API server is reached. Absent: the first control-plane node's overlay address, port 6443. Set it for a load balancer in front of three control-plane nodes, or a control plane run elsewhere.",
      ),
    joinTokenTTL: duration
      .default('24h')
      .describe(
        'How long a join token is valid (seconds, or like 30m, 12h, 1d); Strata makes a new one when a third of that is left.',
      ),
  })
  .strict();

export type ClusterSpec = z.infer<typeof clusterSpec>;

export interface ClusterNodeStatus {
  role: 'control-plane' | 'worker';
  /** `Ready` from the Node object's Ready condition, `Leaving` while it is drained, `NotRegistered`. */
  state: 'Ready' | 'NotReady' | 'NotRegistered' | 'Leaving';
  kubeletVersion?: string;
  /** Leaving: since when it waits for an API server that does not answer. */
  since?: string;
}

/** A rolling upgrade to `spec.version`, one member at a time (upgrade.ts). */
export interface ClusterUpgradeStatus {
  /** The version being rolled out. */
  to: string;
  /** Upgrading: the next node is started; Checking: `node` was upgraded and its health is awaited;
   * Failed: `node` failed and the rollout stopped; Done: every member runs `to`. */
  phase: 'Upgrading' | 'Checking' | 'Failed' | 'Done';
  node?: string;
  /** When `node`'s upgrade finished (Checking) or failed. */
  since?: string;
  /** Members upgraded in this rollout, in order. */
  done: string[];
  message?: string;
  /** The retry annotation's value last acted on. */
  retriedFor?: string;
}

export interface ClusterStatus {
  /** `Pending` (no API server yet), `Ready` (API server up, every member Ready), `Degraded`. */
  phase?: string;
  endpoint?: string;
  /** What the API server reports (`/version`). */
  serverVersion?: string;
  nodes?: Record<string, ClusterNodeStatus>;
  conditions?: Condition[];
  caFingerprint?: string;
  /** The join token's public id (never its secret half) and expiry. */
  joinTokenId?: string;
  joinTokenExpires?: string;
  /** The rotate annotation's value last acted on. */
  rotatedFor?: string;
  problems?: string[];
  upgrade?: ClusterUpgradeStatus;
  observedGeneration?: number;
}

export type ClusterResource = Resource<ClusterSpec, ClusterStatus>;

/** Whether two IPv4 networks share an address. */
function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (!x || !y) return false;
  const p = Math.min(x.prefix, y.prefix);
  const mask = p === 0 ? 0 : (~0 << (32 - p)) >>> 0;
  return (ipToInt(x.network) & mask) >>> 0 === (ipToInt(y.network) & mask) >>> 0;
}

function validateCluster(r: Resource, at: (p: string) => FieldIssue): FieldIssue[] {
  const s = r.spec as ClusterSpec;
  const out: FieldIssue[] = [];
  const add = (p: string, message: string) => out.push({ ...at(p), message });
  if (!Object.keys(s.controlPlane.selector.matchLabels).length)
    add(
      'spec.controlPlane.selector.matchLabels',
      'is empty, so every Node would be a control-plane node: give a label like {role: control-plane}',
    );
  if (s.workers && !Object.keys(s.workers.selector.matchLabels).length)
    add(
      'spec.workers.selector.matchLabels',
      'is empty, so every Node would join as a worker: give a label like {role: worker}, or drop spec.workers',
    );
  if (overlaps(s.podCIDR, s.serviceCIDR))
    add(
      'spec.serviceCIDR',
      `${s.serviceCIDR} overlaps spec.podCIDR ${s.podCIDR}: pick disjoint networks like 10.244.0.0/16 and 10.96.0.0/12`,
    );
  for (const [field, c, min, max] of [
    ['spec.podCIDR', s.podCIDR, 8, 24],
    ['spec.serviceCIDR', s.serviceCIDR, 12, 28],
  ] as const) {
    const p = parseCidr(c)?.prefix;
    if (p !== undefined && (p < min || p > max))
      add(
        field,
        `prefix /${p} is outside /${min}../${max}: use a network like ${field === 'spec.podCIDR' ? '10.244.0.0/16' : '10.96.0.0/12'}`,
      );
  }
  if (s.controlPlane.count === 3 && s.datastore === 'kine')
    add(
      'spec.datastore',
      'kine keeps its data in one SQLite file, so three control-plane nodes cannot share it: use datastore: etcd or controlPlane.count: 1',
    );
  if (s.cni === 'kube-router' && !s.registry)
    add(
      'spec.registry',
      "is needed with cni: kube-router: its DaemonSet's image comes from Strata's registry; set it to the HOST:PORT the nodes pull images by, like 10.77.0.1:7420",
    );
  return out;
}

registerAdmission('Cluster', (items, _view, _limits, before) =>
  admitVersions(items as unknown as ClusterResource[], before),
);

const cond = (r: Resource, type: string) =>
  (r.status as ClusterStatus | undefined)?.conditions?.find((c) => c.type === type);

registerKind({
  kind: 'Cluster',
  plural: 'clusters',
  aliases: ['cluster', 'cl'],
  description:
    'A layer-1 Kubernetes cluster (upstream kubernetes or k3s) installed over SSH on the Nodes its selectors pick.',
  spec: clusterSpec,
  validate: validateCluster,
  finalizers: [CLUSTER_FINALIZER],
  columns: [
    { header: 'DISTRIBUTION', value: (r) => (r.spec as ClusterSpec).distribution },
    {
      header: 'VERSION',
      value: (r) => (r.status as ClusterStatus | undefined)?.serverVersion ?? (r.spec as ClusterSpec).version,
    },
    {
      header: 'READY',
      value: (r) => {
        const nodes = Object.values((r.status as ClusterStatus | undefined)?.nodes ?? {});
        return `${nodes.filter((n) => n.state === 'Ready').length}/${nodes.length}`;
      },
    },
    { header: 'PHASE', value: (r) => (r.status as ClusterStatus | undefined)?.phase ?? 'Pending' },
    {
      header: 'CONDITIONS',
      value: (r) =>
        ((r.status as ClusterStatus | undefined)?.conditions ?? [])
          .filter((c) => c.status === 'True')
          .map((c) => c.type)
          .join(',') || '-',
    },
    {
      header: 'ENDPOINT',
      wide: true,
      value: (r) => (r.status as ClusterStatus | undefined)?.endpoint ?? '-',
    },
    {
      header: 'UPGRADE',
      wide: true,
      value: (r) => {
        const u = (r.status as ClusterStatus | undefined)?.upgrade;
        return u ? `${u.phase} ${u.to}${u.node && u.phase !== 'Done' ? ` (${u.node})` : ''}` : '-';
      },
    },
    { header: 'MESSAGE', wide: true, value: (r) => cond(r, 'APIServerReady')?.message ?? '' },
  ],
});
