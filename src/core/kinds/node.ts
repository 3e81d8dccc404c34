/**
 * Node: one machine on the ladder. `spec.targetState` is what the user wants (0..9, the seed's states);
 * `status.state` is what Strata last measured. Providers name the implementation used for each layer.
 */
import { z } from 'zod';
import { hostname, ipv4, labels, mac, resourceName } from '../resources/fields.ts';
import { registerKind } from '../resources/kinds.ts';
import type { Condition, Resource } from '../resources/types.ts';

export const STATE_NAMES = [
  'host',
  'proprietary node',
  'UEFI/BIOS node',
  'iPXE node',
  'local network node',
  'global network node',
  'layer-1 cluster node',
  'layer-n cluster node',
  'service mesh namespace node',
  'service mesh node',
] as const;

/**
 * The machine's BMC (baseboard management controller): where it answers and how to reach it safely. The
 * credentials are not here: `credentialsSecret` names a BMC secret kept sealed in the secret store
 * (`strata bmc secret NAME`), so `get`/`describe` and events never carry them.
 */
export const nodeBmc = z
  .object({
    protocol: z
      .enum(['redfish', 'ipmi'], { message: 'expected "redfish" or "ipmi"' })
      .describe('How Strata talks to the BMC: Redfish over HTTPS, or IPMI 2.0 over LAN (lanplus).'),
    address: z
      .string()
      .min(1, {
        message: 'expected the BMC address, e.g. 10.0.0.5, bmc1.example.net or https://10.0.0.5:8443',
      })
      .regex(/^(https:\/\/)?[A-Za-z0-9.-]+(\[[0-9a-fA-F:]+\])?(:\d{1,5})?\/?$/, {
        message:
          'expected a host, host:port or https://host:port (no path, no credentials), e.g. 10.0.0.5 or https://bmc1:8443',
      })
      .describe(
        'Host, host:port, or https://host:port of the BMC (Redfish: HTTPS; IPMI: UDP, default port 623).',
      ),
    credentialsSecret: resourceName.describe(
      'Name of the BMC secret holding username and password, set with "strata bmc secret NAME --username U" (never stored on the Node).',
    ),
    systemId: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, { message: 'expected a Redfish system id like "1" or "System.Embedded.1"' })
      .optional()
      .describe('Redfish: the ComputerSystem id under /redfish/v1/Systems; the only system when absent.'),
    caCert: z
      .string()
      .regex(/-----BEGIN CERTIFICATE-----/, {
        message: 'expected a PEM certificate (-----BEGIN CERTIFICATE-----)',
      })
      .optional()
      .describe("Redfish: PEM CA certificate the BMC's HTTPS certificate must chain to."),
    fingerprint: z
      .string()
      .transform((v) =>
        v
          .replace(/^sha256:/i, '')
          .replace(/:/g, '')
          .toLowerCase(),
      )
      .pipe(
        z.string().regex(/^[0-9a-f]{64}$/, {
          message: 'expected the SHA-256 fingerprint of the BMC certificate: 64 hex digits, colons allowed',
        }),
      )
      .optional()
      .describe(
        "Redfish: SHA-256 fingerprint of the BMC's certificate (pinned; self-signed certificates are fine).",
      ),
    insecureSkipVerify: z
      .boolean()
      .default(false)
      .describe(
        'Redfish: accept any certificate (INSECURE: anyone on the path can read the BMC password). Every call then records a warning.',
      ),
  })
  .strict()
  .superRefine((b, ctx) => {
    const tls = [
      b.caCert && 'caCert',
      b.fingerprint && 'fingerprint',
      b.insecureSkipVerify && 'insecureSkipVerify',
    ].filter(Boolean);
    if (b.protocol === 'ipmi') {
      for (const f of tls)
        ctx.addIssue({
          code: 'custom',
          path: [f as string],
          message: `${f} applies to Redfish only: remove it for protocol ipmi`,
        });
      if (b.systemId)
        ctx.addIssue({
          code: 'custom',
          path: ['systemId'],
          message: 'systemId applies to Redfish only: remove it for protocol ipmi',
        });
      if (/^https:/.test(b.address))
        ctx.addIssue({
          code: 'custom',
          path: ['address'],
          message: 'an IPMI BMC address is host or host:port, not https://',
        });
    } else if (tls.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: [tls[1] as string],
        message: `set only one of caCert, fingerprint, insecureSkipVerify (got ${tls.join(' and ')})`,
      });
    }
  });

export type NodeBmc = z.infer<typeof nodeBmc>;

export const nodeSpec = z
  .object({
    macAddresses: z
      .array(mac)
      .default([])
      .describe(
        "MAC addresses of the machine's NICs; DHCP and boot requests from any of them are this node. Any common form (52-54-00-…, 5254.00…) is accepted and stored lower-case with colons.",
      ),
    uuid: z
      .string()
      .regex(/^[0-9a-fA-F-]{32,36}$/, { message: 'expected an SMBIOS UUID like 8c5a3e4f-...' })
      .optional()
      .describe(
        'SMBIOS system UUID, as the firmware reports it in DHCP option 97; identifies the machine when its MAC changes.',
      ),
    serial: z.string().optional().describe('Serial number of the machine, for humans and inventory.'),
    hostname: hostname
      .optional()
      .describe("Host name given to the installed system and served by DNS; the node's name when absent."),
    targetState: z
      .number({ message: 'expected a state number 0..9' })
      .int()
      .min(0, { message: 'expected a state number 0..9' })
      .max(9, { message: 'expected a state number 0..9' })
      .default(0)
      .describe(
        'The ladder state this node should climb to (0 host … 4 local network node, SSH reachable … 9 service mesh node). Strata reconciles one step at a time; status.state is what it measured.',
      ),
    /** Network this node boots on; when absent, the network whose subnet holds its address, or the only one. */
    network: resourceName
      .optional()
      .describe(
        'Network this node boots on; when absent, the network whose subnet holds its address, or the only one.',
      ),
    /** Reserved address on that network. */
    ipAddress: ipv4
      .optional()
      .describe('Address reserved for this node on its network (outside the dynamic pool).'),
    /** Profile to boot; when absent, the profile whose selector matches the node's labels. */
    profile: resourceName
      .optional()
      .describe(
        "Profile to boot and install; when absent, the profile whose selector matches the node's labels.",
      ),
    providers: z
      .object({
        hardware: z
          .enum(['human', 'lab', 'redfish', 'ipmi', 'none'])
          .default('human')
          .describe('Who powers and cables the machine (step 0→1): a human work order, a lab VM, or a BMC.'),
        boot: z
          .enum(['network', 'usb'])
          .default('network')
          .describe('How firmware reaches iPXE (steps 1→3): network boot (DHCP/TFTP) or a USB stick.'),
        install: z
          .enum(['preseed', 'kickstart', 'cloud-init', 'image'])
          .optional()
          .describe("How the OS is installed (step 3→4); the profile's installer when absent."),
        overlay: z
          .enum(['nebula', 'wireguard', 'zerotier'])
          .optional()
          .describe(
            'Pins the overlay provider (step 4→5); absent: whatever the Overlay that selects the node uses.',
          ),
        cluster: z
          .enum(['kubernetes', 'k3s'])
          .optional()
          .describe(
            'Pins the cluster distribution (step 5→6); absent: whatever the Cluster that selects the node uses.',
          ),
      })
      .strict()
      .default({ hardware: 'human', boot: 'network' })
      .describe('The implementation used for each layer of the ladder.'),
    bmc: nodeBmc
      .optional()
      .describe(
        'The BMC that powers this machine and sets its next boot device (hardware provider redfish or ipmi).',
      ),
    /** Ask for a fresh OS install on the next boot (PXE-once is otherwise kept). */
    reprovision: z
      .boolean()
      .default(false)
      .describe(
        'Ask for a fresh OS install on the next boot; otherwise an installed node boots its disk (PXE-once).',
      ),
  })
  .strict()
  .superRefine((s, ctx) => {
    const hw = s.providers.hardware;
    if ((hw === 'redfish' || hw === 'ipmi') && !s.bmc)
      ctx.addIssue({
        code: 'custom',
        path: ['bmc'],
        message: `hardware provider "${hw}" needs spec.bmc: {protocol: ${hw}, address: ..., credentialsSecret: ...}`,
      });
    else if ((hw === 'redfish' || hw === 'ipmi') && s.bmc && s.bmc.protocol !== hw)
      ctx.addIssue({
        code: 'custom',
        path: ['bmc', 'protocol'],
        message: `bmc.protocol is "${s.bmc.protocol}" but providers.hardware is "${hw}": make them the same`,
      });
  });

export type NodeSpec = z.infer<typeof nodeSpec>;

export interface StepStatus {
  name: string;
  from: number;
  startedAt: string;
  attempts: number;
  lastError?: string;
  nextAttemptAt?: string;
  message?: string;
}

/**
 * What the ladder engine and every layer share. Each layer declares its own section in its `status.ts`
 * (`declare module '…/core/kinds/node.ts' { interface NodeStatus { … } }`: hardware, boot, install,
 * overlay) with a reset hook for reprovisioning (`Layer.resetStatus`), so the core names no layer's fields
 * and readers need no casts.
 */
export interface NodeStatus {
  state: number;
  /** Human summary: `Ready`, `Provisioning`, `Waiting`, `Failed`, `Discovered`. */
  phase?: string;
  conditions?: Condition[];
  step?: StepStatus;
  /** What its packets told about a machine that enrolled itself. */
  discovered?: {
    arch?: string;
    vendorClass?: string;
    hostname?: string;
    firstSeen?: string;
    network?: string;
  };
  addresses?: string[];
  lastSeen?: string;
}

export type NodeResource = Resource<NodeSpec, NodeStatus>;

/**
 * The ladder engine's finalizer, put on every new Node: a deleted node first walks back down its ladder
 * (each step's undo), then the engine removes this and the node goes.
 */
export const LADDER_FINALIZER = 'strata.dev/ladder';

registerKind<NodeResource>({
  kind: 'Node',
  plural: 'nodes',
  aliases: ['node', 'no'],
  description: 'A machine climbing the ladder from bare metal to service mesh.',
  spec: nodeSpec,
  finalizers: [LADDER_FINALIZER],
  columns: [
    { header: 'STATE', value: (r) => r.status?.state ?? 0 },
    { header: 'TARGET', value: (r) => r.spec.targetState },
    { header: 'PHASE', value: (r) => r.status?.phase ?? 'Pending' },
    {
      header: 'STEP',
      value: (r) => {
        const s = r.status?.step;
        return s ? `${s.name}${s.attempts > 1 ? ` (try ${s.attempts})` : ''}` : '-';
      },
    },
    { header: 'MAC', value: (r) => r.spec.macAddresses?.[0] ?? '-' },
    {
      header: 'ADDRESS',
      wide: true,
      value: (r) => r.status?.addresses?.[0] ?? '-',
    },
    { header: 'HARDWARE', wide: true, value: (r) => r.spec.providers?.hardware },
    {
      header: 'ERROR',
      wide: true,
      value: (r) => r.status?.step?.lastError ?? '',
    },
  ],
});

export { labels };
