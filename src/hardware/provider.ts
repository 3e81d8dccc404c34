/**
 * Hardware providers: what sits under a node at step 0 (power, cabling, console). `human` turns power into a
 * work order a person confirms; `lab` drives QEMU; the BMC providers (`redfish`, `ipmi`) drive a machine's
 * baseboard management controller. Providers run in workers; the manager reaches them through the
 * transport (`hardware.<name>`). This is the wire contract between them.
 *
 * A BMC request carries the BMC's credentials, read by the manager from the sealed secret store: the worker
 * has no store. They travel only on the transport (in-process, or NATS, which should use TLS where it
 * crosses machines) and are never put in a reply, a log line or an event.
 */
import type { BmcInventory, NodeBmc, NodeResource } from '../core/kinds/node.ts';

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

export interface HardwareProvider {
  readonly name: string;
  power(node: PowerRequest['node'], op: PowerOp): Promise<PowerReply>;
  status(node: PowerRequest['node']): Promise<PowerReply>;
}

export function powerTarget(node: NodeResource): PowerRequest['node'] {
  return {
    name: node.metadata.name,
    macAddresses: node.spec.macAddresses,
    uuid: node.spec.uuid,
    labels: node.metadata.labels ?? {},
  };
}

/** The reply of a provider asked for something it does not implement. */
export function unsupported(provider: string, op: string): PowerReply {
  return {
    state: 'unknown',
    error: {
      status: 501,
      reason: 'Unsupported',
      message: `hardware provider "${provider}" cannot do "${op}"`,
    },
  };
}

export const providerSubject = (provider: string) => `hardware.${provider}`;
