/**
 * A layer plugs into the platform: it may register kinds (on import), implement ladder steps (named in the
 * ladder table, src/ladder.ts) and add API routes, run a manager (decides, records) in the control plane
 * and workers (do) for the roles it serves. The platform starts the managers in `strata up`/`strata
 * manager` and the workers in `strata up`/`strata worker`, so the same code runs in one process or split
 * across machines over NATS. Workers get no store: they reach the control plane only over the transport,
 * so a worker-only process opens no database and cannot keep state nobody reads.
 */
import type { Router } from './http.ts';
import type { NodeStatus } from './kinds/node.ts';
import type { LadderEngine } from './ladder/engine.ts';
import type { CoreServices, Step } from './ladder/step.ts';
import type { Logger } from './log.ts';
import type { Transport } from './transport/types.ts';

export interface Stoppable {
  stop(): Promise<void> | void;
}

export interface ManagerContext extends CoreServices {
  engine: LadderEngine;
  router: Router;
  dataDir: string;
  /** The loaded layers, for what one layer declares for another (reset hooks, boot's install handoff). */
  layers: readonly Layer[];
}

export interface WorkerContext {
  transport: Transport;
  log: Logger;
  /** For caches and artifacts on this machine, never for state the control plane needs. */
  dataDir: string;
  /** Identifies this worker on timelines, e.g. `sshkeys-worker@host`. */
  id: string;
}

export interface Layer {
  name: string;
  /** Worker roles this layer provides (`strata worker --roles ...`). */
  roles: string[];
  /** The steps this layer implements, each named in a row of the ladder table. */
  steps?: readonly Step[];
  /**
   * Providers this layer implements, per protocol (`{hardware: ['lab']}`). A node may ask only for one
   * of these: the schema accepts only what some loaded layer implements.
   */
  providers?: Record<string, string[]>;
  /**
   * Reprovisioning (a fresh OS on the node) drops this layer's section of the Node's status: what it
   * measured on the old install. The layer declares its section (`declare module` on NodeStatus, in its
   * own `status.ts`) and resets it here; whoever reprovisions calls every layer's hook.
   */
  resetStatus?(status: NodeStatus): NodeStatus;
  manager?(ctx: ManagerContext): Promise<Stoppable | undefined>;
  worker?(ctx: WorkerContext, role: string): Promise<Stoppable | undefined>;
}

/** A Node's status after a reprovision: every loaded layer's reset hook applied. */
export function resetForReprovision(layers: readonly Layer[], status: NodeStatus): NodeStatus {
  return layers.reduce((s, l) => l.resetStatus?.(s) ?? s, status);
}
