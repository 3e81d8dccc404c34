/**
 * The lab layer: QEMU VMs with blank disks on a private network namespace that network-boot through
 * Strata's own DHCP, TFTP and HTTP and get Debian installed, for `strata lab` and as the project's
 * end-to-end test. It is a hardware provider (`lab`): its `lab` worker owns the namespace and the VMs
 * (layer.ts, network.ts, vm.ts, qmp.ts), powers them when step 0 → 1 asks, and streams their serial
 * consoles onto the nodes' timelines; its manager turns `strata lab up` into a Network, a Profile and one
 * Node per VM, so the VMs climb the same ladder as real machines. Ownership of the machine-wide namespace
 * (owner.ts) keeps two Strata instances from tearing down each other's lab.
 */
export { labLayer, labSegment, publishLabArtifacts } from './layer.ts';
export { DEFAULT_LAB_NETNS, labNetns } from './owner.ts';
export type { LabDownReply, LabOwnerInfo, LabUpRequest, LabVmInfo } from './protocol.ts';
export { subjects } from './protocol.ts';
