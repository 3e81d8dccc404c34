/**
 * The hardware layer's wire contract: the power requests the manager sends to the worker of a node's
 * hardware provider (`hardware.<provider>`: `lab` drives QEMU, a BMC provider would drive Redfish/IPMI),
 * and the work orders it keeps for the `human` provider. Pure: no I/O.
 */
import { type WireContract, wireContract } from '../core/wire.ts';

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

export const subjects = {
  power: (provider: string) => `hardware.${provider}`,
} as const;

/** Work orders for people, key the node name: one open or done order per node. */
export const WORK_ORDERS = 'workorders';

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
      to: ['lab'],
      message: 'PowerRequest → PowerReply, served by the worker of the provider named in the subject',
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
  ],
);
