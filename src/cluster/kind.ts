/**
 * Cluster: one layer-1 Kubernetes cluster (the seed's state 6), declared in the cluster layer that owns it.
 * Its control-plane and worker nodes are the Nodes its two label selectors pick (a Node both pick is a
 * control-plane node). Strata generates its PKI and join token as sealed secrets, installs the chosen
 * distribution over SSH in global scope, and marks a member state 6 once its Kubernetes Node is Ready.
 * Every check names the field and the fix, because people write these by hand.
 */
import { z } from 'zod';
import type { FieldIssue } from '../core/resources/errors.ts';
import { cidr, duration, ipToInt, labels, parseCidr } from '../core/resources/fields.ts';
import { registerKind } from '../core/resources/kinds.ts';
import type { Condition, Resource } from '../core/resources/types.ts';
import { CLUSTER_FINALIZER } from './protocol.ts';

const selector = (what: string, example: string) =>
  z
    .object(
      { matchLabels: labels },
      { message: `expected a label selector for the ${what}, like {matchLabels: {${example}}}` },
    )
    .strict();

export const clusterSpec = z
  .object({
    distribution: z
      .enum(['kubernetes', 'k3s'], { message: 'expected distribution "kubernetes" or "k3s"' })
      .default('kubernetes'),
    version: z
      .string()
      .regex(/^v1\.\d{1,2}\.\d{1,3}$/, { message: 'expected a Kubernetes version like v1.34.4' })
      .default('v1.34.4'),
    controlPlane: z
      .object({
        selector: selector('control-plane nodes', 'role: control-plane'),
        /** How many control-plane nodes to expect: 1, or 3 for an HA etcd quorum. */
        count: z
          .union([z.literal(1), z.literal(3)], { message: 'expected 1 or 3 control-plane nodes' })
          .default(1),
      })
      .strict(),
    workers: z
      .object({ selector: selector('worker nodes', 'role: worker') })
      .strict()
      .optional(),
    podCIDR: cidr.default('10.244.0.0/16'),
    serviceCIDR: cidr.default('10.96.0.0/12'),
    cni: z
      .enum(['bridge', 'kube-router'], { message: 'expected cni "bridge" or "kube-router"' })
      .default('bridge'),
    datastore: z.enum(['etcd', 'kine'], { message: 'expected datastore "etcd" or "kine"' }).default('etcd'),
    /**
     * Where the API server is reached. Default: the first control-plane node's overlay address, port 6443.
     * Set it for a load balancer in front of three control-plane nodes, or a control plane run elsewhere.
     */
    endpoint: z
      .object({
        host: z.string().regex(/^[A-Za-z0-9.:-]{1,253}$/, {
          message: 'expected the API server address or DNS name, like 10.77.0.1',
        }),
        port: z
          .number({ message: 'expected a TCP port like 6443' })
          .int()
          .min(1, { message: 'expected a TCP port 1..65535' })
          .max(65535, { message: 'expected a TCP port 1..65535' })
          .default(6443),
      })
      .strict()
      .optional(),
    /** How long a join token is valid; Strata makes a new one when a third of that is left. */
    joinTokenTTL: duration.default('24h'),
  })
  .strict();

export type ClusterSpec = z.infer<typeof clusterSpec>;

export interface ClusterNodeStatus {
  role: 'control-plane' | 'worker';
  /** `Ready` from the Node object's Ready condition, `Leaving` while it is drained, `NotRegistered`. */
  state: 'Ready' | 'NotReady' | 'NotRegistered' | 'Leaving';
  kubeletVersion?: string;
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
  return out;
}

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
    { header: 'MESSAGE', wide: true, value: (r) => cond(r, 'APIServerReady')?.message ?? '' },
  ],
});
