/**
 * The lab: QEMU VMs on a private network namespace that network-boot through Strata and get Debian
 * installed, used by `strata lab` and as the project's end-to-end test. This module re-exports the
 * pieces: assets (kernel, installer initramfs, OS image), the namespace network, VMs, QMP, a static
 * install server, and the teardown that works after a crash.
 */

export { type AssetManifest, ensureLabAssets, type LabAssetPaths, labAssetPaths } from './assets.ts';
export { type InstallServer, type RecordedRequest, startInstallServer } from './install-server.ts';
export {
  DEFAULT_NETNS,
  DEFAULT_STATE_DIR,
  LabNetwork,
  type LabNetworkOptions,
  labDown,
  listNetns,
} from './network.ts';
export { QmpClient, QmpError, type QmpEvent } from './qmp.ts';
export { QemuVm, type QemuVmOptions, type VmStatus } from './vm.ts';
