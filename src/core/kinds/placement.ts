/**
 * Where a node belongs: the Network it boots on and the Profile it boots and installs. One query for the
 * core's integrity checks, the boot layer's scripts and the install layer, so they can never disagree.
 */
import type { ResourceService } from '../resources/service.ts';
import type { NetworkResource } from './network.ts';
import type { NodeResource } from './node.ts';
import type { ProfileResource } from './profile.ts';

/** The network a node boots on: the one it names, else the only one. */
export function networkOf(node: NodeResource, networks: NetworkResource[]): NetworkResource | undefined {
  if (node.spec.network) return networks.find((n) => n.metadata.name === node.spec.network);
  return networks.length === 1 ? networks[0] : undefined;
}

/** The profile a node boots, from the stored Profiles: the query boot's scripts and the install layer ask. */
export async function selectProfile(
  resources: Pick<ResourceService, 'list'>,
  node: NodeResource,
): Promise<ProfileResource | undefined> {
  return profileOf(node, await resources.list<ProfileResource>('Profile'));
}

/** The profile a node boots: the one it names, else the best label match (lowest priority, then name). */
export function profileOf(node: NodeResource, profiles: ProfileResource[]): ProfileResource | undefined {
  if (node.spec.profile) return profiles.find((p) => p.metadata.name === node.spec.profile);
  const labels = node.metadata.labels ?? {};
  return profiles
    .filter((p) =>
      Object.entries(p.spec.selector.matchLabels).every(
        ([k, v]) => Object.hasOwn(labels, k) && labels[k] === v,
      ),
    )
    .sort((a, b) => a.spec.priority - b.spec.priority || a.metadata.name.localeCompare(b.metadata.name))[0];
}
