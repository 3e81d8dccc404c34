/**
 * Overlay: one global overlay network (the seed's state 5), declared in the overlay layer that owns it.
 * Its members are the Nodes its label selector picks; Strata allocates their overlay addresses, keeps
 * their keys and certificates as secrets and pushes their configurations. The provider block (`nebula`,
 * `wireguard`, `zerotier`) must match `provider`, so a manifest cannot half-describe two overlays at
 * once; every check names the field and the fix, because people write these by hand.
 */
import { z } from 'zod';
import type { FieldIssue } from '../core/resources/errors.ts';
import {
  cidr,
  duration,
  inCidr,
  intToIp,
  ipToInt,
  ipv4,
  labels,
  parseCidr,
  resourceName,
} from '../core/resources/fields.ts';
import { registerKind } from '../core/resources/kinds.ts';
import type { Resource } from '../core/resources/types.ts';
import { OVERLAY_FINALIZER } from './protocol.ts';

const port = (what: string) =>
  z
    .number({ message: `expected a UDP port number for ${what}, like 4242` })
    .int({ message: `expected a whole UDP port number for ${what}` })
    .min(1, { message: `expected a UDP port 1..65535 for ${what}` })
    .max(65535, { message: `expected a UDP port 1..65535 for ${what}` });

const group = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, {
  message: 'expected a group name of letters, digits, "_", "." or "-" (like "strata" or "web")',
});

export const nebulaOptions = z
  .object({
    lighthouse: z
      .object({
        host: z
          .string({ message: 'expected the lighthouse underlay address members reach, like 10.213.0.1' })
          .min(1, { message: 'expected the lighthouse underlay address members reach, like 10.213.0.1' })
          .describe(
            'Underlay address (or DNS name) members reach the lighthouse on, like 10.213.0.1: their static_host_map entry.',
          ),
        port: port('the lighthouse').default(4242).describe('UDP port the lighthouse listens on.'),
        node: resourceName
          .optional()
          .describe('A member Node that runs the lighthouse. Absent: Strata runs the lighthouse itself.'),
        address: ipv4
          .optional()
          .describe(
            "The lighthouse's overlay address, inside subnet and reserved in IPAM. Absent: the subnet's first usable address.",
          ),
      })
      .strict()
      .describe('The lighthouse members find each other through: a member Node, or one Strata runs.'),
    groups: z
      .array(group)
      .default(['strata'])
      .describe(
        "Groups signed into every member's certificate; each member's firewall lets these groups in.",
      ),
    certificateLifetime: duration
      .default('30d')
      .describe(
        'How long a member certificate is valid (seconds, or like 12h, 30d); it is re-signed when a third of that is left.',
      ),
    caLifetime: duration
      .default('365d')
      .describe(
        "How long the overlay's CA is valid (seconds, or like 365d); a new CA is made (and both trusted) when a third is left.",
      ),
    listenPort: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .default(4242)
      .describe('UDP port members listen on (0: any free port); the lighthouse listens on lighthouse.port.'),
  })
  .strict();

export const wireguardOptions = z
  .object({
    topology: z
      .enum(['hub', 'mesh'], { message: 'expected topology "hub" or "mesh"' })
      .default('mesh')
      .describe(
        'mesh: every member peers with every other. hub: each spoke peers with the hub only, which forwards between them.',
      ),
    listenPort: port('WireGuard').default(51820).describe('UDP port every member listens on.'),
    hub: resourceName
      .optional()
      .describe(
        'The member Node every spoke talks through (topology hub only); it gets the reserved address. Absent: Strata itself is the hub.',
      ),
    endpoint: z
      .object({
        host: z
          .string()
          .regex(/^[A-Za-z0-9.-]{1,253}$/, {
            message: 'expected the address or DNS name the nodes reach Strata at, like 10.213.0.1',
          })
          .describe("Strata's address or DNS name on the nodes' network, like 10.213.0.1."),
        port: port("Strata's WireGuard peer")
          .optional()
          .describe("UDP port Strata's peer listens on. Absent: listenPort."),
      })
      .strict()
      .optional()
      .describe(
        "Where the nodes reach Strata's own WireGuard peer. With it Strata is a peer of the overlay and reaches its nodes over their overlay addresses (state 5); without it Strata cannot.",
      ),
    persistentKeepalive: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .default(25)
      .describe('Seconds between keepalives, for members behind NAT (0: off).'),
  })
  .strict();

export const zerotierOptions = z
  .object({
    networkId: z
      .string()
      .regex(/^[0-9a-f]{16}$/, {
        message: 'expected a 16-digit lower-case hex network id like 8056c2e21c000001',
      })
      .describe(
        "The 16-hex-digit network id members join: the controller's 10-digit address and a 6-digit network number.",
      ),
    controller: z
      .object({
        type: z
          .enum(['selfHosted', 'central'])
          .default('selfHosted')
          .describe("selfHosted: a zerotier-one controller's local API. central: ZeroTier Central."),
        url: z
          .url({ message: 'expected the controller base URL like http://127.0.0.1:9993' })
          .describe(
            'Base URL of the controller API: http://127.0.0.1:9993 for a self-hosted controller, https://api.zerotier.com for Central.',
          ),
        tokenFile: z
          .string()
          .min(1, { message: 'expected a path like /var/lib/zerotier-one/authtoken.secret' })
          .describe(
            'File holding the controller API token (authtoken.secret, or a Central API token), read where the controller is reached; never on a member.',
          ),
      })
      .strict()
      .describe(
        "The network's controller: its API authorises each member and assigns it the address Strata allocated.",
      ),
    moon: z
      .object({
        id: z
          .string()
          .regex(/^[0-9a-f]{10}$/, { message: 'expected a 10-digit hex moon (world) id like 0123456789' })
          .describe('The 10-hex-digit moon (world) id.'),
        seed: z
          .string()
          .regex(/^[0-9a-f]{10}$/, {
            message: 'expected the 10-digit hex address of a moon root like 0123456789',
          })
          .optional()
          .describe("The 10-hex-digit address of one of the moon's roots. Absent: the moon id."),
      })
      .strict()
      .optional()
      .describe("The site's moon, which every member orbits (zerotier-cli orbit ID SEED) before joining."),
    strataMember: z
      .string()
      .regex(/^[0-9a-f]{10}$/, {
        message:
          "expected the 10-digit hex ZeroTier address of Strata's own host (zerotier-cli info), like 89e92ceee5",
      })
      .optional()
      .describe(
        "ZeroTier address of the zerotier-one on Strata's own host, joined to this network. Strata authorises it with the subnet's reserved (first) address and reaches its members over the overlay (state 5); without it Strata cannot.",
      ),
    package: z
      .string()
      .regex(/^[a-z0-9][a-z0-9+.-]+$/, { message: 'expected a Debian package name like zerotier-one' })
      .default('zerotier-one')
      .describe(
        "Debian package members install, from Strata's registry as debian/CODENAME/ARCH/NAME (ZeroTier's own .deb, pushed with strata registry push).",
      ),
  })
  .strict();

export const overlaySpec = z
  .object({
    provider: z
      .enum(['nebula', 'wireguard', 'zerotier'], {
        message: 'expected provider "nebula", "wireguard" or "zerotier"',
      })
      .describe(
        "The overlay software: nebula, wireguard or zerotier. Its options block must be set, and no other provider's.",
      ),
    subnet: cidr.describe(
      "The overlay's own IPv4 network, /8 to /30 with no host bits set, like 10.77.0.0/24; members get addresses from it.",
    ),
    selector: z
      .object({
        matchLabels: labels.default({}).describe('Labels a Node must all carry to join. Empty: every Node.'),
      })
      .strict()
      .default({ matchLabels: {} })
      .describe('The Nodes whose labels match matchLabels are the members.'),
    nebula: nebulaOptions
      .optional()
      .describe(
        'Options of provider nebula: the lighthouse, the certificate groups and lifetimes, the port.',
      ),
    wireguard: wireguardOptions
      .optional()
      .describe("Options of provider wireguard: topology, ports, the hub and Strata's own peer."),
    zerotier: zerotierOptions
      .optional()
      .describe("Options of provider zerotier: the network, its controller and the site's moon."),
  })
  .strict();

export type OverlaySpec = z.infer<typeof overlaySpec>;
export type NebulaOptions = z.infer<typeof nebulaOptions>;
export type WireguardOptions = z.infer<typeof wireguardOptions>;
export type ZerotierOptions = z.infer<typeof zerotierOptions>;

export interface OverlayMemberStatus {
  address: string;
  /** `active`, or `leaving` until the member's undo has run and its address is released. */
  state: 'active' | 'leaving';
  /** Nebula: the certificate's fingerprint and expiry. WireGuard: the public key. Never a private key. */
  fingerprint?: string;
  notAfter?: string;
  publicKey?: string;
}

export interface OverlayStatus {
  members?: Record<string, OverlayMemberStatus>;
  /** The reserved address (lighthouse or hub). */
  reservedAddress?: string;
  caFingerprints?: string[];
  caNotAfter?: string;
  /** Cross-resource problems (a hub that is no member, an exhausted subnet), in words. */
  problems?: string[];
  observedGeneration?: number;
}

export type OverlayResource = Resource<OverlaySpec, OverlayStatus>;

export const OVERLAY_PREFIX_MIN = 8;
export const OVERLAY_PREFIX_MAX = 30;

function validateOverlay(r: Resource, at: (p: string) => FieldIssue): FieldIssue[] {
  const s = r.spec as OverlaySpec;
  const out: FieldIssue[] = [];
  const add = (p: string, message: string) => out.push({ ...at(p), message });
  const c = parseCidr(s.subnet);
  if (c) {
    if (c.prefix < OVERLAY_PREFIX_MIN || c.prefix > OVERLAY_PREFIX_MAX) {
      add(
        'spec.subnet',
        `prefix /${c.prefix} is outside /${OVERLAY_PREFIX_MIN}../${OVERLAY_PREFIX_MAX}: use a network like 10.77.0.0/24`,
      );
    } else {
      const mask = (~0 << (32 - c.prefix)) >>> 0;
      const net = intToIp((ipToInt(c.network) & mask) >>> 0);
      if (net !== c.network) add('spec.subnet', `${s.subnet} has host bits set: use ${net}/${c.prefix}`);
    }
  }
  for (const p of ['nebula', 'wireguard', 'zerotier'] as const) {
    if (p !== s.provider && s[p]) {
      add(`spec.${p}`, `is set but provider is "${s.provider}": remove spec.${p} or set provider: ${p}`);
    }
  }
  if (!s[s.provider]) {
    const example = {
      nebula: 'nebula: {lighthouse: {host: 10.213.0.1}}',
      wireguard: 'wireguard: {topology: mesh, endpoint: {host: 10.213.0.1}}',
      zerotier: 'zerotier: {networkId: 8056c2e21c000001, controller: {url: ..., tokenFile: ...}}',
    }[s.provider];
    add(`spec.${s.provider}`, `provider "${s.provider}" needs its options block, like ${example}`);
  }
  const la = s.nebula?.lighthouse.address;
  if (la && c && !inCidr(la, s.subnet)) {
    add('spec.nebula.lighthouse.address', `${la} is outside subnet ${s.subnet}: pick an address inside it`);
  }
  if (s.wireguard?.topology === 'hub' && !s.wireguard.hub && !s.wireguard.endpoint) {
    add(
      'spec.wireguard.endpoint',
      'topology "hub" without hub: NODE makes Strata the hub, and the nodes need its address: set endpoint: {host: ADDRESS} (Strata\'s address on the nodes\' network, like 10.213.0.1) or hub: NODE',
    );
  }
  if (s.wireguard?.topology === 'mesh' && s.wireguard.hub) {
    add('spec.wireguard.hub', 'is only used with topology "hub": remove it or set topology: hub');
  }
  return out;
}

registerKind<OverlayResource>({
  kind: 'Overlay',
  plural: 'overlays',
  aliases: ['overlay', 'ovl'],
  description:
    'A global overlay network (Nebula, WireGuard or ZeroTier) joined by the Nodes its selector picks.',
  spec: overlaySpec,
  validate: validateOverlay,
  finalizers: [OVERLAY_FINALIZER],
  columns: [
    { header: 'PROVIDER', value: (r) => r.spec.provider },
    { header: 'SUBNET', value: (r) => r.spec.subnet },
    {
      header: 'MEMBERS',
      value: (r) => Object.values(r.status?.members ?? {}).filter((m) => m.state === 'active').length,
    },
    {
      header: 'SELECTOR',
      wide: true,
      value: (r) =>
        Object.entries(r.spec.selector.matchLabels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',') || '<all>',
    },
    {
      header: 'RESERVED',
      wide: true,
      value: (r) => r.status?.reservedAddress ?? '-',
    },
  ],
});
