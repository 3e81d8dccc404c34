/**
 * The shapes the UI reads from the API, taken from the server's own definitions (type-only imports,
 * erased from the bundle), so the UI cannot drift from what the API answers.
 */
import type { LadderInfo } from '../../src/api/ladder.ts';
import type { NetworkHealth } from '../../src/boot/health.ts';
import type { NodeResource, NodeStatus } from '../../src/core/kinds/node.ts';
import type { Condition, Resource, StrataEvent } from '../../src/core/resources/types.ts';
import type { WorkOrder } from '../../src/hardware/index.ts';

export type { Condition, NetworkHealth, NodeResource, Resource, WorkOrder };
export type TimelineEvent = StrataEvent;
export type Ladder = LadderInfo;

/** What the node page reads of the sections other layers add to a node's status. */
export interface NodeExtras {
  boot?: { firmwareArch?: string };
  overlay?: { address?: string; overlay?: string; provider?: string };
}

export type Status = Partial<NodeStatus> & NodeExtras;

/** A node's status with every field optional (a node nothing measured yet has none). */
export function statusOf(n: NodeResource): Status {
  return (n.status ?? {}) as Status;
}

export interface List<T> {
  metadata: { resourceVersion: string; continue?: string };
  items: T[];
}
