/**
 * The hardware layer's section of a Node's status, declared here onto the core's NodeStatus: what a BMC
 * reported about the machine (Redfish inventory: vendor, CPUs, memory, NICs and their MACs, disks). It has
 * no reset hook: a reprovision installs a new system on the same hardware, so the inventory stays true.
 */

/** Inventory read from a BMC: never credentials. */
export interface BmcInventory {
  readAt: string;
  manufacturer?: string;
  model?: string;
  serial?: string;
  uuid?: string;
  powerState?: string;
  cpus?: { count?: number; model?: string };
  memoryGiB?: number;
  nics?: { id: string; mac: string; speedMbps?: number }[];
  disks?: { id: string; sizeBytes?: number }[];
}

declare module '../core/kinds/node.ts' {
  /** The hardware layer's section of a Node's status. */
  interface NodeStatus {
    /** What the BMC reported (Redfish inventory), and when. */
    bmc?: BmcInventory;
  }
}
