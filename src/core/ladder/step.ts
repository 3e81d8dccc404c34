/**
 * A step moves a node from state `from` to `from + 1`. Layers register steps; the engine never knows what a
 * step does. Every step is idempotent: `check` measures whether the node already is in `from + 1`, and only
 * then is `action` skipped — so a restart mid-step re-checks instead of blindly redoing.
 */

import type { EventHub } from '../events.ts';
import type { NodeResource } from '../kinds/node.ts';
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
  /** Dotted name on timelines: `hardware.power`, `boot.firmware`, `install.os`. */
  name: string;
  from: number;
  description: string;
  /** Several steps may share `from`; the first that applies to the node (its providers) runs. */
  appliesTo?(node: NodeResource): boolean;
  check(ctx: StepContext): Promise<boolean>;
  action(ctx: StepContext): Promise<StepOutcome>;
  /** Moves the node from `from + 1` back to `from` (lowered target, deletion). Absent: nothing to undo. */
  undo?(ctx: StepContext): Promise<void>;
  /** Longest an action may run before it counts as failed. Default 10 minutes. */
  timeoutMs?: number;
}

export type { Resource };
