/**
 * The ladder step into state 6 (`cluster.join`, 5 → 6). A node is a layer-1 cluster node when the API
 * server of the Cluster that selects it reports its Node object Ready, so:
 *
 * - `check`: a Cluster selects the node, its API server answers, and the Node named after the node is
 *   Ready. Then `status.cluster` records the cluster and role;
 * - `action`: push the distribution's bundle (bundle.ts) over SSH in GLOBAL scope (the overlay address,
 *   state 5's achievement): the control plane first; a worker waits until the control plane's API server
 *   answers. Binaries and packages come from Strata's registry (the node's local registry, a pull-through
 *   cache of the global one). Then the kubelet joins by TLS bootstrap, and the check sees it Ready;
 * - `undo`: drain the node (cordon, evict), delete its Node object, run the bundle's undo script, and
 *   drop `status.cluster`.
 */
import type { NodeResource, NodeStatus } from '../core/kinds/node.ts';
import { type Step, type StepContext, setStatusSection } from '../core/ladder/step.ts';
import { STEPS } from '../ladder.ts';
import { debianArtifacts } from '../overlay/step.ts';
import { StoreRefs } from '../registry/store.ts';
import { localRegistryUrl, shellDistribute } from '../shell/client.ts';
import type { ArtifactSpec } from '../shell/distributable.ts';
import { clusterBundle, neededArtifacts } from './bundle.ts';
import type { ClusterResource } from './kind.ts';
import type { ClusterClient } from './kube.ts';
import { FORCE_LEAVE_ANNOTATION, INSTALLED_COLLECTION, installedKey } from './protocol.ts';
import {
  adminClient,
  type ClusterContext,
  clustersOf,
  endpointOf,
  kubeNodeName,
  membersOf,
  type NodeClusterStatus,
  storedPki,
  storedToken,
  UNREACHABLE_TIMEOUT_MS,
} from './reconcile.ts';

type Ctx = ClusterContext;

/** The registry artifacts a node's bundle needs, and the names of those Strata's registry lacks. */
export async function artifactsFor(
  ctx: Ctx,
  c: ClusterResource,
  role: NodeClusterStatus['role'],
): Promise<{ artifacts: ArtifactSpec[]; missing: string[] }> {
  const need = neededArtifacts(c, role);
  const refs = new StoreRefs(ctx.store);
  const artifacts: ArtifactSpec[] = [];
  const missing: string[] = [];
  for (const name of need.binaries) {
    const r = await refs.get(name, c.spec.version);
    if (r)
      artifacts.push({ name: name.split('/').at(-1)!, ref: `${name}:${c.spec.version}`, digest: r.digest });
    else missing.push(`${name}:${c.spec.version}`);
  }
  const debs = await debianArtifacts(ctx.store, need.debs);
  for (const d of need.debs) if (!debs.some((a) => a.name === `${d}.deb`)) missing.push(`debian/*/*/${d}`);
  return { artifacts: [...artifacts, ...debs], missing };
}

/** Builds a member's bundle (or its undo-only form) from the stored PKI and token. */
async function bundleFor(
  ctx: Ctx,
  c: ClusterResource,
  node: NodeResource,
  undoOnly: boolean,
  artifacts: ArtifactSpec[] = [],
) {
  const members = await membersOf(ctx, c);
  const m = members.find((x) => x.node.metadata.name === node.metadata.name);
  const role = m?.role ?? node.status?.cluster?.role ?? 'worker';
  const endpoint = endpointOf(c, members) ?? '';
  const token = await storedToken(ctx, c.metadata.name);
  if (!token) throw new Error(`cluster "${c.metadata.name}" has no join token yet`);
  const firstCp = members.find((x) => x.role === 'control-plane')?.node.metadata.name;
  const registry = await localRegistryUrl(ctx, node);
  return clusterBundle(
    {
      cluster: c,
      node: kubeNodeName(node),
      role,
      address: node.status?.overlay?.address ?? '',
      endpoint,
      firstServer: firstCp === node.metadata.name,
      pki: await storedPki(ctx, c.metadata.name),
      token,
      artifacts,
      ...(registry ? { registryMirror: new URL(registry).origin } : {}),
    },
    undoOnly,
  );
}

/**
 * Pushes a member's bundle with `artifacts` over global scope (the scripts install, or upgrade to the
 * Cluster's spec.version, and restart what changed) and records what is installed there. Throws with the
 * bundle's error when it failed.
 */
export async function installOn(
  ctx: Ctx,
  c: ClusterResource,
  node: NodeResource,
  role: NodeClusterStatus['role'],
  artifacts: ArtifactSpec[],
) {
  const r = await shellDistribute(ctx, node, await bundleFor(ctx, c, node, false, artifacts), {
    scope: 'global',
    streamStep: STEPS.clusterJoin,
    timeoutMs: 600_000,
  });
  if (r.outcome === 'failed') throw new Error(r.error ?? 'the bundle failed');
  await ctx.store.putRecords(INSTALLED_COLLECTION, [
    {
      key: installedKey(c.metadata.name, node.metadata.name),
      value: {
        distribution: c.spec.distribution,
        version: c.spec.version,
        role,
        at: new Date().toISOString(),
      },
    },
  ]);
  return r;
}

/** Runs the bundle's undo on a node over global scope (what the manager's leave hook and `undo` call). */
export async function uninstall(ctx: Ctx, c: ClusterResource, node: NodeResource): Promise<void> {
  const r = await shellDistribute(ctx, node, await bundleFor(ctx, c, node, true), {
    scope: 'global',
    op: 'undo',
    streamStep: STEPS.clusterJoin,
  });
  if (r.outcome === 'failed')
    throw new Error(`cluster "${c.metadata.name}": undo on "${node.metadata.name}": ${r.error}`);
  await ctx.store.deleteRecords(INSTALLED_COLLECTION, [installedKey(c.metadata.name, node.metadata.name)]);
}

/**
 * Whether the undo can drain the node: the API server answers. While it does not, the undo fails (the
 * engine retries it) for up to UNREACHABLE_TIMEOUT_MS from its first failure, then (or at once, with the
 * Cluster's force-leave annotation) goes on without the drain and says what stays behind.
 */
async function drainable(ctx: StepContext, c: ClusterResource, client: ClusterClient): Promise<boolean> {
  const down = await client.ready().then(
    () => undefined,
    (e: Error) => e.message,
  );
  if (!down) return true;
  const step = ctx.node.status?.step;
  const since = step?.name === STEPS.clusterJoin && step.from === 6 ? step.startedAt : undefined;
  const until = Date.parse(since ?? new Date().toISOString()) + UNREACHABLE_TIMEOUT_MS;
  const forced = c.metadata.annotations?.[FORCE_LEAVE_ANNOTATION] === 'true';
  if (!forced && Date.now() < until)
    throw new Error(
      `${down}: Node ${kubeNodeName(ctx.node)} cannot be drained; retrying until ${new Date(until).toISOString()}, then it leaves without the drain (now: "strata annotate cluster ${c.metadata.name} ${FORCE_LEAVE_ANNOTATION}=true")`,
    );
  ctx.record(
    'ClusterLeft',
    `left cluster "${c.metadata.name}" without a drain (the API server at ${client.server} does not answer${forced ? ` and ${FORCE_LEAVE_ANNOTATION}=true is set` : ''}); left behind: its Node object ${kubeNodeName(ctx.node)} in the cluster's datastore`,
    undefined,
    'Warning',
  );
  return false;
}

export function clusterJoinStep(): Step {
  return {
    name: STEPS.clusterJoin,
    description: 'install Kubernetes (or k3s) over SSH in global scope and wait for the Node to be Ready',
    timeoutMs: 20 * 60_000,

    async check(ctx: StepContext): Promise<boolean> {
      const node = ctx.node;
      const [c] = await clustersOf(ctx, node);
      if (!c) return false;
      const client = await adminClient(ctx, c).catch(() => undefined);
      const kube = client ? await client.nodes().catch(() => undefined) : undefined;
      const k = kube?.find((n) => n.name === kubeNodeName(node));
      if (!k?.ready) return false;
      const role =
        (await membersOf(ctx, c)).find((m) => m.node.metadata.name === node.metadata.name)?.role ?? 'worker';
      const st = node.status;
      if (st?.cluster?.cluster !== c.metadata.name || st?.cluster.role !== role) {
        const joined: NodeClusterStatus = {
          cluster: c.metadata.name,
          role,
          nodeName: k.name,
          readyAt: new Date().toISOString(),
        };
        await setStatusSection(
          ctx,
          'cluster',
          { ...joined },
          'ClusterNodeReady',
          `Node ${k.name} is Ready in cluster "${c.metadata.name}" as ${role}${k.kubeletVersion ? ` (kubelet ${k.kubeletVersion})` : ''}`,
        );
      }
      return true;
    },

    async action(ctx: StepContext) {
      const node = ctx.node;
      const [c] = await clustersOf(ctx, node);
      if (!c)
        return {
          status: 'waiting',
          message: `no Cluster selects this node: give it the labels of a Cluster's spec.controlPlane.selector or spec.workers.selector (labels now: ${JSON.stringify(node.metadata.labels ?? {})})`,
        };
      const pinned = node.spec.providers.cluster;
      if (pinned && pinned !== c.spec.distribution)
        throw new Error(
          `spec.providers.cluster is "${pinned}" but Cluster "${c.metadata.name}" is ${c.spec.distribution}: change one of them`,
        );
      if (!node.status?.overlay?.address)
        return {
          status: 'waiting',
          message: 'the node has no overlay address (state 5) to be reached on in global scope',
        };
      const members = await membersOf(ctx, c);
      const role = members.find((m) => m.node.metadata.name === node.metadata.name)!.role;
      const apiUp = c.status?.conditions?.find((x) => x.type === 'APIServerReady')?.status === 'True';
      if (role === 'worker' && !apiUp)
        return {
          status: 'waiting',
          message: `cluster "${c.metadata.name}": the control plane is not up yet (${c.status?.conditions?.find((x) => x.type === 'APIServerReady')?.message ?? 'not measured yet'}); workers join after it`,
          recheckAfterMs: 15_000,
        };
      const { artifacts, missing } = await artifactsFor(ctx, c, role);
      if (missing.length)
        return {
          status: 'waiting',
          message: `Strata's registry lacks ${missing.join(', ')}: push them (scripts/build/kubernetes.sh, then "strata registry push /var/cache/strata/kubernetes/${c.spec.version} --name kubernetes --version ${c.spec.version}"; Debian packages with scripts/registry/debian-packages.sh)`,
          recheckAfterMs: 60_000,
        };
      const r = await installOn(ctx, c, node, role, artifacts).catch((e: Error) => {
        throw new Error(`cluster "${c.metadata.name}" on "${node.metadata.name}": ${e.message}`);
      });
      ctx.record(
        'ClusterInstalled',
        `${c.spec.distribution} ${c.spec.version} installed as ${role}: ${r.outcome}`,
      );
      return {
        status: 'waiting',
        message: 'installed; waiting for the Node to be Ready',
        recheckAfterMs: 5_000,
      };
    },

    async undo(ctx: StepContext) {
      const node = ctx.node;
      const st = node.status;
      const name = st?.cluster?.cluster;
      const c = name
        ? await ctx.resources.get<ClusterResource>('Cluster', name)
        : (await clustersOf(ctx, node))[0];
      if (c) {
        const client = await adminClient(ctx, c).catch(() => undefined);
        if (client && (await drainable(ctx, c, client))) await client.drainAndDelete(kubeNodeName(node));
        if (
          await ctx.store.getRecord(INSTALLED_COLLECTION, installedKey(c.metadata.name, node.metadata.name))
        )
          await uninstall(ctx, c, node);
      }
      await ctx.resources.patchStatus<NodeStatus>('Node', node.metadata.name, (s) => {
        if (!s.cluster) return undefined;
        const { cluster: _c, ...rest } = s;
        return rest;
      });
    },
  };
}
