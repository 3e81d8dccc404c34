/**
 * Rolling upgrades. When a Cluster's `spec.version` changes (admission has checked that Strata's registry
 * holds it and that it skips no minor version, versions.ts), its members are upgraded one node at a time:
 * control-plane nodes first, then workers, each by name. For each node the cluster manager runs the
 * upgrade (by default the `cluster.join` bundle at the new version over SSH in global scope: its scripts
 * replace the binaries and restart what changed), then waits until the node is healthy before it touches
 * the next: its Node object Ready with its kubelet reporting the new version, and the API server answering
 * `/readyz`. A node whose upgrade fails, or that is not healthy within the bound, stops the rollout with
 * the `Upgraded` condition saying which node and why; the nodes after it stay on the old version until
 * `strata annotate cluster NAME strata.dev/retry-upgrade=$(date +%s)` (or a new spec.version) starts it
 * again from that node. Every node's upgrade is on its own timeline (UpgradeStarted, Upgraded,
 * UpgradeFailed). The rollout's state lives in `status.upgrade`, so a manager that restarts carries on;
 * the upgrade itself is idempotent, so one interrupted mid-way simply runs again.
 */
import type { NodeResource } from '../core/kinds/node.ts';
import { STEPS } from '../ladder.ts';
import { StoreRefs } from '../registry/store.ts';
import type { ClusterResource, ClusterStatus, ClusterUpgradeStatus } from './kind.ts';
import type { NodeSummary } from './kube.ts';
import { RETRY_UPGRADE_ANNOTATION } from './protocol.ts';
import { type ClusterContext, kubeNodeName, type Member } from './reconcile.ts';
import { artifactsFor, installOn } from './step.ts';
import { neededRefs, parseVersion, runsVersion } from './versions.ts';

export interface UpgradeOptions {
  /** Upgrades one member to the Cluster's spec.version; throws when it failed. Default: over SSH. */
  upgrade?(c: ClusterResource, node: NodeResource): Promise<void>;
  /** How long an upgraded node may take to be healthy again. Default 10 min (a kubelet restarting in a VM). */
  healthTimeoutMs?: number;
}

/** The `Upgraded` condition's verdict, and the rollout's state to keep in the status. */
export interface Rollout {
  upgrade?: ClusterUpgradeStatus;
  ok: boolean;
  reason: string;
  message: string;
  /** Look again soon: a node's health is awaited. */
  again: boolean;
}

/** The default upgrade: the member's bundle at the new version, over SSH in global scope. */
export async function upgradeOverShell(
  ctx: ClusterContext,
  c: ClusterResource,
  node: NodeResource,
  role: Member['role'],
): Promise<void> {
  const { artifacts, missing } = await artifactsFor(ctx, c, role);
  if (missing.length) throw new Error(`Strata's registry lacks ${missing.join(', ')}`);
  await installOn(ctx, c, node, role, artifacts);
}

const ago = (since: string | undefined) => (since ? Date.now() - Date.parse(since) : 0);

/**
 * One look at a Cluster's rollout, with its API server answering (`kubeNodes` just listed): finishes the
 * health check of the node upgraded last, and starts the next node's upgrade when it passed. Called by
 * the reconcile (reconcile.ts), which writes what it returns into the status.
 */
export async function rollout(
  ctx: ClusterContext,
  c: ClusterResource,
  st: ClusterStatus,
  members: Member[],
  kubeNodes: NodeSummary[],
  opts: UpgradeOptions,
): Promise<Rollout> {
  const to = c.spec.version;
  const name = c.metadata.name;
  const kubeOf = (m: Member) => kubeNodes.find((k) => k.name === kubeNodeName(m.node));
  const event = (node: string, reason: string, message: string, warn = false) =>
    ctx.hub.record({
      kind: 'Node',
      name: node,
      source: 'cluster-manager',
      step: STEPS.clusterJoin,
      reason,
      message,
      type: warn ? 'Warning' : 'Normal',
    });
  // Registered members whose kubelet does not run spec.version, in upgrade order (membersOf's: control
  // plane first). A member not registered yet joins at spec.version by itself; one whose kubelet reports
  // no version yet (still starting) is left alone.
  const behind = members.filter((m) => {
    const k = kubeOf(m);
    return k && parseVersion(k.kubeletVersion) && !runsVersion(k.kubeletVersion, to);
  });
  let u: ClusterUpgradeStatus | undefined = st.upgrade?.to === to ? { ...st.upgrade } : undefined;
  if (!u && !behind.length)
    return {
      ok: true,
      reason: 'UpToDate',
      message: `every registered member runs ${to}`,
      again: false,
      ...(st.upgrade ? { upgrade: st.upgrade } : {}),
    };
  u ??= { to, phase: 'Upgrading', done: [] };
  const retry = c.metadata.annotations?.[RETRY_UPGRADE_ANNOTATION];
  if (u.phase === 'Failed' && retry !== undefined && retry !== u.retriedFor) {
    const { node: _n, since: _s, message: _m, ...rest } = u;
    u = { ...rest, phase: 'Upgrading', retriedFor: retry };
  }
  const stopped = (message: string): Rollout => ({
    upgrade: u!,
    ok: false,
    reason: 'UpgradeFailed',
    message,
    again: false,
  });
  if (u.phase === 'Failed') return stopped(u.message ?? `the upgrade of ${u.node} failed`);

  if (u.phase === 'Checking' && u.node) {
    const m = members.find((x) => x.node.metadata.name === u!.node);
    const k = m && kubeOf(m);
    if (!m || (k?.ready && runsVersion(k.kubeletVersion, to))) {
      if (m)
        event(
          u.node,
          'Upgraded',
          `Node ${k!.name} is Ready at ${k!.kubeletVersion} and the API server is healthy`,
        );
      u = { ...u, phase: 'Upgrading', done: [...u.done, u.node] };
      delete u.node;
      delete u.since;
    } else if (ago(u.since) > (opts.healthTimeoutMs ?? 600_000)) {
      const seen = !k
        ? 'its Node is not registered'
        : `its Node is ${k.ready ? 'Ready' : 'NotReady'} with kubelet ${k.kubeletVersion ?? 'unknown'}`;
      const message = `${u.node} did not come back Ready at ${to} within ${Math.round((opts.healthTimeoutMs ?? 600_000) / 1000)} s (${seen}); the rollout stopped there and the nodes after it stay on their version: fix ${u.node}, then "strata annotate cluster ${name} ${RETRY_UPGRADE_ANNOTATION}=$(date +%s)"`;
      event(u.node, 'UpgradeFailed', message, true);
      u = { ...u, phase: 'Failed', since: new Date().toISOString(), message };
      return stopped(message);
    } else
      return {
        upgrade: u,
        ok: false,
        reason: 'Upgrading',
        message: `${u.node} upgraded to ${to}; waiting for its Node to be Ready at ${to} (${u.done.length + 1} of ${u.done.length + behind.length})`,
        again: true,
      };
  }

  const next = behind[0];
  if (!next) {
    if (u.phase !== 'Done')
      ctx.hub.record({
        kind: 'Cluster',
        name,
        source: 'cluster-manager',
        reason: 'UpgradeComplete',
        message: `every member runs ${to} (upgraded in order: ${u.done.join(', ') || 'none'})`,
      });
    const { node: _n, since: _s, message: _m, ...rest } = u;
    return {
      upgrade: { ...rest, phase: 'Done' },
      ok: true,
      reason: 'UpToDate',
      message: `every registered member runs ${to}`,
      again: false,
    };
  }
  const k = kubeOf(next)!;
  const nodeName = next.node.metadata.name;
  if (!k.ready)
    return {
      upgrade: u,
      ok: false,
      reason: 'Waiting',
      message: `${nodeName} is next to upgrade to ${to} but its Node is NotReady; it is upgraded once it is Ready`,
      again: true,
    };
  const refs = new StoreRefs(ctx.store);
  const missing: string[] = [];
  for (const ref of neededRefs(c, to)) {
    const [n, v] = [ref.slice(0, ref.lastIndexOf(':')), ref.slice(ref.lastIndexOf(':') + 1)];
    if (!(await refs.get(n, v))) missing.push(ref);
  }
  if (missing.length)
    return {
      upgrade: u,
      ok: false,
      reason: 'VersionNotInRegistry',
      message: `spec.version ${to}: Strata's registry lacks ${missing.join(', ')}: push them, or set spec.version back`,
      again: false,
    };
  const position = `${u.done.length + 1} of ${u.done.length + behind.length}`;
  event(
    nodeName,
    'UpgradeStarted',
    `upgrading ${next.role} from ${k.kubeletVersion ?? 'unknown'} to ${to} (${position})`,
  );
  try {
    if (!opts.upgrade) throw new Error('this manager has no way to run an upgrade');
    await opts.upgrade(c, next.node);
  } catch (e) {
    const message = `the upgrade of ${nodeName} to ${to} failed: ${(e as Error).message}; the rollout stopped there and the nodes after it stay on their version: fix it, then "strata annotate cluster ${name} ${RETRY_UPGRADE_ANNOTATION}=$(date +%s)"`;
    event(nodeName, 'UpgradeFailed', message, true);
    u = { ...u, phase: 'Failed', node: nodeName, since: new Date().toISOString(), message };
    return stopped(message);
  }
  u = { ...u, phase: 'Checking', node: nodeName, since: new Date().toISOString() };
  delete u.message;
  return {
    upgrade: u,
    ok: false,
    reason: 'Upgrading',
    message: `${nodeName} upgraded to ${to}; waiting for its Node to be Ready at ${to} (${position})`,
    again: true,
  };
}
