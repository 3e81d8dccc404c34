/**
 * The overlay layer's section of a Node's status, declared here onto the core's NodeStatus: where Strata
 * reaches the node in global scope (the shell layer reads `overlay.address`), and the hook that drops it
 * when the node is reprovisioned, since the new OS has no tunnel yet.
 */
import type { NodeStatus } from '../core/kinds/node.ts';
import type { OverlayPlan } from './membership.ts';

/** The node's typed status section of this layer: where Strata reaches it in global scope. */
export interface NodeOverlayStatus {
  address: string;
  overlay: string;
  provider: OverlayPlan['provider'];
  joinedAt: string;
}

declare module '../core/kinds/node.ts' {
  /** The overlay layer's section of a Node's status. */
  interface NodeStatus {
    overlay?: NodeOverlayStatus;
  }
}

/** Reprovisioning: the overlay section goes with the old install. */
export function resetOverlayStatus({ overlay: _o, ...s }: NodeStatus): NodeStatus {
  return s;
}
