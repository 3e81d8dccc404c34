/**
 * The registry layer: where nodes get their artifacts (packages, images, overlay binaries). The global
 * registry (manager.ts) keeps references in the store and blobs in a directory or S3/MinIO backend, and is
 * served on the manager's API; a site's local registry (local.ts) runs inside that segment's boot worker
 * and pulls through from the global one, over HTTP or, where no address is configured, over the transport
 * (protocol.ts). Both speak one small HTTP protocol, so nodes, the CLI and local registries share one
 * client (client.ts). The layer has no worker role of its own and no ladder step: states 5 and up use it.
 */
import type { Layer } from '../core/layer.ts';
import { startRegistryManager } from './manager.ts';

export { RegistryClient } from './client.ts';
export { ensurePullToken, parseMinAge, readOverTransport } from './manager.ts';
export type { ArtifactRef } from './store.ts';

export const registryLayer: Layer = {
  name: 'registry',
  roles: [],
  manager: (ctx) => startRegistryManager(ctx),
};
