/**
 * Hardware providers: what sits under a node at step 0 (power, cabling, console). `human` turns power into a
 * work order a person confirms; `lab` drives QEMU; a BMC provider (Redfish/IPMI) implements the same
 * interface. Providers run in workers; the manager reaches them through the transport (`hardware.<name>`).
 */
import type { NodeResource } from '../core/kinds/node.ts';

export type PowerState = 'on' | 'off' | 'unknown';
export type PowerOp = 'on' | 'off' | 'cycle';

export interface PowerRequest {
  op: PowerOp | 'status';
  node: { name: string; macAddresses: string[]; uuid?: string | undefined; labels: Record<string, string> };
}

export interface PowerReply {
  state: PowerState;
  message?: string;
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

export const providerSubject = (provider: string) => `hardware.${provider}`;
