/**
 * The seam between boot (steps 1 → 3) and the layer that installs the OS (step 3 → 4). Boot decides what a
 * machine boots; when that is the installer, it needs three things it does not own, and the installing
 * layer declares them on its Layer object (`bootHandoff`), so boot imports nothing of it:
 *
 * - `relay`: the HTTP paths of the installer's calls, which the segment's worker relays to the installing
 *   layer's manager (boot puts it in every worker's BootConfig, it never reads the calls);
 * - `cmdline`: the kernel command line words that tell the installer where to call and who it is (the
 *   installing layer mints the credential: it is the one that checks it);
 * - `installed`: whether the node's disk holds an installed system, so its script boots the disk
 *   (PXE-once) unless a reprovision is asked for.
 *
 * Reprovisioning resets every layer's status section through that layer's own hook (`Layer.resetStatus`,
 * src/core/layer.ts), not here.
 */
import type { NetworkResource } from '../core/kinds/network.ts';
import type { NodeResource, NodeStatus } from '../core/kinds/node.ts';
import type { Layer, ManagerContext } from '../core/layer.ts';
import type { HttpRelay } from './protocol.ts';

export interface InstallHandoff {
  relay: HttpRelay;
  cmdline(
    ctx: ManagerContext,
    node: NodeResource,
    o: {
      /** The segment's HTTP base URL, as the node reaches it. */
      baseUrl: string;
      network: NetworkResource | undefined;
      /** A reprovision: start a new install attempt. */
      fresh: boolean;
    },
  ): Promise<string>;
  installed(status: NodeStatus): boolean;
}

/** A layer that installs the OS for boot. */
export interface InstallingLayer extends Layer {
  bootHandoff: InstallHandoff;
}

/** The handoff of the loaded layer that installs, if one is loaded. */
export function installHandoff(layers: readonly Layer[]): InstallHandoff | undefined {
  return layers.find((l): l is InstallingLayer => 'bootHandoff' in l)?.bootHandoff;
}

/** The relays every segment's worker serves: those the loaded layers declare. */
export function bootRelays(layers: readonly Layer[]): HttpRelay[] {
  const h = installHandoff(layers);
  return h ? [h.relay] : [];
}
