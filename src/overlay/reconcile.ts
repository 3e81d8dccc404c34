/**
 * The overlay manager's one decision, as a function the state-5 ladder step will call: bring an Overlay's
 * records in line with its selector — addresses (IPAM), the Nebula CA and member certificates (renewed
 * before expiry, revoked into every blocklist when a member leaves) or the WireGuard key pairs — write
 * the Overlay's status (addresses, fingerprints, expiry; never a key), and return the membership plan the
 * shell layer pushes. It touches no node: pushing is the shell layer's, so this stays testable against a
 * real store and real `nebula-cert` only. Calls for one overlay are serialised in this process.
 */
import { isDeepStrictEqual } from 'node:util';
import type { EventHub } from '../core/events.ts';
import type { NodeResource } from '../core/kinds/node.ts';
import type { Logger } from '../core/log.ts';
import { seconds } from '../core/resources/fields.ts';
import type { ResourceService } from '../core/resources/service.ts';
import type { Store } from '../core/store/types.ts';
import {
  type Allocation,
  releaseAllocation,
  reservedHolder,
  syncAllocations,
  usableRange,
  withOverlayLock,
} from './ipam.ts';
import type { OverlayMemberStatus, OverlayResource, OverlayStatus } from './kind.ts';
import { type MemberNode, type NebulaCredentials, type OverlayPlan, planMembership } from './membership.ts';
import { createCa, type NebulaCa, type NebulaCert, needsRenewal, signMember } from './nebula.ts';
import {
  caSecretKey,
  IPAM_COLLECTION,
  LIGHTHOUSE_MEMBER,
  memberSecretKey,
  OVERLAY_FINALIZER,
  REVOKED_COLLECTION,
  SECRETS,
} from './protocol.ts';
import { generateWgKeyPair, type WgKeyPair } from './wireguard.ts';

export interface OverlayContext {
  resources: ResourceService;
  store: Store;
  hub?: EventHub;
  log?: Logger;
}

interface MemberCert extends NebulaCert {
  caFingerprint: string;
}
interface Revoked {
  node: string;
  fingerprint: string;
  notAfter: string;
}

function record(ctx: OverlayContext, overlay: string, reason: string, message: string, warn = false): void {
  ctx.hub?.record({
    kind: 'Overlay',
    name: overlay,
    source: 'overlay-manager',
    step: 'overlay',
    type: warn ? 'Warning' : 'Normal',
    reason,
    message,
  });
}

/** The Nodes an Overlay's selector picks (not those being deleted), with their underlay addresses. */
export async function selectMembers(ctx: OverlayContext, overlay: OverlayResource): Promise<MemberNode[]> {
  const nodes = await ctx.resources.list<NodeResource>('Node', overlay.spec.selector.matchLabels);
  return nodes
    .filter((n) => !n.metadata.deletionTimestamp)
    .map((n) => {
      const underlay = n.spec.ipAddress ?? n.status?.addresses?.[0];
      return { name: n.metadata.name, ...(underlay ? { underlay } : {}) };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

async function ensureNebula(
  ctx: OverlayContext,
  overlay: OverlayResource,
  allocations: Allocation[],
  now: Date,
  status: Record<string, OverlayMemberStatus>,
): Promise<{ creds: NebulaCredentials; cas: NebulaCa[] }> {
  const name = overlay.metadata.name;
  const opts = overlay.spec.nebula!;
  const prefix = usableRange(overlay.spec.subnet).prefix;
  const caRec = (await ctx.store.getRecord(SECRETS, caSecretKey(name))) as { cas: NebulaCa[] } | undefined;
  let cas = (caRec?.cas ?? []).filter((c) => Date.parse(c.notAfter) > now.getTime());
  const newest = cas.at(-1);
  if (!newest || needsRenewal(newest, now)) {
    const ca = await createCa(`strata ${name}`, seconds(opts.caLifetime));
    cas = [...cas, ca];
    record(
      ctx,
      name,
      newest ? 'CaRotated' : 'CaCreated',
      `CA ${ca.fingerprint.slice(0, 16)} valid until ${ca.notAfter}`,
    );
  }
  if (cas.length !== caRec?.cas.length || cas.some((c, i) => c.fingerprint !== caRec.cas[i]?.fingerprint)) {
    await ctx.store.putRecords(SECRETS, [{ key: caSecretKey(name), value: { cas } }]);
  }
  const signer = cas.at(-1)!;

  // Leaving members: their certificate goes into every blocklist until it expires; their key is dropped.
  for (const a of allocations.filter((x) => x.state === 'leaving')) {
    const cur = (await ctx.store.getRecord(SECRETS, memberSecretKey(name, a.node))) as MemberCert | undefined;
    if (!cur) continue;
    const rev: Revoked = { node: a.node, fingerprint: cur.fingerprint, notAfter: cur.notAfter };
    await ctx.store.putRecords(REVOKED_COLLECTION, [{ key: `${name}/${cur.fingerprint}`, value: rev }]);
    await ctx.store.deleteRecords(SECRETS, [memberSecretKey(name, a.node)]);
    record(
      ctx,
      name,
      'CertificateRevoked',
      `certificate ${cur.fingerprint.slice(0, 16)} of "${a.node}" blocklisted`,
    );
  }

  const certs: NebulaCredentials['certs'] = {};
  for (const a of allocations.filter((x) => x.state === 'active')) {
    const key = memberSecretKey(name, a.node);
    const ip = `${a.address}/${prefix}`;
    let cur = (await ctx.store.getRecord(SECRETS, key)) as MemberCert | undefined;
    const why = !cur
      ? 'CertificateSigned'
      : cur.ip !== ip || cur.groups.join(',') !== opts.groups.join(',')
        ? 'CertificateResigned'
        : cur.caFingerprint !== signer.fingerprint || needsRenewal(cur, now)
          ? 'CertificateRenewed'
          : undefined;
    if (why) {
      const certName = a.node === LIGHTHOUSE_MEMBER ? `${name}-lighthouse` : a.node;
      const signed = await signMember(
        signer,
        { name: certName, ip, groups: opts.groups, lifetimeSeconds: seconds(opts.certificateLifetime) },
        now,
      );
      cur = { ...signed, caFingerprint: signer.fingerprint };
      await ctx.store.putRecords(SECRETS, [{ key, value: cur }]);
      record(
        ctx,
        name,
        why,
        `"${a.node}" ${ip} certificate ${cur.fingerprint.slice(0, 16)} valid until ${cur.notAfter}`,
      );
    }
    certs[a.node] = cur!;
    status[a.node] = { ...status[a.node]!, fingerprint: cur!.fingerprint, notAfter: cur!.notAfter };
  }

  const revoked = (await ctx.store.listRecords(REVOKED_COLLECTION)).filter((r) =>
    r.key.startsWith(`${name}/`),
  );
  const expired = revoked.filter((r) => Date.parse((r.value as Revoked).notAfter) <= now.getTime());
  if (expired.length)
    await ctx.store.deleteRecords(
      REVOKED_COLLECTION,
      expired.map((r) => r.key),
    );
  const blocklist = revoked
    .filter((r) => !expired.includes(r))
    .map((r) => (r.value as Revoked).fingerprint)
    .sort();
  return { creds: { caCerts: cas.map((c) => c.cert), certs, blocklist }, cas };
}

async function ensureWireguard(
  ctx: OverlayContext,
  overlay: OverlayResource,
  allocations: Allocation[],
  status: Record<string, OverlayMemberStatus>,
): Promise<Record<string, WgKeyPair>> {
  const name = overlay.metadata.name;
  const keys: Record<string, WgKeyPair> = {};
  for (const a of allocations.filter((x) => x.state === 'active')) {
    const key = memberSecretKey(name, a.node);
    let pair = (await ctx.store.getRecord(SECRETS, key)) as WgKeyPair | undefined;
    if (!pair) {
      pair = generateWgKeyPair();
      await ctx.store.putRecords(SECRETS, [{ key, value: pair }]);
      record(ctx, name, 'KeyGenerated', `WireGuard key ${pair.publicKey} for "${a.node}"`);
    }
    keys[a.node] = pair;
    status[a.node] = { ...status[a.node]!, publicKey: pair.publicKey };
  }
  return keys;
}

/**
 * Reconciles one Overlay and returns what every member needs (undefined when the Overlay is gone). The
 * state-5 step calls this, pushes `plan.members` whose digest changed and runs `plan.leaving`'s undo,
 * then calls {@link memberLeft} for each.
 */
export function reconcileOverlay(
  ctx: OverlayContext,
  name: string,
  now: Date = new Date(),
): Promise<OverlayPlan | undefined> {
  return withOverlayLock(`reconcile/${name}`, async () => {
    const overlay = await ctx.resources.get<OverlayResource>('Overlay', name);
    if (!overlay) return undefined;
    const spec = overlay.spec;
    // Being deleted: every member (and Strata's own lighthouse) leaves; no key or certificate is made.
    const deleting = Boolean(overlay.metadata.deletionTimestamp);
    const members = deleting ? [] : await selectMembers(ctx, overlay);
    const names = members.map((m) => m.name);
    if (!deleting && spec.provider === 'nebula' && !spec.nebula?.lighthouse.node)
      names.push(LIGHTHOUSE_MEMBER);
    if (!deleting && spec.provider === 'wireguard' && spec.wireguard?.endpoint) names.push(LIGHTHOUSE_MEMBER);
    if (!deleting && spec.provider === 'zerotier' && spec.zerotier?.strataMember)
      names.push(LIGHTHOUSE_MEMBER);
    const ipam = await syncAllocations(ctx.store, name, spec, names, now);
    for (const n of ipam.added)
      record(
        ctx,
        name,
        'AddressAllocated',
        `"${n}" gets ${ipam.allocations.find((a) => a.node === n)?.address}`,
      );
    for (const n of ipam.leaving) record(ctx, name, 'MemberLeaving', `"${n}" no longer matches the selector`);
    for (const p of ipam.problems) record(ctx, name, 'AddressExhausted', p, true);

    const status: Record<string, OverlayMemberStatus> = {};
    for (const a of ipam.allocations) status[a.node] = { address: a.address, state: a.state };
    const input: Parameters<typeof planMembership>[0] = { overlay, members, allocations: ipam.allocations };
    let cas: NebulaCa[] = [];
    if (deleting) {
      // nothing to sign or generate
    } else if (spec.provider === 'nebula') {
      const n = await ensureNebula(ctx, overlay, ipam.allocations, now, status);
      input.nebula = n.creds;
      cas = n.cas;
    } else if (spec.provider === 'wireguard') {
      input.wireguard = { keys: await ensureWireguard(ctx, overlay, ipam.allocations, status) };
    }
    const plan = planMembership(input);
    plan.problems.unshift(...ipam.problems);
    if (deleting) plan.deleting = true;

    const holder = reservedHolder(spec);
    const reserved = holder ? ipam.allocations.find((a) => a.node === holder) : undefined;
    const next: OverlayStatus = {
      members: status,
      ...(spec.provider !== 'wireguard' && reserved ? { reservedAddress: reserved.address } : {}),
      ...(spec.provider === 'wireguard' && holder ? { reservedAddress: reserved?.address ?? '' } : {}),
      ...(cas.length
        ? { caFingerprints: cas.map((c) => c.fingerprint), caNotAfter: cas.at(-1)!.notAfter }
        : {}),
      problems: plan.problems,
      ...(overlay.metadata.generation !== undefined
        ? { observedGeneration: overlay.metadata.generation }
        : {}),
    };
    // Unchanged status is not written: a write would announce a change and trigger another reconcile.
    await ctx.resources.patchStatus<OverlayStatus>('Overlay', name, (cur) =>
      isDeepStrictEqual(cur, next) ? undefined : next,
    );
    return plan;
  });
}

/** Removes every record an Overlay left behind (addresses, CA, keys, revocations) and its finalizer. */
export async function purgeOverlay(ctx: OverlayContext, name: string): Promise<void> {
  const mine = async (collection: string, prefix: string) =>
    (await ctx.store.listRecords(collection)).map((r) => r.key).filter((k) => k.startsWith(prefix));
  await ctx.store.deleteRecords(IPAM_COLLECTION, await mine(IPAM_COLLECTION, `${name}/`));
  await ctx.store.deleteRecords(SECRETS, await mine(SECRETS, `overlay/${name}/`));
  await ctx.store.deleteRecords(REVOKED_COLLECTION, await mine(REVOKED_COLLECTION, `${name}/`));
  await ctx.resources.removeFinalizer('Overlay', name, OVERLAY_FINALIZER);
}

/** A leaving member's undo has run: free its address and drop its key. */
export async function memberLeft(ctx: OverlayContext, overlay: string, node: string): Promise<void> {
  await ctx.store.deleteRecords(SECRETS, [memberSecretKey(overlay, node)]);
  await releaseAllocation(ctx.store, overlay, node);
  record(ctx, overlay, 'MemberLeft', `"${node}" left; its address is free again`);
}
