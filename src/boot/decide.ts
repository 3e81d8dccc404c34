/**
 * The boot layer's decisions, as pure functions of what the manager read: which script a machine's iPXE
 * gets (discovery, hold, PXE-once local boot, install, reprovision), when a script request is refused
 * (another segment, another address than the lease, boot media without the site's token),
 * whether and how an unknown machine is enrolled, and what boot evidence a worker's report adds to a
 * node's status. No I/O and no clock of their own (`now` is an argument), so each rule is a unit test
 * (test/unit/boot/decide.test.ts); scripts.ts and reports.ts do the reading and writing around them.
 */
import type { NetworkSpec } from '../core/kinds/network.ts';
import type { NodeResource, NodeStatus } from '../core/kinds/node.ts';
import { API_VERSION, type Resource } from '../core/resources/types.ts';
import type { BootReport } from './protocol.ts';

/** The state boot installs toward: a node aimed below it is held; at or above it, installed. */
export const INSTALLED_STATE = 4;
/** The label on Nodes that Strata enrolled itself (unknown machines that asked to boot). */
export const DISCOVERED_LABEL = 'strata.dev/discovered';

type UnknownNodes = NetworkSpec['boot']['unknownNodes'];
export type DhcpReport = Extract<BootReport, { kind: 'dhcp' }>;

/**
 * Whether the manager acts on a DHCP exchange: an ACK or NAK goes on the machine's timeline (and an ACK
 * is step evidence); a firmware DISCOVER can enrol an unknown machine. Anything else (the OFFERs, the
 * requests answered by nobody, the DISCOVERs of a MAC a Node already names: `known`, as the worker's
 * configuration says) it drops, so the worker does not send it: in a burst that is half of every
 * DORA's reports, each a line over the pipe and a lookup by MAC.
 */
export function dhcpReportMatters(e: Pick<DhcpReport, 'type' | 'reply' | 'isPXE'>, known = false): boolean {
  return e.reply === 'ACK' || e.reply === 'NAK' || (e.isPXE && e.type === 'DISCOVER' && !known);
}

/** What a machine's iPXE runs now. */
export type ScriptDecision =
  /** An unknown machine where unknown machines are ignored (or on no Network): HTTP 404. */
  | { mode: 'none' }
  /** An unknown machine waiting to be enrolled: it asks again later. */
  | { mode: 'discovery' }
  /** A node aimed below state 4: it waits, asking again. */
  | { mode: 'hold' }
  /** PXE-once: the installed disk boots, until a reprovision is asked for. */
  | { mode: 'local' }
  /** The installer; `reprovision`: a fresh install asked for by this generation of the spec. */
  | { mode: 'install'; reprovision: boolean };

/** True when `spec.reprovision` asks for a fresh install that this generation has not had yet. */
export function reprovisionPending(node: Pick<NodeResource, 'spec' | 'metadata' | 'status'>): boolean {
  return node.spec.reprovision && node.status?.reprovisionedGeneration !== node.metadata.generation;
}

/**
 * The script decision for a request already allowed (see `scriptRefusal`). `unknownNodes` is the
 * Network's policy, absent when the request names no existing Network; `installed` is the installing
 * layer's word on the node's disk (false when no layer installs).
 */
export function decideScript(f: {
  node: Pick<NodeResource, 'spec' | 'metadata' | 'status'> | undefined;
  unknownNodes: UnknownNodes | undefined;
  installed: boolean;
}): ScriptDecision {
  if (!f.node)
    return !f.unknownNodes || f.unknownNodes === 'ignore' ? { mode: 'none' } : { mode: 'discovery' };
  if (f.node.spec.targetState < INSTALLED_STATE) return { mode: 'hold' };
  const reprovision = reprovisionPending(f.node);
  if (f.installed && !reprovision) return { mode: 'local' };
  return { mode: 'install', reprovision };
}

/**
 * Why a script for node `name` must not go to this request: it came from another segment than the
 * node's (`home`, its one Network), or from another address than those leased to it. Where another
 * DHCP server leases (proxy mode, DHCP off) and Strata knows no lease, the segment is the only check;
 * so it is for a request from boot media with the site's valid token (`fromMedia`): a medium may carry a
 * static address Strata never leased.
 */
export function scriptRefusal(f: {
  name: string;
  /** The Network the request came in on, and whether it exists. */
  network: string;
  networkExists: boolean;
  home: string | undefined;
  /** The request's source address. */
  from: string;
  /** The node's reservation and bound, unexpired leases on that Network. */
  leased: string[];
  dhcpMode: NetworkSpec['dhcp']['mode'] | undefined;
  fromMedia?: boolean;
}): string | undefined {
  if (!f.networkExists || f.home !== f.network)
    return `script for ${f.name} refused on network ${f.network}: the node boots on ${f.home ?? 'no single network'}`;
  if (f.fromMedia) return undefined;
  if (f.leased.includes(f.from) || (!f.leased.length && f.dhcpMode !== 'full')) return undefined;
  return `script for ${f.name} refused to ${f.from}: not the address leased to the node (${f.leased.join(', ') || 'none yet'})`;
}

/**
 * A script request's enrolment token (src/boot/enrolment.ts): `none` when it carries none (firmware
 * network boot), `valid` when it is the site's token for the request's network, else `invalid`.
 */
export type EnrolmentTokenState = 'none' | 'valid' | 'invalid';

/**
 * Why a request from boot media must not get a script: its enrolment token is not the site's for the
 * network, or the medium was made for another node (`madeFor`) than the one its MAC belongs to (`owner`).
 * Undefined for requests that carry no token and for valid ones; a valid one then skips the lease check
 * (`scriptRefusal`'s `fromMedia`).
 */
export function mediaRefusal(f: {
  network: string;
  mac: string;
  token: EnrolmentTokenState;
  madeFor: string | undefined;
  owner: string | undefined;
}): string | undefined {
  if (f.token === 'none') return undefined;
  if (f.token === 'invalid')
    return `boot media refused on network ${f.network}: its enrolment token is not this site's for the network (build new media with \`strata media build --network ${f.network}\`)`;
  if (f.madeFor && f.owner && f.owner !== f.madeFor)
    return `boot media made for node ${f.madeFor} refused: ${f.mac} belongs to ${f.owner}`;
  return undefined;
}

/**
 * The state an unknown machine that asked to boot is enrolled at, or undefined when it is not enrolled:
 * only a firmware PXE DISCOVER enrols, where the Network boots (`boot`: installed with the profile its
 * labels select, state 4) or discovers (`discover`: held at state 1) unknown machines.
 */
export function enrolmentTarget(r: DhcpReport, unknownNodes: UnknownNodes | undefined): number | undefined {
  if (!r.isPXE || r.type !== 'DISCOVER') return undefined;
  if (unknownNodes === 'boot') return INSTALLED_STATE;
  if (unknownNodes === 'discover') return 1;
  return undefined;
}

/** The name Strata gives a machine it enrols: its MAC without colons. */
export function discoveredName(mac: string): string {
  return `node-${mac.replace(/:/g, '')}`;
}

/** The Node an enrolled machine becomes: state 1 (powered and cabled), what its packet said kept. */
export function discoveredNode(r: DhcpReport, targetState: number, now: string): Resource {
  return {
    apiVersion: API_VERSION,
    kind: 'Node',
    metadata: { name: discoveredName(r.mac), labels: { [DISCOVERED_LABEL]: 'true' } },
    spec: {
      macAddresses: [r.mac],
      network: r.network,
      targetState,
      providers: { hardware: 'none', boot: 'network' },
      reprovision: false,
      ...(r.uuid && !/^0{8}-/.test(r.uuid) ? { uuid: r.uuid } : {}),
    },
    status: {
      state: 1,
      phase: 'Discovered',
      discovered: {
        arch: r.archKind,
        ...(r.vendorClass ? { vendorClass: r.vendorClass } : {}),
        ...(r.hostname ? { hostname: r.hostname } : {}),
        firstSeen: now,
        network: r.network,
      },
    },
  };
}

/** Whether `node` counts against `network`'s cap of discovered nodes. */
export function discoveredOn(node: NodeResource, network: string): boolean {
  return (
    node.metadata.labels?.[DISCOVERED_LABEL] === 'true' &&
    (node.spec.network ?? node.status?.discovered?.network) === network
  );
}

/** The refusal when a Network already holds its cap of discovered nodes. */
export function discoveryCapRefusal(
  discovered: number,
  maxNodes: number,
): { reason: string; message: string } | undefined {
  if (discovered < maxNodes) return undefined;
  return {
    reason: 'DiscoveryCapReached',
    message: `the network holds ${discovered} discovered nodes, its cap (spec.boot.discovery.maxNodes ${maxNodes})`,
  };
}

/** A node's status after a DHCP ACK: firmware or iPXE seen, the address first in `addresses`. */
export function afterDhcpAck(s: NodeStatus, r: DhcpReport, now: string): NodeStatus {
  const boot = { ...s.boot };
  if (r.isPXE && !r.isIPXE) Object.assign(boot, { firmwareAt: now, firmwareArch: r.archKind });
  if (r.isIPXE) boot.ipxeAt = now;
  const addresses = r.ip ? [r.ip, ...(s.addresses ?? []).filter((a) => a !== r.ip)] : s.addresses;
  return { ...s, boot, lastSeen: now, ...(addresses ? { addresses } : {}) };
}

/**
 * A node's status after a successful HTTP fetch: its script (so iPXE ran) or an artifact (a kernel).
 * `kernelAt` is the first artifact since the node last booted (its latest DHCP or script): the initramfs
 * after the kernel changes nothing, and is no status write (undefined).
 */
export function afterHttpFetch(s: NodeStatus, what: string, now: string): NodeStatus | undefined {
  const b = s.boot;
  const bootedAt = [b?.firmwareAt, b?.ipxeAt, b?.scriptAt].reduce<string>((a, t) => (t && t > a ? t : a), '');
  if (what !== 'script' && b?.kernelAt && b.kernelAt >= bootedAt) return undefined;
  return {
    ...s,
    boot: {
      ...s.boot,
      ...(what === 'script' ? { scriptAt: now, ipxeAt: s.boot?.ipxeAt ?? now } : { kernelAt: now }),
    },
  };
}

/** Step 1 → 2's check: the firmware booted from the network (or iPXE already ran, which implies it). */
export function firmwareBooted(s: NodeStatus | undefined): boolean {
  return Boolean(s?.boot?.firmwareAt || s?.boot?.ipxeAt);
}

/** Step 2 → 3's check: iPXE runs on the node (it asked DHCP as iPXE, or fetched its script). */
export function ipxeRan(s: NodeStatus | undefined): boolean {
  return Boolean(s?.boot?.ipxeAt || s?.boot?.scriptAt);
}
