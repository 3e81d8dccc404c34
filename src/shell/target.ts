/**
 * Where a shell call to a node goes. Local scope (how states 4 and below reach a node): the node's LAN
 * address, run by the shell worker of the node's segment, which sits in the segment's network namespace
 * where that address is reachable. Global scope (from state 5 up): the node's overlay address
 * (`status.overlay.address`, written by the overlay layer once Strata reached the node through it), run by
 * the global shell worker, which runs where Strata's own overlay endpoint (its Nebula lighthouse) runs.
 * A node that has an overlay address is reached in global scope unless a call asks for local.
 */
import type { NodeResource, NodeStatus } from '../core/kinds/node.ts';
import { GLOBAL_NETWORK, subjects } from './protocol.ts';

export type ShellScope = 'local' | 'global';

export interface ShellTarget {
  scope: ShellScope;
  node: string;
  /** The segment whose shell worker runs the call (GLOBAL_NETWORK for the global scope). */
  network: string;
  host: string;
  port: number;
  hostKeys: string[];
  /** The worker's request subjects. */
  runSubject: string;
  openSubject: string;
  distributeSubject: string;
}
/** @deprecated the name from before the global scope; a target of either scope. */
export type LocalTarget = ShellTarget;

/** Raised for the global scope of a node that is on no overlay (not at state 5). */
export class GlobalScopeNotImplemented extends Error {
  constructor(node: string) {
    super(
      `shell: node "${node}" has no overlay address yet (status.overlay): it is reached in global scope from state 5 (global network node) on; use the local scope`,
    );
    this.name = 'GlobalScopeNotImplemented';
  }
}

/** Resolves a node to the address, pinned host keys and worker a shell call uses. */
export function resolveTarget(node: NodeResource, scope?: ShellScope): ShellTarget {
  const name = node.metadata.name;
  // The pinned host keys are the install layer's section, the overlay address the overlay layer's.
  const st: Partial<NodeStatus> = node.status ?? {};
  const overlay = st.overlay?.address;
  const chosen = scope ?? (overlay ? 'global' : 'local');
  const pinned = () => {
    if (!st.hostKeys?.length)
      throw new Error(`node "${name}" reported no host key: refusing to trust an unknown host`);
    return st.hostKeys;
  };
  if (chosen === 'global') {
    if (!overlay) throw new GlobalScopeNotImplemented(name);
    const hostKeys = pinned();
    return {
      scope: 'global',
      node: name,
      network: GLOBAL_NETWORK,
      host: overlay,
      port: 22,
      hostKeys,
      runSubject: subjects.run(GLOBAL_NETWORK),
      openSubject: subjects.open(GLOBAL_NETWORK),
      distributeSubject: subjects.distribute(GLOBAL_NETWORK),
    };
  }
  const host = st.addresses?.[0];
  if (!host) throw new Error(`node "${name}" has no known address yet`);
  const hostKeys = pinned();
  const network = node.spec.network ?? st.discovered?.network;
  if (!network) throw new Error(`node "${name}" names no network to reach it through (spec.network)`);
  return {
    scope: 'local',
    node: name,
    network,
    host,
    port: 22,
    hostKeys,
    runSubject: subjects.run(network),
    openSubject: subjects.open(network),
    distributeSubject: subjects.distribute(network),
  };
}
