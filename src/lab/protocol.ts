/**
 * What the lab manager asks of the `lab` worker, which owns the lab's network namespace and its QEMU VMs:
 * bring VMs up, tear them down, say what runs. The worker also serves the hardware layer's power subject
 * for the `lab` provider and publishes each VM's serial console as timeline events. Pure: no I/O.
 */
import { type WireContract, wireContract } from '../core/wire.ts';

export interface LabUpRequest {
  nodes: number;
  firmware: 'bios' | 'uefi' | 'mixed';
  memoryMiB?: number;
  /** Frames dropped on the lab bridge, percent each way (a lossy wire); 0 or absent: none. */
  lossPercent?: number;
}

export interface LabVmInfo {
  name: string;
  mac: string;
  firmware: 'bios' | 'uefi';
  status?: string;
}

export const subjects = { up: 'lab.up', down: 'lab.down', status: 'lab.status' } as const;

export const wire: WireContract = wireContract('lab', subjects, {
  up: { kind: 'request', from: ['manager'], to: ['lab'], message: 'LabUpRequest → LabVmInfo[]' },
  down: { kind: 'request', from: ['manager'], to: ['lab'], message: '{} → LabDownReply' },
  status: {
    kind: 'request',
    from: ['manager'],
    to: ['lab'],
    message: '{} → {vms: LabVmInfo[], owner?: LabOwnerInfo}',
  },
});

/** The reply of `lab.down`: whether this instance's lab was torn down, and why not. */
export interface LabDownReply {
  ok: boolean;
  message?: string;
}

/** Who owns the lab namespace, as `GET /api/v1/lab` reports it. */
export interface LabOwnerInfo {
  namespace: string;
  pid: number;
  dataDir: string;
  alive: boolean;
  /** The instance answering owns it. */
  self: boolean;
}
