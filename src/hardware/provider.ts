/**
 * Hardware providers: what sits under a node at step 0 (power, cabling, console). `human` turns power into a
 * work order a person confirms; `lab` drives QEMU; the BMC providers (`redfish`, `ipmi`) drive a machine's
 * baseboard management controller. Providers run in workers; the manager reaches them through the
 * transport (protocol.ts).
 */
import type { NodeResource } from '../core/kinds/node.ts';
import type { PowerOp, PowerReply, PowerRequest } from './protocol.ts';

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
