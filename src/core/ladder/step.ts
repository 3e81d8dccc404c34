/**
 * A step moves a node from one state to the next. The ladder table (`src/ladder.ts`) says which step, by
 * name, moves a node into which state for which provider; layers implement the steps and list them in
 * their `steps`. The engine never knows what a step does. Every step is idempotent: `check` measures
 * whether the node already is in the next state, and only then is `action` skipped — so a restart mid-step re-checks instead of blindly redoing.
 */

import type { EventHub } from '../events.ts';
import type { NodeResource, NodeStatus } from '../kinds/node.ts';
import type { Logger } from '../log.ts';
import type { ResourceService } from '../resources/service.ts';
import type { Resource } from '../resources/types.ts';
import type { Store } from '../store/types.ts';
import type { Transport } from '../transport/types.ts';

/** What every manager and step can reach. */
export interface CoreServices {
  resources: ResourceService;
  hub: EventHub;
  store: Store;
  transport: Transport;
  log: Logger;
}

export interface StepContext extends CoreServices {
  node: NodeResource;
  step: Step;
  /** Records on the node's timeline under this step. */
  record(reason: string, message: string, data?: Record<string, unknown>, type?: 'Normal' | 'Warning'): void;
  signal: AbortSignal;
}

export type StepOutcome =
  /** The action did its part; the engine re-checks at once. */
  | { status: 'done'; message?: string }
  /** Something outside must happen (a firmware boot, a human); re-check later or on the node's next event. */
  | { status: 'waiting'; message: string; recheckAfterMs?: number };

export interface Step {
  /** Dotted name on timelines, a constant of `STEPS` in src/ladder.ts: `hardware.power`, `install.os`. */
  name: string;
  description: string;
  check(ctx: StepContext): Promise<boolean>;
  action(ctx: StepContext): Promise<StepOutcome>;
  /** Moves the node back down out of the state this step leads to (lowered target, deletion). Absent: nothing to undo. */
  undo?(ctx: StepContext): Promise<void>;
  /** Longest an action may run before it counts as failed. Default 10 minutes. */
  timeoutMs?: number;
}

export type { Resource };

/**
 * Sets a layer's section of the node's status (`status.overlay`, `status.cluster`) and records why on the
 * node's timeline with the section as the event's data: how a step's check notes what it measured.
 */
export async function setStatusSection<K extends keyof NodeStatus>(
  ctx: StepContext,
  section: K,
  value: NonNullable<NodeStatus[K]> & object,
  reason: string,
  message: string,
): Promise<void> {
  await ctx.resources.patchStatus<NodeStatus>('Node', ctx.node.metadata.name, (s) => ({
    ...s,
    [section]: value,
  }));
  ctx.record(reason, message, { ...value });
}
