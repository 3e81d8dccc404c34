/**
 * The hardware layer's wire contract: the requests the manager sends to the worker of a node's hardware
 * provider (`hardware.<provider>`: `lab` drives QEMU, the `bmc` worker role drives Redfish and IPMI), Redfish
 * discovery, the work orders it keeps for the `human` provider and the sealed BMC credentials. Pure: no I/O.
 *
 * A BMC request carries the BMC's credentials, read by the manager from the sealed secret store: the worker
 * has no store. They travel only on the transport (in-process, or NATS, which should use TLS where it
 * crosses machines) and are never put in a reply, a log line or an event.
 */
import type { NodeBmc } from '../core/kinds/node.ts';
import { type WireContract, wireContract } from '../core/wire.ts';
import type { BmcInventory } from './status.ts';

export type PowerState = 'on' | 'off' | 'unknown';
/** `off` asks the OS to shut down (ACPI button); `off-force` cuts power; `reset` is a warm reset. */
export type PowerOp = 'on' | 'off' | 'off-force' | 'cycle' | 'reset';
/** Every action a hardware provider may be asked for; one it cannot do answers `error.status` 501. */
export type HardwareOp = PowerOp | 'status' | 'pxe-once' | 'media-boot' | 'inventory';
export const HARDWARE_OPS: readonly HardwareOp[] = [
  'on',
  'off',
  'off-force',
  'cycle',
  'reset',
  'status',
  'pxe-once',
  'media-boot',
  'inventory',
];

/** A BMC and the credentials to use on it (from the secret the Node names). */
export interface BmcTarget extends NodeBmc {
  username: string;
  password: string;
}

export interface PowerRequest {
  op: HardwareOp;
  node: { name: string; macAddresses: string[]; uuid?: string | undefined; labels: Record<string, string> };
  bmc?: BmcTarget;
  /** `media-boot`: the image the BMC inserts as virtual CD (a URL it can fetch, e.g. the artifact store). */
  imageUrl?: string;
}

/** One call to a BMC, for the node's timeline. Never holds credentials. */
export interface BmcCall {
  /** `GET /redfish/v1/Systems/1`, `ipmitool chassis power on`. */
  call: string;
  ms: number;
  attempt: number;
  /** HTTP status (Redfish) or exit status (ipmitool). */
  status?: number;
  error?: string;
}

/** Why a provider did not do what it was asked: 501 it cannot, 409 not now, 502/504 the BMC failed. */
export interface HardwareError {
  status: 409 | 501 | 502 | 504;
  /** A condition-style reason: `Unsupported`, `BmcUnauthorized`, `BmcUnreachable`, `BmcTimeout`, … */
  reason: string;
  message: string;
}

export interface PowerReply {
  state: PowerState;
  message?: string;
  /** Something the user should know that did not stop the action (TLS off, an override the BMC kept Continuous). */
  warning?: string;
  error?: HardwareError;
  calls?: BmcCall[];
  inventory?: BmcInventory;
}

/** Redfish discovery (`strata bmc discover`): a BMC with its credentials, not yet a Node. */
export interface DiscoverRequest {
  bmc: BmcTarget;
}

/** The service root's identity and each system's inventory, or why the BMC could not be read. */
export type DiscoverReply =
  | {
      root: Record<string, unknown>;
      systems: { id: string; path: string; inventory: BmcInventory }[];
      calls: BmcCall[];
    }
  | { error: HardwareError };

export const subjects = {
  /** The subject of a node's provider: the manager asks `hardware.<spec.providers.hardware>`. */
  power: (provider: string) => `hardware.${provider}`,
  lab: 'hardware.lab',
  redfish: 'hardware.redfish',
  ipmi: 'hardware.ipmi',
  discover: 'hardware.redfish.discover',
} as const;

/** Work orders for people, key the node name: one open or done order per node. */
export const WORK_ORDERS = 'workorders';

/** Sealed collection of BMC credentials, keyed by secret name. */
export const BMC_SECRETS = 'secrets.bmc';

export interface BmcCredentials {
  username: string;
  password: string;
}

export interface WorkOrder {
  node: string;
  action: 'connect' | 'disconnect';
  instructions: string;
  state: 'open' | 'done';
  createdAt: string;
  doneAt?: string;
  doneBy?: string;
}

export const wire: WireContract = wireContract(
  'hardware',
  subjects,
  {
    power: {
      kind: 'request',
      from: ['manager'],
      // Each provider's worker serves only its own subject (below), so no worker sees another's credentials.
      to: [],
      message: 'PowerRequest → PowerReply, to the worker of the provider named in the subject',
    },
    lab: {
      kind: 'request',
      from: ['manager'],
      to: ['lab'],
      message: 'PowerRequest → PowerReply: the lab worker switches the QEMU VM named by the node',
    },
    redfish: {
      kind: 'request',
      from: ['manager'],
      to: ['bmc'],
      message:
        'PowerRequest (with the BMC and its credentials) → PowerReply: power, PXE-once, virtual media, inventory',
    },
    ipmi: {
      kind: 'request',
      from: ['manager'],
      to: ['bmc'],
      message:
        'PowerRequest (with the BMC and its credentials) → PowerReply: power and PXE-once via ipmitool',
    },
    discover: {
      kind: 'request',
      from: ['manager'],
      to: ['bmc'],
      message: 'DiscoverRequest → DiscoverReply: a Redfish service root and its systems, for a proposed Node',
    },
  },
  [
    {
      name: WORK_ORDERS,
      key: 'node name',
      holds: 'WorkOrder: what a person is asked to do (connect, disconnect) and who confirmed it',
      writers: ['manager'],
      readers: ['manager'],
    },
    {
      name: BMC_SECRETS,
      key: 'secret name (a Node’s `spec.bmc.credentialsSecret`)',
      holds:
        'BmcCredentials: a BMC’s user name and password, sealed; sent only to the `bmc` worker in a request',
      writers: ['manager'],
      readers: ['manager'],
    },
  ],
);
