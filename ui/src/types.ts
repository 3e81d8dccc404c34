/**
 * The shapes the UI reads from the API, taken from the server's own definitions (type-only imports,
 * erased from the bundle), so the UI cannot drift from what the API answers.
 */
import type { LadderInfo } from '../../src/api/ladder.ts';
import type { NetworkHealth } from '../../src/boot/health.ts';
// Each layer declares its section of a node's status in its status.ts (module augmentation of NodeStatus):
// these type-only imports bring those sections into the UI's view of a node.
import type {} from '../../src/boot/status.ts';
import type { NodeResource, NodeStatus } from '../../src/core/kinds/node.ts';
import type { Condition, Resource, StrataEvent } from '../../src/core/resources/types.ts';
import type { WorkOrder } from '../../src/hardware/index.ts';
import type {} from '../../src/install/status.ts';
import type {} from '../../src/overlay/status.ts';

export type { Condition, NetworkHealth, NodeResource, Resource, WorkOrder };
export type TimelineEvent = StrataEvent;
export type Ladder = LadderInfo;

export type Status = Partial<NodeStatus>;

/** A node's status with every field optional (a node nothing measured yet has none). */
export function statusOf(n: NodeResource): Status {
  return (n.status ?? {}) as Status;
}

export interface List<T> {
  metadata: { resourceVersion: string; continue?: string };
  items: T[];
}
