/**
 * The ladder step into state 5 (`overlay.join`, 4 → 5) and the pushes behind it. A node is a global
 * network node only when Strata itself reaches it over its overlay address, so:
 *
 * - `check`: an Overlay selects the node, its allocation is active, and an SSH command in GLOBAL scope
 *   (the overlay address, from the global shell worker that runs beside Strata's lighthouse or its
 *   WireGuard peer) succeeds.
 *   Then `status.overlay` records the address, and from then on the shell layer reaches the node there;
 * - `action`: reconcile each Overlay that selects the node (addresses, certificates or keys), start or
 *   reload Strata's lighthouse (or WireGuard peer), and push the node's member plan as a distributable
 *   over LOCAL scope (its LAN address: the overlay is what is being built): the provider's
 *   check/apply/undo scripts, the rendered configuration, and the provider's Debian package from the
 *   site's local registry;
 * - `undo`: the member's undo script over local scope; the node loses `status.overlay`.
 *
 * The overlay manager calls {@link pushPlan} with every fresh plan, so a joined member whose plan changed
 * (another member left, a certificate was renewed) gets it, and a member that left the selector runs its
 * undo and drops back to state 4. Pushes go over local scope: a push that restarts the tunnel must not
 * ride on it. What was pushed (a digest per member) is kept as a record so an unchanged plan is not sent
 * again.
 */
import type { NodeResource, NodeStatus } from '../core/kinds/node.ts';
import { type Step, type StepContext, setStatusSection } from '../core/ladder/step.ts';
import type { ResourceService } from '../core/resources/service.ts';
import type { Store } from '../core/store/types.ts';
import type { Transport } from '../core/transport/types.ts';
import { STEPS } from '../ladder.ts';
import { StoreRefs } from '../registry/store.ts';
import { shellDistribute, shellRun } from '../shell/client.ts';
import type { ArtifactSpec, Distributable } from '../shell/distributable.ts';
import type { OverlayResource, OverlaySpec, ZerotierOptions } from './kind.ts';
import type { LighthouseRunner } from './lighthouse.ts';
import { overlaysOf } from './manager.ts';
import type { OverlayPlan, RenderedFile } from './membership.ts';
import { LIGHTHOUSE_MEMBER, PUSHED_COLLECTION } from './protocol.ts';
import { type OverlayContext, reconcileOverlay } from './reconcile.ts';
import type { NodeOverlayStatus } from './status.ts';
import { reportedMemberId, setMemberAuthorization } from './zerotier.ts';

/** The Debian package each provider's apply script installs when the node lacks it. */
export function providerPackages(spec: Pick<OverlaySpec, 'provider' | 'zerotier'>): string[] {
  if (spec.provider === 'nebula') return ['nebula'];
  if (spec.provider === 'wireguard') return ['wireguard-tools'];
  return [spec.zerotier?.package ?? 'zerotier-one'];
}

export interface OverlayStepDeps {
  /** Strata's own lighthouses (set when the overlay layer's manager runs). */
  lighthouse?: LighthouseRunner;
}

type Ctx = OverlayContext & { store: Store; transport: Transport; resources: ResourceService };

/** The newest `debian/<codename>/<arch>/<package>` reference in Strata's registry per package, as artifacts. */
export async function debianArtifacts(store: Store, packages: readonly string[]): Promise<ArtifactSpec[]> {
  const refs = await new StoreRefs(store).list();
  const out: ArtifactSpec[] = [];
  for (const pkg of packages) {
    const re = new RegExp(`^debian/[^/]+/[^/]+/${pkg.replace(/[+.]/g, '\\$&')}$`);
    const newest = refs
      .filter((r) => re.test(r.name))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
      .at(-1);
    if (newest)
      out.push({ name: `${pkg}.deb`, ref: `${newest.name}:${newest.version}`, digest: newest.digest });
  }
  return out;
}

/** The provider's Debian packages from Strata's registry, as artifacts. */
export function packageArtifacts(
  store: Store,
  spec: Pick<OverlaySpec, 'provider' | 'zerotier'>,
): Promise<ArtifactSpec[]> {
  return debianArtifacts(store, providerPackages(spec));
}

function bundleOf(
  plan: Pick<OverlayPlan, 'overlay' | 'provider'>,
  files: RenderedFile[],
  artifacts: ArtifactSpec[],
  undoOnly = false,
): Distributable {
  return {
    manifest: {
      name: `overlay-${plan.overlay}`,
      version: plan.provider,
      scripts: undoOnly ? { undo: 'undo.sh' } : { check: 'check.sh', apply: 'apply.sh', undo: 'undo.sh' },
      artifacts,
    },
    files,
  };
}

const pushedKey = (overlay: string, node: string) => `${overlay}/${node}`;

/** What was last pushed to a member (and, on ZeroTier, the member id the controller knows it by). */
interface Pushed {
  digest?: string;
  at?: string;
  memberId?: string;
}

/** Authorises (address) or deauthorises (undefined) a ZeroTier member, with an event on `node`'s timeline. */
async function zerotierAuthorize(
  ctx: Ctx,
  overlay: string,
  zt: ZerotierOptions,
  node: string,
  memberId: string,
  address: string | undefined,
): Promise<void> {
  await setMemberAuthorization(zt, memberId, address);
  ctx.hub?.record({
    kind: node === LIGHTHOUSE_MEMBER ? 'Overlay' : 'Node',
    name: node === LIGHTHOUSE_MEMBER ? overlay : node,
    source: 'overlay-manager',
    step: STEPS.overlayJoin,
    reason: address ? 'MemberAuthorized' : 'MemberDeauthorized',
    message: address
      ? `ZeroTier member ${memberId}${node === LIGHTHOUSE_MEMBER ? " (Strata's own host)" : ''} authorised on ${zt.networkId} with ${address}`
      : `ZeroTier member ${memberId} deauthorised on ${zt.networkId}`,
  });
}

/**
 * ZeroTier: Strata's own host (`spec.zerotier.strataMember`) authorised at the controller with the
 * reserved address, once per member id and address (the record remembers what was sent). Called once per
 * plan, before its members: by pushPlan and by the step's action.
 */
async function authorizeStrataMember(ctx: Ctx, plan: OverlayPlan, zt: ZerotierOptions): Promise<void> {
  const self = plan.strataMember;
  if (!self) return;
  const key = pushedKey(plan.overlay, LIGHTHOUSE_MEMBER);
  const digest = `${self.memberId}@${self.address}`;
  const last = (await ctx.store.getRecord(PUSHED_COLLECTION, key)) as Pushed | undefined;
  if (last?.digest === digest) return;
  await zerotierAuthorize(ctx, plan.overlay, zt, LIGHTHOUSE_MEMBER, self.memberId, self.address);
  await ctx.store.putRecords(PUSHED_COLLECTION, [
    { key, value: { digest, at: new Date().toISOString(), memberId: self.memberId } satisfies Pushed },
  ]);
}

/** Pushes one member's plan over local scope; throws with the node's output when it did not take. */
async function pushMember(ctx: Ctx, plan: OverlayPlan, node: NodeResource, force: boolean): Promise<void> {
  const m = plan.members.find((x) => x.node === node.metadata.name);
  if (!m) return;
  const overlay = await ctx.resources.get<OverlayResource>('Overlay', plan.overlay);
  if (!overlay) return;
  const key = pushedKey(plan.overlay, m.node);
  const last = (await ctx.store.getRecord(PUSHED_COLLECTION, key)) as Pushed | undefined;
  if (!force && last?.digest === m.digest) return;
  const r = await shellDistribute(
    ctx,
    node,
    bundleOf(plan, m.files, await packageArtifacts(ctx.store, overlay.spec)),
    { scope: 'local', streamStep: STEPS.overlayJoin, timeoutMs: 180_000 },
  );
  if (r.outcome === 'failed') throw new Error(`overlay "${plan.overlay}" on "${m.node}": ${r.error}`);
  // ZeroTier: the member joined by itself; the controller lets it in with the address Strata allocated.
  let memberId: string | undefined;
  if (overlay.spec.provider === 'zerotier') {
    memberId = reportedMemberId(r.phases);
    if (!memberId)
      throw new Error(
        `overlay "${plan.overlay}" on "${m.node}": the zerotier scripts reported no MEMBER_ID (zerotier-cli info)`,
      );
    await zerotierAuthorize(ctx, plan.overlay, overlay.spec.zerotier!, m.node, memberId, m.address);
  }
  await ctx.store.putRecords(PUSHED_COLLECTION, [
    {
      key,
      value: {
        digest: m.digest,
        at: new Date().toISOString(),
        ...(memberId ? { memberId } : {}),
      } satisfies Pushed,
    },
  ]);
  ctx.hub?.record({
    kind: 'Node',
    name: m.node,
    source: 'overlay-manager',
    step: STEPS.overlayJoin,
    reason: r.outcome === 'applied' ? 'OverlayConfigured' : 'OverlayUnchanged',
    message: `overlay "${plan.overlay}" (${plan.provider}) ${m.address}: ${r.outcome} with ${m.peers.length} peer(s)`,
  });
}

/** Runs a member's undo over local scope and takes `status.overlay` away (state back to 4 if it was 5+). */
async function leaveNode(
  ctx: Ctx,
  plan: Pick<OverlayPlan, 'overlay' | 'provider'>,
  node: NodeResource,
  files: RenderedFile[],
  dropState: boolean,
): Promise<void> {
  const undoFiles = files.filter((f) => f.name === 'undo.sh' || f.name === 'overlay.env');
  const r = await shellDistribute(ctx, node, bundleOf(plan, undoFiles, [], true), {
    scope: 'local',
    op: 'undo',
    streamStep: STEPS.overlayJoin,
  });
  if (r.outcome === 'failed')
    throw new Error(`overlay "${plan.overlay}": undo on "${node.metadata.name}": ${r.error}`);
  await forgetMember(ctx, plan.overlay, node.metadata.name);
  await ctx.resources.patchStatus<NodeStatus>('Node', node.metadata.name, (s) => {
    // Only this overlay's section goes; a node on another overlay keeps its global address there.
    if (s.overlay?.overlay !== plan.overlay) return undefined;
    const { overlay: _o, ...rest } = s;
    return dropState && rest.state >= 5 ? { ...rest, state: 4, phase: 'Provisioning' } : rest;
  });
  ctx.hub?.record({
    kind: 'Node',
    name: node.metadata.name,
    source: 'overlay-manager',
    step: STEPS.overlayJoin,
    reason: 'OverlayLeft',
    message: `left overlay "${plan.overlay}": its tunnel is down and its key removed from the node`,
  });
}

/**
 * A member's push record goes; on ZeroTier the controller first takes its authorisation (and address)
 * back, so a node that left (or is gone) cannot rejoin with the member id it had.
 */
async function forgetMember(ctx: Ctx, overlay: string, node: string): Promise<void> {
  const key = pushedKey(overlay, node);
  const last = (await ctx.store.getRecord(PUSHED_COLLECTION, key)) as Pushed | undefined;
  if (last?.memberId) {
    const o = await ctx.resources.get<OverlayResource>('Overlay', overlay);
    if (o?.spec.zerotier)
      await zerotierAuthorize(ctx, overlay, o.spec.zerotier, node, last.memberId, undefined);
  }
  await ctx.store.deleteRecords(PUSHED_COLLECTION, [key]);
}

/**
 * What the overlay manager does with each fresh plan: members that already joined (their Node has
 * `status.overlay`) get a changed plan; leavers still known as Nodes run their undo. Nodes that have not
 * joined yet are left to their own `overlay.join` step.
 */
export async function pushPlan(ctx: Ctx, plan: OverlayPlan): Promise<void> {
  const problems: string[] = [];
  const zt = (await ctx.resources.get<OverlayResource>('Overlay', plan.overlay))?.spec.zerotier;
  if (zt) await authorizeStrataMember(ctx, plan, zt).catch((e) => problems.push((e as Error).message));
  for (const m of plan.members) {
    const node = await ctx.resources.get<NodeResource>('Node', m.node);
    if (node?.status?.overlay?.overlay !== plan.overlay) continue;
    await pushMember(ctx, plan, node!, false).catch((e) => problems.push((e as Error).message));
  }
  for (const l of plan.leaving) {
    const node = await ctx.resources.get<NodeResource>('Node', l.node);
    const st = node?.status;
    const pushed = await ctx.store.getRecord(PUSHED_COLLECTION, pushedKey(plan.overlay, l.node));
    // Gone: nothing on the node to undo, but a ZeroTier controller may still let its member in.
    if (!node && pushed) {
      await forgetMember(ctx, plan.overlay, l.node).catch((e) => problems.push((e as Error).message));
      continue;
    }
    // Never given this overlay: there is nothing to undo.
    if (!node || (!pushed && st?.overlay?.overlay !== plan.overlay)) continue;
    await leaveNode(ctx, plan, node, l.files, true).catch((e) => problems.push((e as Error).message));
  }
  if (problems.length) throw new Error(problems.join('; '));
}

/** The Overlay whose address is the node's global one: the first by name that selects it. */
async function primaryOverlay(ctx: Ctx, node: NodeResource): Promise<OverlayResource | undefined> {
  return (await overlaysOf(ctx, node)).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))[0];
}

export function overlayJoinStep(deps: OverlayStepDeps = {}): Step {
  return {
    name: STEPS.overlayJoin,
    description: 'join the overlay VPN over SSH (local scope) and reach the node over its overlay address',
    timeoutMs: 15 * 60_000,

    async check(ctx: StepContext): Promise<boolean> {
      const node = ctx.node;
      const overlay = await primaryOverlay(ctx, node);
      if (!overlay) return false;
      const member = overlay.status?.members?.[node.metadata.name];
      if (member?.state !== 'active') return false;
      const st = node.status;
      // The shell reaches the node at the member's address before the status records it.
      const probe: NodeResource = {
        ...node,
        status: {
          ...(st ?? { state: 4 }),
          overlay: {
            address: member.address,
            overlay: overlay.metadata.name,
            provider: overlay.spec.provider,
            joinedAt: st?.overlay?.joinedAt ?? new Date().toISOString(),
          },
        },
      };
      const r = await shellRun(ctx, probe, 'true', { scope: 'global', timeoutMs: 15_000 }).catch(
        (e: Error) => ({ code: -1, error: e.message }),
      );
      if (r.code !== 0) {
        // Worth a line only once the action has pushed the overlay (the first check always fails).
        if (node.status?.step?.name === STEPS.overlayJoin && node.status.step.attempts > 0)
          ctx.record(
            'OverlayUnreachable',
            `not reached over ${member.address} yet: ${r.error ?? `exit ${r.code}`}`,
          );
        return false;
      }
      if (st?.overlay?.address !== member.address || st.overlay.overlay !== overlay.metadata.name) {
        const joined: NodeOverlayStatus = {
          address: member.address,
          overlay: overlay.metadata.name,
          provider: overlay.spec.provider,
          joinedAt: new Date().toISOString(),
        };
        await setStatusSection(
          ctx,
          'overlay',
          joined,
          'OverlayReached',
          `Strata reaches the node over overlay "${joined.overlay}" at ${joined.address}: global scope from now on`,
        );
      }
      return true;
    },

    async action(ctx: StepContext) {
      const node = ctx.node;
      const overlays = await overlaysOf(ctx, node);
      if (!overlays.length)
        return {
          status: 'waiting',
          message: `no Overlay selects this node: give it the labels of an Overlay's spec.selector (labels now: ${JSON.stringify(node.metadata.labels ?? {})})`,
        };
      const pinned = node.spec.providers.overlay;
      for (const o of overlays) {
        if (pinned && o.spec.provider !== pinned)
          throw new Error(
            `spec.providers.overlay is "${pinned}" but Overlay "${o.metadata.name}" is ${o.spec.provider}: change one of them`,
          );
        const plan = await reconcileOverlay(ctx, o.metadata.name);
        if (!plan) continue;
        await deps.lighthouse?.update(plan);
        if (o.spec.provider === 'wireguard' && !o.spec.wireguard?.endpoint)
          return {
            status: 'waiting',
            message: `overlay "${o.metadata.name}": Strata is no WireGuard peer without spec.wireguard.endpoint, so it cannot reach this node over the overlay: set endpoint: {host: ADDRESS} (Strata's address on the nodes' network)`,
            recheckAfterMs: 30_000,
          };
        if (o.spec.provider === 'zerotier' && !o.spec.zerotier?.strataMember)
          return {
            status: 'waiting',
            message: `overlay "${o.metadata.name}": Strata is no ZeroTier member without spec.zerotier.strataMember, so it cannot reach this node over the overlay: join Strata's own host to network ${o.spec.zerotier?.networkId} (zerotier-cli join) and set strataMember to its address (zerotier-cli info)`,
            recheckAfterMs: 30_000,
          };
        if (!plan.members.some((m) => m.node === node.metadata.name))
          return {
            status: 'waiting',
            message: `overlay "${o.metadata.name}" has no plan for this node yet: ${plan.problems.join('; ') || 'no address'}`,
            recheckAfterMs: 10_000,
          };
        if (o.spec.zerotier) await authorizeStrataMember(ctx, plan, o.spec.zerotier);
        await pushMember(ctx, plan, node, true);
      }
      return { status: 'done', message: 'overlay configured on the node' };
    },

    async undo(ctx: StepContext) {
      const node = ctx.node;
      for (const o of await overlaysOf(ctx, node)) {
        const plan = await reconcileOverlay(ctx, o.metadata.name);
        const m = plan?.members.find((x) => x.node === node.metadata.name);
        if (plan && m) await leaveNode(ctx, plan, node, m.files, false);
      }
      // Not selected any more (or the Overlay is gone): what remains is the status section.
      await ctx.resources.patchStatus<NodeStatus>('Node', node.metadata.name, (s) => {
        if (!s.overlay) return undefined;
        const { overlay: _o, ...rest } = s;
        return rest;
      });
    },
  };
}
