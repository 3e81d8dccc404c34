/**
 * One decision about one Cluster, made by the cluster manager (a core controller, manager.ts) and by the
 * `cluster.join` step: who the members are (the Nodes its selectors pick), its PKI and join token (sealed
 * secrets, made or renewed here), where its API server is, and, once that answers `/readyz`, what Strata
 * applies into it (the join token's Secret, bootstrap RBAC) and what its Nodes say. Members that left are
 * drained, their Node objects deleted and what Strata installed on them undone; then they drop back to
 * state 5. When the API server does not answer, leaving waits a bounded time (or until forced) and then
 * goes on without the drain, saying what stayed behind. With the API server up, a changed spec.version is
 * rolled out node by node (upgrade.ts). The status says all of it in words; secrets never reach it.
 */
import { isDeepStrictEqual } from 'node:util';
import type { NodeResource, NodeStatus } from '../core/kinds/node.ts';
import type { CoreServices } from '../core/ladder/step.ts';
import { seconds } from '../core/resources/fields.ts';
import type { Condition } from '../core/resources/types.ts';
import type { ClusterNodeStatus, ClusterResource, ClusterStatus } from './kind.ts';
import { ClusterClient, type NodeSummary } from './kube.ts';
import {
  bootstrapTokenSecret,
  type JoinToken,
  newJoinToken,
  renderKubeconfig,
  tokenDue,
} from './kubeconfig.ts';
import { bootstrapRbac, kubeRouter } from './manifests.ts';
import {
  apiserverNames,
  type ClusterPki,
  createPki,
  fingerprintOf,
  parsePki,
  withServingNames,
} from './pki.ts';
import {
  BOOTSTRAP_GROUP,
  CLUSTER_FINALIZER,
  FORCE_LEAVE_ANNOTATION,
  INSTALLED_COLLECTION,
  installedKey,
  pkiSecretKey,
  ROTATE_TOKEN_ANNOTATION,
  SECRETS,
  tokenSecretKey,
} from './protocol.ts';
import './status.ts';
import { rollout, type UpgradeOptions } from './upgrade.ts';

export type { NodeClusterStatus } from './status.ts';

export type ClusterContext = Pick<CoreServices, 'resources' | 'store' | 'hub' | 'log' | 'transport'>;

export interface Member {
  node: NodeResource;
  role: ClusterNodeStatus['role'];
}

const matches = (sel: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(sel).every(([k, v]) => labels[k] === v);

/** The Kubernetes Node name a Strata node registers as (its kubelet's --hostname-override). */
export const kubeNodeName = (n: NodeResource) => n.spec.hostname ?? n.metadata.name;

/** The Nodes a Cluster selects, control-plane first (a Node both selectors pick is control-plane). */
export async function membersOf(ctx: ClusterContext, c: ClusterResource): Promise<Member[]> {
  const nodes = (await ctx.resources.list<NodeResource>('Node'))
    .filter((n) => !n.metadata.deletionTimestamp)
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const out: Member[] = [];
  for (const n of nodes) {
    if (matches(c.spec.controlPlane.selector.matchLabels, n.metadata.labels))
      out.push({ node: n, role: 'control-plane' });
    else if (c.spec.workers && matches(c.spec.workers.selector.matchLabels, n.metadata.labels))
      out.push({ node: n, role: 'worker' });
  }
  return out.sort((a, b) => (a.role === b.role ? 0 : a.role === 'control-plane' ? -1 : 1));
}

/** The Clusters that select a node, by name. */
export async function clustersOf(ctx: ClusterContext, node: NodeResource): Promise<ClusterResource[]> {
  const out: ClusterResource[] = [];
  for (const c of (await ctx.resources.list<ClusterResource>('Cluster')).sort((a, b) =>
    a.metadata.name.localeCompare(b.metadata.name),
  ))
    if (
      !c.metadata.deletionTimestamp &&
      (await membersOf(ctx, c)).some((m) => m.node.metadata.name === node.metadata.name)
    )
      out.push(c);
  return out;
}

/** `https://host:port` of the API server, or undefined while no control-plane node has an overlay address. */
export function endpointOf(c: ClusterResource, members: Member[]): string | undefined {
  if (c.spec.endpoint)
    return `https://${c.spec.endpoint.host.includes(':') ? `[${c.spec.endpoint.host}]` : c.spec.endpoint.host}:${c.spec.endpoint.port}`;
  const cp = members.find((m) => m.role === 'control-plane' && m.node.status?.overlay?.address);
  const addr = cp?.node.status?.overlay?.address;
  return addr ? `https://${addr}:6443` : undefined;
}

const hostOf = (url: string) => new URL(url).hostname.replace(/^\[|\]$/g, '');

/** The cluster's PKI, made on first use and its serving certificate kept naming every address. */
export async function ensurePki(
  ctx: ClusterContext,
  c: ClusterResource,
  members: Member[],
): Promise<ClusterPki> {
  const key = pkiSecretKey(c.metadata.name);
  const endpoint = endpointOf(c, members);
  const hosts = [
    ...(endpoint ? [hostOf(endpoint)] : []),
    ...members
      .filter((m) => m.role === 'control-plane')
      .map((m) => m.node.status?.overlay?.address)
      .filter((a): a is string => !!a),
  ];
  const names = apiserverNames(hosts, c.spec.serviceCIDR);
  const rec = await ctx.store.getRecord(SECRETS, key);
  const pki = rec
    ? await withServingNames(parsePki(rec, `the PKI of cluster "${c.metadata.name}" (secret ${key})`), names)
    : await createPki(names);
  if (pki !== rec) await ctx.store.putRecords(SECRETS, [{ key, value: pki }]);
  return pki;
}

/** The stored PKI, or an error saying it is not made yet. */
export async function storedPki(ctx: Pick<ClusterContext, 'store'>, cluster: string): Promise<ClusterPki> {
  const key = pkiSecretKey(cluster);
  const rec = await ctx.store.getRecord(SECRETS, key);
  if (!rec)
    throw new Error(
      `cluster "${cluster}" has no PKI yet: the cluster manager makes it when the Cluster is applied`,
    );
  return parsePki(rec, `the PKI of cluster "${cluster}" (secret ${key})`);
}

export async function storedToken(
  ctx: Pick<ClusterContext, 'store'>,
  cluster: string,
): Promise<JoinToken | undefined> {
  return (await ctx.store.getRecord(SECRETS, tokenSecretKey(cluster))) as JoinToken | undefined;
}

/** The join token, made on first use and rotated when asked (annotation) or a third of its life is left. */
async function ensureToken(
  ctx: ClusterContext,
  c: ClusterResource,
): Promise<{ token: JoinToken; rotated: boolean }> {
  const cur = await storedToken(ctx, c.metadata.name);
  const asked = c.metadata.annotations?.[ROTATE_TOKEN_ANNOTATION];
  const wantRotate = asked !== undefined && asked !== c.status?.rotatedFor;
  if (cur && !wantRotate && !tokenDue(cur)) return { token: cur, rotated: false };
  const token = newJoinToken(seconds(c.spec.joinTokenTTL), cur);
  await ctx.store.putRecords(SECRETS, [{ key: tokenSecretKey(c.metadata.name), value: token }]);
  return { token, rotated: !!cur };
}

/** The admin kubeconfig of a cluster: what `strata kubeconfig` prints and what the manager itself uses. */
export function adminKubeconfig(cluster: string, server: string, pki: ClusterPki): string {
  return renderKubeconfig(cluster, 'strata-admin', {
    server,
    caPem: pki.ca.cert,
    certPem: pki.admin.cert,
    keyPem: pki.admin.key,
  });
}

/** An admin client for a cluster, through its kubeconfig (so a damaged one fails with the field named). */
export async function adminClient(
  ctx: ClusterContext,
  c: ClusterResource,
): Promise<ClusterClient | undefined> {
  const endpoint = endpointOf(c, await membersOf(ctx, c));
  if (!endpoint) return undefined;
  const pki = await storedPki(ctx, c.metadata.name);
  return ClusterClient.fromKubeconfig(
    adminKubeconfig(c.metadata.name, endpoint, pki),
    `the admin kubeconfig of cluster "${c.metadata.name}"`,
  );
}

function setCondition(
  list: Condition[],
  type: string,
  ok: boolean,
  reason: string,
  message: string,
): Condition[] {
  const status = ok ? 'True' : 'False';
  const prev = list.find((x) => x.type === type);
  const lastTransitionTime =
    prev && prev.status === status ? prev.lastTransitionTime : new Date().toISOString();
  const next: Condition = { type, status, reason, message, lastTransitionTime };
  // In place, so an unchanged condition leaves the status unchanged (and unwritten).
  return prev ? list.map((x) => (x === prev ? next : x)) : [...list, next];
}

/** How long leaving waits for an API server that does not answer before it goes without the drain. */
export const UNREACHABLE_TIMEOUT_MS = 600_000;

export interface ReconcileHooks extends UpgradeOptions {
  /** Undoes what Strata installed on a member that left (the step's uninstall over SSH). */
  uninstall?(c: ClusterResource, node: NodeResource): Promise<void>;
  /** A member's Node changed: let the ladder engine re-check it. */
  poke?(node: string): void;
  /**
   * How long a member that leaves (or every member of a deleted Cluster) waits for an API server that
   * does not answer before it leaves without the drain. Default 10 min.
   */
  unreachableTimeoutMs?: number;
  /** How long the uninstall of a member that leaves without the drain may take. Default 2 min. */
  abandonedUninstallMs?: number;
}

/** `p`, or an error saying what did not finish in `ms`. The work itself is not stopped: it is bounded. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      t = setTimeout(
        () =>
          reject(
            new Error(`${what} did not finish in ${ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`}`),
          ),
        ms,
      );
      t.unref();
    }),
  ]).finally(() => clearTimeout(t));
}

export interface ReconcileResult {
  /** Reconcile again soon: the API server is not up yet, or Nodes are not Ready yet. */
  again: boolean;
  client?: ClusterClient;
}

/** A member that left (or a deleted Cluster's member): drain, delete its Node, undo the install, state 5. */
async function memberLeft(
  ctx: ClusterContext,
  c: ClusterResource,
  node: NodeResource | undefined,
  name: string,
  client: ClusterClient | undefined,
  hooks: ReconcileHooks,
  /** Why it leaves without the drain (the API server did not answer), or undefined for a normal leave. */
  abandoned?: string,
): Promise<string | undefined> {
  const kubeName = node ? kubeNodeName(node) : name;
  const evicted = client ? await client.drainAndDelete(kubeName) : 0;
  const installed = await ctx.store.getRecord(INSTALLED_COLLECTION, installedKey(c.metadata.name, name));
  const behind: string[] = abandoned ? [`its Node object ${kubeName} in the cluster's datastore`] : [];
  if (node && installed) {
    if (!abandoned) await hooks.uninstall?.(c, node);
    else
      await within(
        hooks.uninstall?.(c, node) ?? Promise.resolve(),
        hooks.abandonedUninstallMs ?? 120_000,
        'the uninstall',
      ).catch((e: Error) =>
        behind.push(`Kubernetes installed on ${name} (its uninstall failed: ${e.message}; reprovision it)`),
      );
  }
  await ctx.store.deleteRecords(INSTALLED_COLLECTION, [installedKey(c.metadata.name, name)]);
  if (node)
    await ctx.resources.patchStatus<NodeStatus>('Node', name, (s) => {
      if (s.cluster?.cluster !== c.metadata.name) return undefined;
      const { cluster: _c, ...rest } = s;
      return rest.state >= 6 ? { ...rest, state: 5, phase: 'Provisioning' } : rest;
    });
  ctx.hub.record({
    kind: 'Node',
    name,
    source: 'cluster-manager',
    step: 'cluster.join',
    reason: 'ClusterLeft',
    ...(abandoned
      ? {
          type: 'Warning' as const,
          message: `left cluster "${c.metadata.name}" without a drain (${abandoned}); left behind: ${behind.join('; ')}`,
        }
      : {
          message: `left cluster "${c.metadata.name}": drained (${evicted} pod(s) evicted), Node ${kubeName} deleted${installed ? ', Kubernetes uninstalled' : ''}`,
        }),
  });
  hooks.poke?.(name);
  return abandoned ? `${name}: ${behind.join('; ')}` : undefined;
}

export async function reconcileCluster(
  ctx: ClusterContext,
  name: string,
  hooks: ReconcileHooks = {},
): Promise<ReconcileResult> {
  const c = await ctx.resources.get<ClusterResource>('Cluster', name);
  if (!c) return { again: false };
  const deleting = Boolean(c.metadata.deletionTimestamp);
  // A deleted Cluster keeps its endpoint and PKI until every member has left through it.
  const selected = await membersOf(ctx, c);
  const members = deleting ? [] : selected;
  const memberNames = new Set(members.map((m) => m.node.metadata.name));
  const st: ClusterStatus = c.status ?? {};
  let conditions = st.conditions ?? [];
  const problems: string[] = [];

  let pki: ClusterPki;
  try {
    pki = await ensurePki(ctx, c, selected);
  } catch (e) {
    // A damaged PKI is never replaced behind the user's back: nodes trust its CA. Say so and wait.
    const msg = (e as Error).message;
    conditions = setCondition(conditions, 'PKIReady', false, 'Damaged', msg);
    conditions = setCondition(
      conditions,
      'APIServerReady',
      false,
      'NoCredentials',
      `no usable admin credentials: ${msg}`,
    );
    const next: ClusterStatus = { ...st, phase: 'Degraded', conditions };
    if (!isDeepStrictEqual(next, st))
      await ctx.resources.patchStatus<ClusterStatus>('Cluster', name, () => next);
    return { again: true };
  }
  const { token, rotated } = await ensureToken(ctx, c);
  if (rotated)
    ctx.hub.record({
      kind: 'Cluster',
      name,
      source: 'cluster-manager',
      reason: 'JoinTokenRotated',
      message: `join token rotated: ${token.id} replaces ${token.retired.at(-1)}, valid until ${token.expires}`,
    });
  conditions = setCondition(
    conditions,
    'PKIReady',
    true,
    'Generated',
    `CA ${fingerprintOf(pki.ca.cert).slice(0, 23)}…`,
  );

  const endpoint = endpointOf(c, selected);
  let client: ClusterClient | undefined;
  let kubeNodes: NodeSummary[] = [];
  let version: string | undefined;
  if (!endpoint) {
    conditions = setCondition(
      conditions,
      'APIServerReady',
      false,
      'NoEndpoint',
      'no control-plane node has an overlay address yet (state 5), and spec.endpoint is not set',
    );
  } else {
    try {
      client = ClusterClient.fromKubeconfig(
        adminKubeconfig(name, endpoint, pki),
        `the admin kubeconfig of cluster "${name}"`,
      );
      await client.ready();
      version = await client.version();
      await client.apply([
        ...bootstrapRbac(),
        bootstrapTokenSecret(token, BOOTSTRAP_GROUP),
        ...(c.spec.cni === 'kube-router' && !deleting ? kubeRouter(c.spec, endpoint) : []),
      ]);
      for (const id of token.retired)
        await client.deleteIfPresent({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: `bootstrap-token-${id}`, namespace: 'kube-system' },
        });
      kubeNodes = await client.nodes();
      conditions = setCondition(
        conditions,
        'APIServerReady',
        true,
        'Ready',
        `${endpoint} answers /readyz (${version})`,
      );
    } catch (e) {
      client = undefined;
      conditions = setCondition(conditions, 'APIServerReady', false, 'NotReady', (e as Error).message);
    }
  }

  // Leavers: nodes that carry this cluster's section or were listed, and are members no more. While the
  // API server does not answer they wait (it must drain them), but only so long: then, or when forced,
  // they leave without the drain and the timeline says what was left behind.
  const listed = new Set(Object.keys(st.nodes ?? {}));
  for (const n of await ctx.resources.list<NodeResource>('Node'))
    if (n.status?.cluster?.cluster === name) listed.add(n.metadata.name);
  const forced = c.metadata.annotations?.[FORCE_LEAVE_ANNOTATION] === 'true';
  const bound = hooks.unreachableTimeoutMs ?? UNREACHABLE_TIMEOUT_MS;
  const waiting: Record<string, string> = {};
  const leftBehind: string[] = [];
  for (const leaver of [...listed].filter((n) => !memberNames.has(n))) {
    let abandoned: string | undefined;
    if (!client && endpoint) {
      const since =
        (deleting ? c.metadata.deletionTimestamp : st.nodes?.[leaver]?.since) ?? new Date().toISOString();
      const waited = Date.now() - Date.parse(since);
      if (!forced && waited < bound) {
        waiting[leaver] = since;
        continue;
      }
      abandoned = forced
        ? `the API server at ${endpoint} does not answer and ${FORCE_LEAVE_ANNOTATION}=true is set`
        : `the API server at ${endpoint} did not answer for ${Math.round(bound / 1000)} s`;
    }
    const node = await ctx.resources.get<NodeResource>('Node', leaver);
    try {
      const behind = await memberLeft(ctx, c, node, leaver, client, hooks, abandoned);
      if (behind) leftBehind.push(behind);
    } catch (e) {
      problems.push(`${leaver} is leaving: ${(e as Error).message}`);
    }
  }
  const waitingFor = Object.keys(waiting);
  let waitMessage: string | undefined;
  if (waitingFor.length) {
    const until = new Date(
      Math.min(...Object.values(waiting).map((t) => Date.parse(t))) + bound,
    ).toISOString();
    waitMessage = `${waitingFor.join(', ')} ${deleting ? 'must leave the deleted Cluster' : 'left'} but the API server does not answer, so ${waitingFor.length > 1 ? 'they' : 'it'} cannot be drained; waiting until ${until}, then ${waitingFor.length > 1 ? 'they leave' : 'it leaves'} without the drain (now: "strata annotate cluster ${name} ${FORCE_LEAVE_ANNOTATION}=true"), leaving behind ${waitingFor.length > 1 ? 'their' : 'its'} Node object(s) in the cluster's datastore`;
  }
  if (leftBehind.length)
    ctx.hub.record({
      kind: 'Cluster',
      name,
      source: 'cluster-manager',
      type: 'Warning',
      reason: 'LeftWithoutDrain',
      message: `member(s) left without a drain; left behind: ${leftBehind.join(' | ')}`,
    });

  // The rolling upgrade to spec.version, one node at a time (upgrade.ts).
  const roll = client && !deleting ? await rollout(ctx, c, st, members, kubeNodes, hooks) : undefined;

  const nodes: Record<string, ClusterNodeStatus> = {};
  for (const m of members) {
    const k = kubeNodes.find((n) => n.name === kubeNodeName(m.node));
    nodes[m.node.metadata.name] = {
      role: m.role,
      state: !k ? 'NotRegistered' : k.ready ? 'Ready' : 'NotReady',
      ...(k?.kubeletVersion ? { kubeletVersion: k.kubeletVersion } : {}),
    };
  }
  for (const [who, since] of Object.entries(waiting))
    nodes[who] = { role: st.nodes?.[who]?.role ?? 'worker', state: 'Leaving', since };
  for (const p of problems) {
    const who = p.split(' ')[0]!;
    if (!nodes[who]) nodes[who] = { role: st.nodes?.[who]?.role ?? 'worker', state: 'Leaving' };
  }
  if (waitMessage) problems.push(waitMessage);
  const readyCount = Object.values(nodes).filter((n) => n.state === 'Ready').length;
  const cps = members.filter((m) => m.role === 'control-plane').length;
  if (!deleting && cps !== c.spec.controlPlane.count)
    problems.push(
      `spec.controlPlane.count is ${c.spec.controlPlane.count} but the selector picks ${cps} Node(s)`,
    );
  conditions = setCondition(
    conditions,
    'NodesReady',
    members.length > 0 && readyCount === members.length,
    'Nodes',
    `${readyCount}/${members.length} member Node(s) Ready`,
  );
  if (roll) conditions = setCondition(conditions, 'Upgraded', roll.ok, roll.reason, roll.message);
  if (waitingFor.length || conditions.some((x) => x.type === 'Drained'))
    conditions = setCondition(
      conditions,
      'Drained',
      !waitingFor.length,
      waitingFor.length ? 'APIServerUnreachable' : 'Drained',
      waitMessage ?? 'no member waits to be drained',
    );
  const apiUp = conditions.find((x) => x.type === 'APIServerReady')?.status === 'True';
  const next: ClusterStatus = {
    phase: !apiUp
      ? 'Pending'
      : readyCount === members.length && !problems.length && roll?.reason !== 'UpgradeFailed'
        ? 'Ready'
        : 'Degraded',
    ...(endpoint ? { endpoint } : {}),
    ...(version ? { serverVersion: version } : st.serverVersion ? { serverVersion: st.serverVersion } : {}),
    nodes,
    conditions,
    caFingerprint: fingerprintOf(pki.ca.cert),
    joinTokenId: token.id,
    joinTokenExpires: token.expires,
    ...(c.metadata.annotations?.[ROTATE_TOKEN_ANNOTATION] !== undefined
      ? { rotatedFor: c.metadata.annotations[ROTATE_TOKEN_ANNOTATION] }
      : {}),
    ...(problems.length ? { problems } : {}),
    ...((roll?.upgrade ?? st.upgrade) ? { upgrade: roll?.upgrade ?? st.upgrade } : {}),
    ...(c.metadata.generation !== undefined ? { observedGeneration: c.metadata.generation } : {}),
  };
  if (!isDeepStrictEqual(next, st))
    await ctx.resources.patchStatus<ClusterStatus>('Cluster', name, () => next);
  // A member whose Node turned Ready (or not) is re-checked by its step.
  for (const m of members)
    if (nodes[m.node.metadata.name]?.state !== st.nodes?.[m.node.metadata.name]?.state)
      hooks.poke?.(m.node.metadata.name);

  if (deleting && !problems.length) {
    await ctx.store.deleteRecords(SECRETS, [pkiSecretKey(name), tokenSecretKey(name)]);
    await ctx.resources.removeFinalizer('Cluster', name, CLUSTER_FINALIZER);
  }
  return {
    again: !apiUp || readyCount < members.length || problems.length > 0 || !!roll?.again,
    ...(client ? { client } : {}),
  };
}
