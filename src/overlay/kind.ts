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
        /** Underlay address (or DNS name) members reach the lighthouse on: the static_host_map entry. */
        host: z
          .string({ message: 'expected the lighthouse underlay address members reach, like 10.213.0.1' })
          .min(1, { message: 'expected the lighthouse underlay address members reach, like 10.213.0.1' }),
        port: port('the lighthouse').default(4242),
        /** A member Node that runs the lighthouse; without it Strata runs the lighthouse itself. */
        node: resourceName.optional(),
        /** The lighthouse's overlay address; the first address of the subnet by default. Reserved in IPAM. */
        address: ipv4.optional(),
      })
      .strict(),
    /** Groups signed into every member's certificate; the firewall lets these groups in. */
    groups: z.array(group).default(['strata']),
    /** How long a member certificate is valid; it is re-signed when a third of that is left. */
    certificateLifetime: duration.default('30d'),
    /** How long the overlay's CA is valid; a new CA is made (and both trusted) when a third is left. */
    caLifetime: duration.default('365d'),
    /** UDP port members listen on (0: any free port). */
    listenPort: z.number().int().min(0).max(65535).default(4242),
  })
  .strict();

export const wireguardOptions = z
  .object({
    topology: z.enum(['hub', 'mesh'], { message: 'expected topology "hub" or "mesh"' }).default('mesh'),
    listenPort: port('WireGuard').default(51820),
    /**
     * The member Node every spoke talks through (topology hub). It gets the reserved address. Without it
     * Strata itself is the hub, as it runs the Nebula lighthouse.
     */
    hub: resourceName.optional(),
    /**
     * Where the nodes reach Strata's own WireGuard peer (its underlay address and UDP port). Strata is a
     * peer of every WireGuard overlay, so it reaches its nodes over their overlay addresses (state 5).
     */
    endpoint: z
      .object({
        host: z.string().regex(/^[A-Za-z0-9.-]{1,253}$/, {
          message: 'expected the address or DNS name the nodes reach Strata at, like 10.213.0.1',
        }),
        /** Default: listenPort. Strata listens on it too. */
        port: port("Strata's WireGuard peer").optional(),
      })
      .strict()
      .optional(),
    /** Seconds between keepalives, for members behind NAT (0: off). */
    persistentKeepalive: z.number().int().min(0).max(65535).default(25),
  })
  .strict();

export const zerotierOptions = z
  .object({
    /** The 16-hex-digit network id: the controller's 10-digit address and a 6-digit network number. */
    networkId: z.string().regex(/^[0-9a-f]{16}$/, {
      message: 'expected a 16-digit lower-case hex network id like 8056c2e21c000001',
    }),
    controller: z
      .object({
        /** `selfHosted`: a zerotier-one controller's local API; `central`: ZeroTier Central. */
        type: z.enum(['selfHosted', 'central']).default('selfHosted'),
        /** Base URL: http://127.0.0.1:9993 for a self-hosted controller, https://api.zerotier.com for Central. */
        url: z.url({ message: 'expected the controller base URL like http://127.0.0.1:9993' }),
        /** File on the Strata server holding the API token (authtoken.secret, or a Central API token). */
        tokenFile: z
          .string()
          .min(1, { message: 'expected a path like /var/lib/zerotier-one/authtoken.secret' }),
      })
      .strict(),
    /** The site's moon (world id), orbited with the seed below. */
    moon: z
      .object({
        id: z
          .string()
          .regex(/^[0-9a-f]{10}$/, { message: 'expected a 10-digit hex moon (world) id like 0123456789' }),
        seed: z
          .string()
          .regex(/^[0-9a-f]{10}$/, {
            message: 'expected the 10-digit hex address of a moon root like 0123456789',
          })
          .optional(),
      })
      .strict()
      .optional(),
    /** Artifact name of the zerotier-one package in the local registry. */
    package: z.string().min(1).default('zerotier-one'),
  })
  .strict();

export const overlaySpec = z
  .object({
    provider: z.enum(['nebula', 'wireguard', 'zerotier'], {
      message: 'expected provider "nebula", "wireguard" or "zerotier"',
    }),
    /** The overlay's own IPv4 network; members get addresses from it. */
    subnet: cidr,
    selector: z
      .object({ matchLabels: labels.default({}) })
      .strict()
      .default({ matchLabels: {} }),
    nebula: nebulaOptions.optional(),
    wireguard: wireguardOptions.optional(),
    zerotier: zerotierOptions.optional(),
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
