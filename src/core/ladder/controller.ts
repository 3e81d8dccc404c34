/**
 * The one way to write a control loop: `controller(core, {kind, reconcile, resyncMs})` calls `reconcile(name)`
 * for every object of `kind` that changed (deleted ones included, so it can clean up), again for all of them
 * every `resyncMs`, and again with growing backoff when it throws. It runs on the ladder engine's keyed work
 * queue, so a burst of changes to one object runs it once, never twice at once, and a change during a run
 * runs it once more after. A change to an object of a kind in `resyncOn` (e.g. a Node whose labels move it
 * into or out of an Overlay) reconciles every object of `kind` within RESYNC_ON_MS instead of at the next
 * resync: a burst of such changes (10,000 Nodes stepping up) is one list of `kind`, not one per change.
 * Managers of new states copy this instead of `onChange` plus a `setInterval`.
 */
import type { EventHub } from '../events.ts';
import type { Logger } from '../log.ts';
import type { ResourceService } from '../resources/service.ts';
import { backoffMs, WorkQueue } from './queue.ts';

/** Changes to `resyncOn` kinds within this long are answered by one resync. */
export const RESYNC_ON_MS = 50;

export interface ControllerSpec {
  /** The resource kind it owns, e.g. `SSHKey`. */
  kind: string;
  /** Makes the world match object `name` (absent: it was deleted). Throwing retries it with backoff. */
  reconcile(name: string): Promise<void>;
  /** Every object is reconciled again this often, changed or not. Default 30 s. */
  resyncMs?: number;
  /** Kinds whose changes reconcile every object of `kind` (objects that select them, e.g. `['Node']`). */
  resyncOn?: readonly string[];
  concurrency?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
}

export interface Controller {
  /** Reconciles every object once, then follows changes and resyncs. */
  start(): Promise<void>;
  /** Asks for `name` to be reconciled (e.g. a worker reported on it). */
  enqueue(name: string): void;
  /** Resolves when nothing runs or waits in the queue (retries on a timer may be pending). */
  whenIdle(): Promise<void>;
  stop(): void;
}

export function controller(
  core: { hub: EventHub; resources: ResourceService; log: Logger },
  spec: ControllerSpec,
): Controller {
  const failures = new Map<string, number>();
  const queue = new WorkQueue(async (name) => {
    try {
      await spec.reconcile(name);
      failures.delete(name);
    } catch (err) {
      const attempt = (failures.get(name) ?? 0) + 1;
      failures.set(name, attempt);
      const delay = backoffMs(attempt, spec.backoffBaseMs ?? 1000, spec.backoffCapMs ?? 300_000);
      core.log.warn('reconcile failed; retrying', { kind: spec.kind, name, attempt, inMs: delay, err });
      queue.addAfter(name, delay);
    }
  }, spec.concurrency ?? 4);
  let off: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;

  const resync = async () => {
    for (const o of await core.resources.list(spec.kind)) queue.add(o.metadata.name);
  };
  const resyncLogged = () =>
    void resync().catch((err) => core.log.warn('resync failed', { kind: spec.kind, err }));
  let soon: NodeJS.Timeout | undefined;
  const resyncSoon = () => {
    soon ??= setTimeout(() => {
      soon = undefined;
      resyncLogged();
    }, RESYNC_ON_MS);
  };
  return {
    async start() {
      off = core.hub.onChange((ev) => {
        if (ev.object.kind === spec.kind) queue.add(ev.object.metadata.name);
        else if (spec.resyncOn?.includes(ev.object.kind)) resyncSoon();
      });
      await resync();
      timer = setInterval(resyncLogged, spec.resyncMs ?? 30_000);
      timer.unref();
    },
    enqueue: (name) => queue.add(name),
    whenIdle: () => queue.whenIdle(),
    stop() {
      off?.();
      clearInterval(timer);
      clearTimeout(soon);
      queue.stop();
    },
  };
}
