/**
 * Where a shell call to a node goes. Local scope (states 4 and below reach a node this way): the node's LAN
 * address, run by the shell worker of the node's segment, which sits in the segment's network namespace
 * where that address is reachable. Global scope (an overlay address, reachable from anywhere) comes with
 * state 5; asking for it today fails with a typed error that says so.
 */
import type { NodeResource, NodeStatus } from '../core/kinds/node.ts';
import { subjects } from './protocol.ts';

export type ShellScope = 'local' | 'global';

export interface LocalTarget {
  scope: 'local';
  node: string;
  /** The segment whose shell worker runs the call. */
  network: string;
  host: string;
  port: number;
  hostKeys: string[];
  /** The worker's request subjects. */
  runSubject: string;
  openSubject: string;
}

/** Raised for the global scope until state 5 (overlay) exists. */
export class GlobalScopeNotImplemented extends Error {
  constructor(node: string) {
    super(
      `shell: global scope (node "${node}" through its overlay address) comes with state 5 (global network node), which is not implemented yet; use the local scope`,
    );
    this.name = 'GlobalScopeNotImplemented';
  }
}

type ShellStatus = NodeStatus & { hostKeys?: string[] };

/** Resolves a node to the address, pinned host keys and segment worker a shell call uses. */
export function resolveTarget(node: NodeResource, scope: ShellScope = 'local'): LocalTarget {
  const name = node.metadata.name;
  if (scope === 'global') throw new GlobalScopeNotImplemented(name);
  const st = (node.status ?? {}) as ShellStatus;
  const host = st.addresses?.[0];
  if (!host) throw new Error(`node "${name}" has no known address yet`);
  if (!st.hostKeys?.length)
    throw new Error(`node "${name}" reported no host key: refusing to trust an unknown host`);
  const network = node.spec.network ?? st.discovered?.network;
  if (!network) throw new Error(`node "${name}" names no network to reach it through (spec.network)`);
  return {
    scope: 'local',
    node: name,
    network,
    host,
    port: 22,
    hostKeys: st.hostKeys,
    runSubject: subjects.run(network),
    openSubject: subjects.open(network),
  };
}
