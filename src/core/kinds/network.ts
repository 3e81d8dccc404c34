/**
 * Network: one broadcast domain (segment) where boot workers answer DHCP, DNS, TFTP and HTTP. With no
 * Network enabling it, Strata answers no DHCP at all.
 */
import { z } from 'zod';
import type { FieldIssue } from '../resources/errors.ts';
import { cidr, duration, inCidr, ipToInt, ipv4, parseCidr } from '../resources/fields.ts';
import { registerKind } from '../resources/kinds.ts';
import type { Condition, Resource } from '../resources/types.ts';

/** A count of processes to fork for one job (absent: the environment's, else one per core). */
const processes = (description: string) => z.number().int().min(1).max(64).optional().describe(description);

export const networkSpec = z
  .object({
    /** Interface the boot worker serves (inside `namespace` when set). */
    interface: z
      .string()
      .min(1, { message: 'expected an interface name like eth0 or br0' })
      .describe('Interface the boot worker serves (inside namespace when set), e.g. eth0 or br0.'),
    /** Network namespace the boot worker runs in (the lab's segment, or one per site). */
    namespace: z
      .string()
      .optional()
      .describe("Network namespace the boot worker runs in (the lab's segment, or one per site)."),
    subnet: cidr.describe("The segment's IPv4 network, e.g. 10.0.0.0/24."),
    /** The boot worker's own address on the segment: next-server, DNS and HTTP boot address. */
    serverAddress: ipv4.describe(
      "The boot worker's own address on the segment: next-server, DNS and HTTP boot address.",
    ),
    gateway: ipv4.optional().describe('Default router handed out by DHCP.'),
    pool: z
      .object({
        start: ipv4.describe('First address of the pool.'),
        end: ipv4.describe('Last address of the pool.'),
      })
      .strict()
      .optional()
      .describe('Dynamic DHCP range, inside subnet; needed when dhcp.mode is full.'),
    dns: z
      .object({
        servers: z
          .array(ipv4)
          .optional()
          .describe('DNS servers handed out by DHCP; serverAddress when absent.'),
        zone: z.string().default('strata.lan').describe("Zone the nodes' names are served in."),
        forwarders: z.array(ipv4).default([]).describe('Where names outside the zone are resolved.'),
        enabled: z.boolean().default(true).describe('Run the DNS server.'),
        port: z.number().int().min(1).max(65535).default(53).describe('UDP/TCP port of the DNS server.'),
      })
      .strict()
      .default({ zone: 'strata.lan', forwarders: [], enabled: true, port: 53 })
      .describe('The DNS server of the segment: node names in zone, everything else forwarded.'),
    dhcp: z
      .object({
        mode: z
          .enum(['full', 'proxy', 'off'])
          .default('full')
          .describe(
            'full leases addresses from pool; proxy adds boot options beside another DHCP server; off answers nothing.',
          ),
        leaseTime: duration.default('1h').describe('Lease duration, e.g. 30m, 1h, 1d.'),
        port: z.number().int().min(1).max(65535).default(67).describe('UDP port DHCP listens on.'),
        proxyPort: z
          .number()
          .int()
          .min(1)
          .max(65535)
          .default(4011)
          .describe('UDP port of the proxyDHCP (PXE) service.'),
        offerHoldTime: duration
          .default('30s')
          .describe(
            'How long an OFFER holds its address for the client offered it; when the pool runs short, held offers are reclaimed oldest first.',
          ),
      })
      .strict()
      .default({ mode: 'full', leaseTime: '1h', port: 67, proxyPort: 4011, offerHoldTime: '30s' })
      .describe(
        'DHCP on the segment: full (leases addresses), proxy (boot options only, beside another DHCP server) or off.',
      ),
    tftp: z
      .object({
        enabled: z.boolean().default(true).describe('Run the TFTP server.'),
        port: z.number().int().min(1).max(65535).default(69).describe('UDP port of the TFTP server.'),
        /** Processes running transfers (the listener hands them out): absent = env, else one per core. */
        processes: processes(
          'Processes running TFTP transfers, started with the first request; default STRATA_BOOT_TFTP_PROCESSES or one per core (at most 8); 1 = the worker alone.',
        ),
      })
      .strict()
      .default({ enabled: true, port: 69 })
      .describe('TFTP serving iPXE to BIOS and UEFI firmware.'),
    boot: z
      .object({
        /** What to do with a MAC no Node names: boot it, ignore it, or enrol it and hold it in discovery. */
        unknownNodes: z
          .enum(['boot', 'ignore', 'discover'])
          .default('discover')
          .describe(
            'What to do with a MAC no Node names: boot it, ignore it, or enrol it and hold it in discovery.',
          ),
        /** HTTP port boot scripts and artifacts are served on at serverAddress. */
        httpPort: z
          .number()
          .int()
          .min(1)
          .max(65535)
          .default(7421)
          .describe('HTTP port boot scripts and artifacts are served on at serverAddress.'),
        /**
         * Processes serving HTTP (SO_REUSEPORT on one port): absent = STRATA_BOOT_HTTP_PROCESSES, else one
         * per core (at most 8). 1 = the worker alone, as before.
         */
        httpProcesses: processes(
          'Processes serving boot HTTP on one port (SO_REUSEPORT); default STRATA_BOOT_HTTP_PROCESSES or one per core (at most 8); 1 = the worker alone.',
        ),
        /**
         * Who serves `/artifacts/`: node (Strata's own HTTP processes) or nginx (the worker's own nginx on
         * the HTTP port, with sendfile; scripts and every other path still go to Strata). Absent =
         * STRATA_BOOT_ARTIFACT_SERVER, else node.
         */
        artifactServer: z
          .enum(['node', 'nginx'], {
            message:
              'expected node (Strata serves artifacts itself) or nginx (the boot worker starts its own nginx for /artifacts/; needs nginx installed)',
          })
          .optional()
          .describe(
            "Who serves /artifacts/: node, or nginx (the worker's own nginx on the HTTP port, with sendfile; scripts and other paths still go to Strata); default STRATA_BOOT_ARTIFACT_SERVER, else node.",
          ),
        uefiBinary: z
          .enum(['ipxe.efi', 'snponly.efi'])
          .default('ipxe.efi')
          .describe("iPXE binary for UEFI: snponly.efi uses the firmware's NIC driver."),
        installTokenTTL: duration
          .default('2h')
          .describe('Lifetime of an install token: long enough for the slowest install (under emulation).'),
        discovery: z
          .object({
            maxNodes: z
              .number()
              .int()
              .min(0)
              .default(256)
              .describe(
                'Discovered (not declared) Nodes this network may hold; further unknown machines are ignored.',
              ),
            perMinute: z
              .number()
              .int()
              .min(0)
              .default(30)
              .describe('Enrolments per minute (a token bucket of this size, refilled at this rate).'),
          })
          .strict()
          .default({ maxNodes: 256, perMinute: 30 })
          .describe('Bounds on enrolment of unknown machines, so forged DISCOVERs cannot fill the store.'),
      })
      .strict()
      .default({
        unknownNodes: 'discover',
        httpPort: 7421,
        uefiBinary: 'ipxe.efi',
        installTokenTTL: '2h',
        discovery: { maxNodes: 256, perMinute: 30 },
      })
      .describe(
        'Network boot behaviour: unknown machines, HTTP port, UEFI binary, install tokens, discovery bounds.',
      ),
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

registerKind<NetworkResource>({
  kind: 'Network',
  plural: 'networks',
  aliases: ['network', 'net'],
  description: 'A network segment served by a boot worker: DHCP, DNS, TFTP and HTTP boot.',
  spec: networkSpec,
  validate: validateNetwork,
  columns: [
    { header: 'SUBNET', value: (r) => r.spec.subnet },
    { header: 'DHCP', value: (r) => r.spec.dhcp.mode },
    { header: 'INTERFACE', value: (r) => r.spec.interface },
    {
      header: 'WORKER',
      value: (r) => r.status?.worker?.phase ?? 'Pending',
    },
    { header: 'NAMESPACE', wide: true, value: (r) => r.spec.namespace ?? '-' },
    { header: 'UNKNOWN', wide: true, value: (r) => r.spec.boot.unknownNodes },
  ],
});
