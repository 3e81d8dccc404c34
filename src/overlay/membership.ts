/**
 * Overlay membership as one pure function: given an Overlay, its selected member Nodes, the address
 * allocations and the credentials Strata keeps, what every member needs — the files of its distributable
 * (the provider's check/apply/undo scripts, an env file and the rendered configuration), the peers it
 * talks to, and a digest so the shell layer pushes only what changed — plus an undo for every member that
 * is leaving. Because it does no I/O, "adding a node re-renders every peer" and "a removed node vanishes
 * from every remaining config and its certificate is blocklisted" are tested without a single daemon;
 * the integration test then runs the same output in real Nebula and WireGuard daemons.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Allocation } from './ipam.ts';
import { reservedAddress, usableRange } from './ipam.ts';
import type { OverlayResource } from './kind.ts';
import { type NebulaCert, renderNebulaConfig } from './nebula.ts';
import { LIGHTHOUSE_MEMBER } from './protocol.ts';
import { renderWgQuick, renderWgSetconf, type WgKeyPair, type WgPeer } from './wireguard.ts';

export interface MemberNode {
  name: string;
  /** Underlay address other members (and Strata) reach the node on; from the Node's status or spec. */
  underlay?: string;
}

export interface NebulaCredentials {
  /** Trusted CA certificates (PEM), newest last. */
  caCerts: string[];
  /** Certificates by member name ({@link LIGHTHOUSE_MEMBER} for Strata's own lighthouse). */
  certs: Record<string, Pick<NebulaCert, 'cert' | 'key' | 'fingerprint'>>;
  /** Fingerprints of revoked certificates that have not expired yet. */
  blocklist: string[];
}

export interface WireguardCredentials {
  keys: Record<string, WgKeyPair>;
}

export interface PlanInput {
  overlay: OverlayResource;
  members: MemberNode[];
  allocations: Allocation[];
  nebula?: NebulaCredentials;
  wireguard?: WireguardCredentials;
}

export interface RenderedFile {
  /** Relative to the distributable's directory. */
  name: string;
  content: string;
  mode: number;
  /** Holds a private key: never logged, never served. */
  secret: boolean;
}

export interface MemberPlan {
  node: string;
  address: string;
  /** The distributable: scripts, env file, configuration. Run `apply.sh`, then `check.sh`. */
  files: RenderedFile[];
  /** Members this one has a tunnel configuration for. */
  peers: string[];
  /** sha256 over the files: unchanged digest, nothing to push. */
  digest: string;
  /** Strata's own WireGuard peer: its address with the subnet's prefix, for its interface. */
  cidr?: string;
}

export interface LeavePlan {
  node: string;
  address: string;
  /** Run `undo.sh` on the node; then release its address. */
  files: RenderedFile[];
}

export interface OverlayPlan {
  overlay: string;
  provider: 'nebula' | 'wireguard' | 'zerotier';
  members: MemberPlan[];
  leaving: LeavePlan[];
  /**
   * What Strata runs itself: the Nebula lighthouse (without `lighthouse.node`), or its WireGuard peer
   * (with `wireguard.endpoint`: the hub, or one more mesh peer).
   */
  lighthouse?: MemberPlan;
  /** ZeroTier: Strata's own host as a member (`spec.zerotier.strataMember`), to authorise at the controller. */
  strataMember?: { memberId: string; address: string };
  problems: string[];
  /** The Overlay is being deleted: every member is leaving. */
  deleting?: true;
}

const SCRIPTS = join(import.meta.dirname, 'scripts');
const scriptCache = new Map<string, string>();

/** A provider's script, as shipped in src/overlay/scripts/PROVIDER/NAME. */
export function providerScript(provider: string, name: string): string {
  const path = join(SCRIPTS, provider, name);
  let s = scriptCache.get(path);
  if (s === undefined) {
    s = readFileSync(path, 'utf8');
    scriptCache.set(path, s);
  }
  return s;
}

const shellQuote = (v: string) => `'${v.replaceAll("'", "'\\''")}'`;

/** `KEY='value'` lines for the scripts to source. */
export function renderEnv(vars: Record<string, string | number>): string {
  return `${Object.entries(vars)
    .map(([k, v]) => `${k}=${shellQuote(String(v))}`)
    .join('\n')}\n`;
}

function scripts(provider: string, names: string[]): RenderedFile[] {
  return names.map((n) => ({ name: n, content: providerScript(provider, n), mode: 0o755, secret: false }));
}

const envFile = (content: string): RenderedFile => ({
  name: 'overlay.env',
  content,
  mode: 0o644,
  secret: false,
});

/** Undo distributables for the members that are leaving. */
function leavePlans(
  provider: string,
  leaving: Allocation[],
  envFor: (address: string) => string,
): LeavePlan[] {
  return leaving.map((a) => ({
    node: a.node,
    address: a.address,
    files: [...scripts(provider, ['undo.sh']), envFile(envFor(a.address))],
  }));
}

function digestOf(files: RenderedFile[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => a.name.localeCompare(b.name))) {
    h.update(`${f.name}\0${f.mode}\0${f.content}\0`);
  }
  return h.digest('hex');
}

function member(node: string, address: string, files: RenderedFile[], peers: string[]): MemberPlan {
  return { node, address, files, peers, digest: digestOf(files) };
}

/** Interface names are at most 15 characters. */
export function interfaceName(prefix: string, overlay: string): string {
  return `${prefix}${overlay}`.slice(0, 15);
}

export function planMembership(input: PlanInput): OverlayPlan {
  const { overlay } = input;
  const spec = overlay.spec;
  const name = overlay.metadata.name;
  const prefix = usableRange(spec.subnet).prefix;
  const problems: string[] = [];
  const alloc = new Map(input.allocations.map((a) => [a.node, a]));
  const selected = new Set(input.members.map((m) => m.name));
  const underlay = new Map(input.members.map((m) => [m.name, m.underlay]));
  const active = input.members
    .map((m) => m.name)
    .filter((n) => alloc.get(n)?.state === 'active')
    .sort();
  const leaving = input.allocations.filter(
    (a) => a.node !== LIGHTHOUSE_MEMBER && (a.state === 'leaving' || !selected.has(a.node)),
  );
  const plan: OverlayPlan = { overlay: name, provider: spec.provider, members: [], leaving: [], problems };

  if (spec.provider === 'nebula') {
    const opts = spec.nebula!;
    const creds = input.nebula ?? { caCerts: [], certs: {}, blocklist: [] };
    const lhNode = opts.lighthouse.node ?? LIGHTHOUSE_MEMBER;
    const lhAddress = reservedAddress(spec)!;
    const tun = interfaceName('nebula-', name);
    const envFor = (address: string) =>
      renderEnv({ OVERLAY: name, TUN: tun, ADDRESS: address, LIGHTHOUSE: lhAddress });
    const render = (node: string): MemberPlan | undefined => {
      const c = creds.certs[node];
      const a = alloc.get(node);
      if (!c || !a) {
        problems.push(`member "${node}" has no ${a ? 'certificate' : 'address'} yet`);
        return undefined;
      }
      const config = renderNebulaConfig({
        caCerts: creds.caCerts,
        cert: c.cert,
        key: c.key,
        amLighthouse: node === lhNode,
        lighthouse: { address: lhAddress, host: opts.lighthouse.host, port: opts.lighthouse.port },
        listenPort: opts.listenPort,
        groups: opts.groups,
        blocklist: creds.blocklist,
        tunDevice: tun,
      });
      const files = [
        ...scripts('nebula', ['check.sh', 'apply.sh', 'undo.sh']),
        envFile(envFor(a.address)),
        { name: 'config.yml', content: config, mode: 0o600, secret: true },
      ];
      const peers = node === lhNode ? active.filter((n) => n !== node) : [lhNode];
      return member(node, a.address, files, peers);
    };
    for (const n of active) {
      const m = render(n);
      if (m) plan.members.push(m);
    }
    if (lhNode === LIGHTHOUSE_MEMBER) {
      if (alloc.get(LIGHTHOUSE_MEMBER)?.state === 'active') plan.lighthouse = render(LIGHTHOUSE_MEMBER);
    } else if (!active.includes(lhNode)) {
      problems.push(
        `spec.nebula.lighthouse.node: "${lhNode}" is not a selected member: label it to match spec.selector or remove lighthouse.node so Strata runs the lighthouse`,
      );
    }
    plan.leaving = leavePlans('nebula', leaving, envFor);
    return plan;
  }

  if (spec.provider === 'wireguard') {
    const opts = spec.wireguard!;
    const keys = input.wireguard?.keys ?? {};
    const iface = interfaceName('wg-', name);
    // Strata's own peer (with spec.wireguard.endpoint): one more mesh peer, or the hub when none is named.
    const strata =
      opts.endpoint && alloc.get(LIGHTHOUSE_MEMBER)?.state === 'active' ? LIGHTHOUSE_MEMBER : undefined;
    const hub = opts.topology === 'hub' ? (opts.hub ?? LIGHTHOUSE_MEMBER) : undefined;
    const peering = strata ? [...active, strata] : active;
    if (strata) underlay.set(strata, opts.endpoint!.host);
    const portOf = (n: string) => (n === strata ? (opts.endpoint!.port ?? opts.listenPort) : opts.listenPort);
    if (hub && !peering.includes(hub)) {
      problems.push(
        hub === LIGHTHOUSE_MEMBER
          ? 'spec.wireguard.endpoint: Strata is the hub but has no address on the overlay yet'
          : `spec.wireguard.hub: "${hub}" is not a selected member: label it to match spec.selector or pick another hub`,
      );
    }
    const ready = peering.filter((n) => {
      if (keys[n]) return true;
      problems.push(`member "${n}" has no WireGuard key yet`);
      return false;
    });
    const peerOf = (n: string, allowed: string[]): WgPeer => {
      const ep = underlay.get(n);
      return {
        name: n,
        publicKey: keys[n]!.publicKey,
        allowedIps: allowed,
        ...(ep ? { endpoint: `${ep}:${portOf(n)}` } : {}),
        ...(opts.persistentKeepalive ? { persistentKeepalive: opts.persistentKeepalive } : {}),
      };
    };
    for (const n of ready) {
      if (!underlay.get(n))
        problems.push(`member "${n}" has no underlay address: its peers cannot reach it first`);
      const a = alloc.get(n)!;
      // Mesh: everyone peers with everyone. Hub: the hub with every spoke, a spoke with the hub only.
      const peers: WgPeer[] =
        !hub || n === hub
          ? ready.filter((p) => p !== n).map((p) => peerOf(p, [`${alloc.get(p)!.address}/32`]))
          : ready.includes(hub)
            ? [peerOf(hub, [spec.subnet])]
            : [];
      const iface0 = {
        privateKey: keys[n]!.privateKey,
        address: `${a.address}/${prefix}`,
        listenPort: portOf(n),
        peers,
        forward: n === hub,
      };
      if (n === strata) {
        // Strata's peer runs in wireguard-go under the overlay manager: it needs the setconf file only.
        const files = [{ name: 'wg.conf', content: renderWgSetconf(iface0), mode: 0o600, secret: true }];
        plan.lighthouse = {
          ...member(
            n,
            a.address,
            files,
            peers.map((p) => p.name),
          ),
          cidr: iface0.address,
        };
        continue;
      }
      const env = renderEnv({
        OVERLAY: name,
        IFACE: iface,
        ADDRESS: a.address,
        PUBLIC_KEY: keys[n]!.publicKey,
      });
      const files = [
        ...scripts('wireguard', ['check.sh', 'apply.sh', 'undo.sh']),
        { name: 'overlay.env', content: env, mode: 0o644, secret: false },
        { name: 'wg-quick.conf', content: renderWgQuick(iface0), mode: 0o600, secret: true },
        { name: 'wg.conf', content: renderWgSetconf(iface0), mode: 0o600, secret: true },
      ];
      plan.members.push(
        member(
          n,
          a.address,
          files,
          peers.map((p) => p.name),
        ),
      );
    }
    plan.leaving = leavePlans('wireguard', leaving, (address) =>
      renderEnv({ OVERLAY: name, IFACE: iface, ADDRESS: address, PUBLIC_KEY: '' }),
    );
    return plan;
  }

  // ZeroTier: a member joins on its own; the controller hands out the address Strata allocated once
  // Strata authorised the member id the scripts report (src/overlay/zerotier.ts).
  const zt = spec.zerotier!;
  const envFor = (address: string) =>
    renderEnv({
      OVERLAY: name,
      NETWORK_ID: zt.networkId,
      ADDRESS: address,
      MOON_ID: zt.moon?.id ?? '',
      MOON_SEED: zt.moon?.seed ?? zt.moon?.id ?? '',
      PACKAGE_FILE: `${zt.package}.deb`,
    });
  for (const n of active) {
    const a = alloc.get(n)!;
    const files = [...scripts('zerotier', ['check.sh', 'apply.sh', 'undo.sh']), envFile(envFor(a.address))];
    plan.members.push(member(n, a.address, files, []));
  }
  const self = alloc.get(LIGHTHOUSE_MEMBER);
  if (zt.strataMember && self?.state === 'active')
    plan.strataMember = { memberId: zt.strataMember, address: self.address };
  plan.leaving = leavePlans('zerotier', leaving, envFor);
  return plan;
}
