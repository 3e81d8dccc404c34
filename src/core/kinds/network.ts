/**
 * Network: one broadcast domain (segment) where boot workers answer DHCP, DNS, TFTP and HTTP. With no
 * Network enabling it, Strata answers no DHCP at all.
 */
import { z } from 'zod';
import type { FieldIssue } from '../resources/errors.ts';
import { cidr, duration, inCidr, ipToInt, ipv4, parseCidr } from '../resources/fields.ts';
import { registerKind } from '../resources/kinds.ts';
import type { Condition, Resource } from '../resources/types.ts';

export const networkSpec = z
  .object({
    /** Interface the boot worker serves (inside `namespace` when set). */
    interface: z.string().min(1, { message: 'expected an interface name like eth0 or br0' }),
    /** Network namespace the boot worker runs in (the lab's segment, or one per site). */
    namespace: z.string().optional(),
    subnet: cidr,
    /** The boot worker's own address on the segment: next-server, DNS and HTTP boot address. */
    serverAddress: ipv4,
    gateway: ipv4.optional(),
    pool: z.object({ start: ipv4, end: ipv4 }).strict().optional(),
    dns: z
      .object({
        servers: z.array(ipv4).optional(),
        zone: z.string().default('strata.lan'),
        forwarders: z.array(ipv4).default([]),
        enabled: z.boolean().default(true),
        port: z.number().int().min(1).max(65535).default(53),
      })
      .strict()
      .default({ zone: 'strata.lan', forwarders: [], enabled: true, port: 53 }),
    dhcp: z
      .object({
        mode: z.enum(['full', 'proxy', 'off']).default('full'),
        leaseTime: duration.default('1h'),
        port: z.number().int().min(1).max(65535).default(67),
        proxyPort: z.number().int().min(1).max(65535).default(4011),
        /**
         * How long an OFFER holds its address for the client that was offered it. When the pool runs
         * short, held offers are reclaimed oldest first before anyone is refused.
         */
        offerHoldTime: duration.default('30s'),
      })
      .strict()
      .default({ mode: 'full', leaseTime: '1h', port: 67, proxyPort: 4011, offerHoldTime: '30s' }),
    tftp: z
      .object({ enabled: z.boolean().default(true), port: z.number().int().min(1).max(65535).default(69) })
      .strict()
      .default({ enabled: true, port: 69 }),
    boot: z
      .object({
        /** What to do with a MAC no Node names: boot it, ignore it, or enrol it and hold it in discovery. */
        unknownNodes: z.enum(['boot', 'ignore', 'discover']).default('discover'),
        /** HTTP port boot scripts and artifacts are served on at serverAddress. */
        httpPort: z.number().int().min(1).max(65535).default(7421),
        /** Prefer snponly.efi (uses the firmware's NIC driver) over ipxe.efi for UEFI. */
        uefiBinary: z.enum(['ipxe.efi', 'snponly.efi']).default('ipxe.efi'),
      })
      .strict()
      .default({ unknownNodes: 'discover', httpPort: 7421, uefiBinary: 'ipxe.efi' }),
  })
  .strict();

export type NetworkSpec = z.infer<typeof networkSpec>;

/**
 * What Strata observes about a Network: its boot worker (running, or failing and why, so a missing
 * namespace or bridge shows in `strata describe network`, not only in the server's log) and conditions
 * (`WorkerReady`, `PoolExhausted`) in the Kubernetes shape.
 */
export interface NetworkStatus {
  worker?: {
    phase: 'Starting' | 'Running' | 'Failing';
    /** Since when the worker is in this phase. */
    since: string;
    message?: string;
    /** The last failure, kept after the worker recovered. */
    lastError?: string;
    lastErrorAt?: string;
  };
  conditions?: Condition[];
}

export type NetworkResource = Resource<NetworkSpec, NetworkStatus & Record<string, unknown>>;

function validateNetwork(r: Resource, at: (p: string) => FieldIssue): FieldIssue[] {
  const s = r.spec as NetworkSpec;
  const out: FieldIssue[] = [];
  if (!parseCidr(s.subnet)) return out;
  const check = (ip: string | undefined, p: string) => {
    if (ip && !inCidr(ip, s.subnet)) out.push({ ...at(p), message: `${ip} is outside subnet ${s.subnet}` });
  };
  check(s.serverAddress, 'spec.serverAddress');
  check(s.gateway, 'spec.gateway');
  check(s.pool?.start, 'spec.pool.start');
  check(s.pool?.end, 'spec.pool.end');
  if (s.pool && ipToInt(s.pool.start) > ipToInt(s.pool.end)) {
    out.push({ ...at('spec.pool'), message: `pool start ${s.pool.start} is after end ${s.pool.end}` });
  }
  if (s.dhcp.mode === 'full' && !s.pool) {
    out.push({ ...at('spec.pool'), message: 'dhcp.mode "full" needs a pool {start, end} to lease from' });
  }
  return out;
}

registerKind({
  kind: 'Network',
  plural: 'networks',
  aliases: ['network', 'net'],
  description: 'A network segment served by a boot worker: DHCP, DNS, TFTP and HTTP boot.',
  spec: networkSpec,
  validate: validateNetwork,
  columns: [
    { header: 'SUBNET', value: (r) => (r.spec as NetworkSpec).subnet },
    { header: 'DHCP', value: (r) => (r.spec as NetworkSpec).dhcp.mode },
    { header: 'INTERFACE', value: (r) => (r.spec as NetworkSpec).interface },
    {
      header: 'WORKER',
      value: (r) => (r.status as NetworkStatus | undefined)?.worker?.phase ?? 'Pending',
    },
    { header: 'NAMESPACE', wide: true, value: (r) => (r.spec as NetworkSpec).namespace ?? '-' },
    { header: 'UNKNOWN', wide: true, value: (r) => (r.spec as NetworkSpec).boot.unknownNodes },
  ],
});
