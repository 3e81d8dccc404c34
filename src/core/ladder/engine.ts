/**
 * The ladder engine: the Node manager. For each node it compares `spec.targetState` with the measured
 * `status.state` and takes one step at a time — check, then act, with retries (exponential backoff and
 * jitter) and every transition on the node's timeline. Which step moves a node into which state comes from
 * the ladder table it is given (see table.ts): a state without steps is a named gap, shown as such. Lowering the target or deleting the node walks back
 * down through the steps' `undo`. Work is driven by changes and timeline events, plus a periodic resync,
 * through a bounded keyed queue.
 */
import { isDeepStrictEqual } from 'node:util';
import { LADDER_FINALIZER, type NodeResource, type NodeStatus, type StepStatus } from '../kinds/node.ts';
import { counter, gauge, histogram } from '../metrics.ts';
import { backoffMs, WorkQueue } from './queue.ts';
import type { CoreServices, Step, StepContext } from './step.ts';
import { chooseStep, highestImplementedState, type LadderTable, rowFor, stepNames } from './table.ts';

export { highestImplementedState, LADDER_FINALIZER };

const SOURCE = 'ladder-manager';

/** How long a step's action runs before the node's status shows it running (see #stepUp). */
const SHOW_RUNNING_MS = 250;

/**
 * A timeline event wakes its node this much later, so the events of one moment (a lease, a TFTP transfer
 * starting and ending, a script and its artifacts: ~10 a machine in a boot storm) wake it once. Each wake
 * reads and decodes the Node; at 5,000 machines that was 4.6 s of the manager's CPU.
 */
const EVENT_SETTLE_MS = 250;

const stepRuns = counter('strata_step_actions_total', 'Step actions run', ['step', 'result']);
const stepDuration = histogram(
  'strata_step_duration_seconds',
  'Time from step start to completion',
  ['step'],
  [0.1, 1, 5, 15, 30, 60, 120, 300, 600, 1800],
);
const nodesByState = gauge('strata_nodes', 'Nodes by observed state', ['state']);

export interface EngineOptions {
  concurrency?: number;
  resyncMs?: number;
  /** How long a waiting step sleeps before re-checking when no event wakes it. */
  waitRecheckMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
}

/** The ladder the engine walks: the table (which step, per state and provider) and the steps' code. */
export interface LadderDefinition {
  table: LadderTable;
  steps: readonly Step[];
}

export class LadderEngine {
  readonly #core: CoreServices;
  readonly #table: LadderTable;
  readonly #steps = new Map<string, Step>();
  readonly #queue: WorkQueue;
  readonly #opts: Required<EngineOptions>;
  #resync: NodeJS.Timeout | undefined;
  readonly #unsubs: (() => void)[] = [];
  readonly #seen = new Map<string, string>();

  constructor(core: CoreServices, ladder: LadderDefinition, opts: EngineOptions = {}) {
    this.#core = core;
    this.#table = ladder.table;
    const named = stepNames(ladder.table);
    for (const step of ladder.steps) {
      if (!named.has(step.name))
        throw new Error(`step "${step.name}" is in no row of the ladder table: add it to src/ladder.ts`);
      if (this.#steps.has(step.name)) throw new Error(`step "${step.name}" is implemented twice`);
      this.#steps.set(step.name, step);
    }
    this.#opts = {
      concurrency: opts.concurrency ?? 8,
      resyncMs: opts.resyncMs ?? 30_000,
      waitRecheckMs: opts.waitRecheckMs ?? 15_000,
      backoffBaseMs: opts.backoffBaseMs ?? 1000,
      backoffCapMs: opts.backoffCapMs ?? 300_000,
    };
    this.#queue = new WorkQueue((name) => this.reconcile(name), this.#opts.concurrency);
  }

  get table(): LadderTable {
    return this.#table;
  }

  /** The highest state that has steps: a target above it cannot be reached yet. */
  highestImplementedState(): number {
    return highestImplementedState(this.#table);
  }

  /** The step that moves `node` from `from` to `from + 1` per the table, or why there is none. */
  stepFor(node: NodeResource, from: number): Step | { blocked: string } {
    const choice = chooseStep(this.#table, node, from + 1);
    if (choice.kind !== 'step') return { blocked: choice.why };
    return (
      this.#steps.get(choice.name) ?? {
        blocked: `step ${choice.name} (into state ${from + 1}) is not loaded: its layer does not run in this manager`,
      }
    );
  }

  #stateName(state: number): string {
    return rowFor(this.#table, state)?.name ?? `state ${state}`;
  }

  async start(): Promise<void> {
    this.#unsubs.push(
      this.#core.hub.onChange((ev) => {
        if (ev.object.kind !== 'Node') return;
        const name = ev.object.metadata.name;
        if (ev.type === 'DELETED') return void this.#seen.delete(name);
        // Only what the user changed (spec, deletion) wakes the node; its own status writes do not.
        const m = ev.object.metadata;
        const key = `${m.generation}|${m.deletionTimestamp ?? ''}`;
        if (this.#seen.get(name) === key) return;
        this.#seen.set(name, key);
        this.#queue.add(name);
      }),
      this.#core.hub.onEvent((ev) => {
        if (ev.kind === 'Node' && ev.source !== SOURCE) this.#queue.addAfter(ev.name, EVENT_SETTLE_MS);
      }),
    );
    await this.resync();
    this.#resync = setInterval(() => void this.resync(), this.#opts.resyncMs);
    this.#resync.unref();
  }

  async resync(): Promise<void> {
    const nodes = await this.#core.resources.list<NodeResource>('Node');
    const counts = new Array(10).fill(0);
    for (const n of nodes) {
      counts[n.status?.state ?? 0]++;
      this.#queue.add(n.metadata.name);
    }
    for (const [s, c] of counts.entries()) nodesByState.set({ state: String(s) }, c);
  }

  /** Asks for a node to be looked at again now (e.g. a worker reported something). */
  poke(name: string): void {
    this.#queue.add(name);
  }

  whenIdle(): Promise<void> {
    return this.#queue.whenIdle();
  }

  stop(): void {
    clearInterval(this.#resync);
    this.#queue.stop();
    for (const u of this.#unsubs.splice(0)) u();
  }

  #ctx(node: NodeResource, step: Step, signal: AbortSignal): StepContext {
    const core = this.#core;
    return {
      ...core,
      node,
      step,
      signal,
      record: (reason, message, data, type = 'Normal') =>
        core.hub.record({
          kind: 'Node',
          name: node.metadata.name,
          step: step.name,
          source: SOURCE,
          reason,
          message,
          type,
          ...(data ? { data } : {}),
        }),
    };
  }

  #event(
    node: NodeResource,
    reason: string,
    message: string,
    step?: string,
    data?: Record<string, unknown>,
    warn = false,
  ) {
    this.#core.hub.record({
      kind: 'Node',
      name: node.metadata.name,
      source: SOURCE,
      reason,
      message,
      type: warn ? 'Warning' : 'Normal',
      ...(step ? { step } : {}),
      ...(data ? { data } : {}),
    });
  }

  /**
   * Writes the node's status through `fn`, unless that changes nothing. `seen`: the status this pass read;
   * when `fn` changes nothing of it, not even the store is read (a waiting step re-checked on every
   * timeline event of its node, several a machine in a boot storm, writes nothing). Only the engine
   * writes the fields its `fn`s set (state, phase, step), one pass per node at a time, so `seen` is current
   * for them.
   */
  async #setStatus(
    name: string,
    fn: (s: NodeStatus) => NodeStatus | undefined,
    seen?: NodeStatus,
  ): Promise<void> {
    const change = (s: NodeStatus) => {
      const next = fn({ ...s, state: s.state ?? 0 });
      // Unchanged status is not written: no write, no change event, no wake-up loop.
      return next && !isDeepStrictEqual(JSON.parse(JSON.stringify(next)), s) ? next : undefined;
    };
    if (seen && !change(structuredClone(seen))) return;
    await this.#core.resources.patchStatus<NodeStatus>('Node', name, change);
  }

  /** One pass over one node: at most one step forward or back, then re-queue as needed. */
  async reconcile(name: string): Promise<void> {
    const node = await this.#core.resources.get<NodeResource>('Node', name);
    if (!node) return;
    const deleting = Boolean(node.metadata.deletionTimestamp);
    const target = deleting ? 0 : node.spec.targetState;
    const state = node.status?.state ?? 0;

    if (state === target) {
      if (deleting) {
        this.#event(node, 'Deleted', 'node is back at state 0; removing it');
        await this.#core.hub.flush();
        await this.#core.resources.removeFinalizer('Node', name, LADDER_FINALIZER);
        return;
      }
      const phase = state <= 1 && node.status?.discovered ? 'Discovered' : 'Ready';
      if (node.status?.phase !== phase || node.status?.step) {
        await this.#setStatus(name, ({ step: _s, ...s }) => ({ ...s, phase }));
        if (phase === 'Ready')
          this.#event(
            node,
            'TargetReached',
            `node is at its target state ${state} (${this.#stateName(state)})`,
          );
      }
      return;
    }
    if (state > target) return this.#stepDown(node, state);
    return this.#stepUp(node, state);
  }

  async #stepUp(node: NodeResource, state: number): Promise<void> {
    const name = node.metadata.name;
    const step = this.stepFor(node, state);
    if ('blocked' in step) {
      const why = step.blocked;
      if (node.status?.phase !== 'Blocked' || node.status.step?.message !== why) {
        await this.#setStatus(name, (s) => ({
          ...s,
          phase: 'Blocked',
          step: { name: '-', from: state, startedAt: now(), attempts: 0, message: why },
        }));
        const gap = why.includes('not implemented yet');
        this.#event(node, gap ? 'NotImplemented' : 'Blocked', why, undefined, undefined, true);
      }
      return;
    }
    const prev =
      node.status?.step?.name === step.name && node.status.step.from === state ? node.status.step : undefined;
    const ac = new AbortController();
    const ctx = this.#ctx(node, step, ac.signal);

    let inNext = false;
    try {
      inNext = await step.check(ctx);
    } catch (err) {
      return this.#failed(node, step, retried(prev), state, `check failed: ${message(err)}`);
    }
    if (inNext) {
      const started = prev ? Date.parse(prev.startedAt) : Date.now();
      const secs = (Date.now() - started) / 1000;
      stepDuration.observe({ step: step.name }, secs);
      await this.#setStatus(name, ({ step: _s, ...s }) => ({
        ...s,
        state: state + 1,
        phase: state + 1 === node.spec.targetState ? 'Ready' : 'Provisioning',
      }));
      this.#event(
        node,
        'StepCompleted',
        `state ${state} → ${state + 1} (${this.#stateName(state + 1)}) in ${secs.toFixed(1)} s`,
        step.name,
        {
          from: state,
          to: state + 1,
          durationSeconds: Number(secs.toFixed(3)),
        },
      );
      if (state + 1 === node.spec.targetState)
        this.#event(
          node,
          'TargetReached',
          `node is at its target state ${state + 1} (${this.#stateName(state + 1)})`,
        );
      this.#queue.add(name);
      return;
    }
    if (prev?.nextAttemptAt && Date.parse(prev.nextAttemptAt) > Date.now()) {
      this.#queue.addAfter(name, Date.parse(prev.nextAttemptAt) - Date.now());
      return;
    }
    const attempts = (prev?.attempts ?? 0) + 1;
    const startedAt = prev?.startedAt ?? now();
    if (!prev)
      this.#event(node, 'StepStarted', `${step.description} (state ${state} → ${state + 1})`, step.name);
    // Re-checking a step that is waiting (for the machine, an install's next report, a peer) is not new
    // progress: the node stays Waiting, so a watcher sees a row when something changes, not two per
    // re-check (an install under TCG re-checks hundreds of times).
    const recheck = node.status?.phase === 'Waiting' && prev?.name === step.name && prev.attempts === 0;
    // The step in progress is written once its action has run SHOW_RUNNING_MS: an action that answers
    // sooner (every step that waits for the machine does) writes only its outcome, one status write
    // instead of two, each a store write and a change event (a boot storm made two per step per machine).
    /** The node at this step, Provisioning, with `more` in its step status. */
    const provisioning = (more: Partial<StepStatus>) => (s: NodeStatus) => ({
      ...s,
      phase: 'Provisioning' as const,
      step: { name: step.name, from: state, startedAt, attempts, ...more },
    });
    let shown: Promise<void> | undefined;
    const show = recheck
      ? undefined
      : setTimeout(() => {
          const more = prev?.lastError ? { lastError: prev.lastError } : {};
          shown = this.#setStatus(name, provisioning(more)).catch(() => {});
        }, SHOW_RUNNING_MS);
    const settled = async () => {
      clearTimeout(show);
      await shown;
    };
    try {
      const outcome = await withTimeout(step.action(ctx), step.timeoutMs ?? 600_000, ac).finally(settled);
      stepRuns.inc({ step: step.name, result: outcome.status });
      if (outcome.status === 'done') {
        await this.#setStatus(
          name,
          provisioning({ attempts: 0, ...(outcome.message ? { message: outcome.message } : {}) }),
        );
        this.#queue.add(name);
      } else {
        const changed = prev?.message !== outcome.message;
        await this.#setStatus(
          name,
          (s) => ({
            ...s,
            phase: 'Waiting',
            step: { name: step.name, from: state, startedAt, attempts: 0, message: outcome.message },
          }),
          recheck ? node.status : undefined,
        );
        if (changed) this.#event(node, 'Waiting', outcome.message, step.name);
        this.#queue.addAfter(name, outcome.recheckAfterMs ?? this.#opts.waitRecheckMs);
      }
    } catch (err) {
      stepRuns.inc({ step: step.name, result: 'error' });
      await this.#failed(
        node,
        step,
        { name: step.name, from: state, startedAt, attempts },
        state,
        message(err),
      );
    }
  }

  async #failed(
    node: NodeResource,
    step: Step,
    prev: StepStatus | undefined,
    state: number,
    error: string,
  ): Promise<void> {
    const attempts = Math.max(1, prev?.attempts ?? 1);
    const delay = backoffMs(attempts, this.#opts.backoffBaseMs, this.#opts.backoffCapMs);
    const next = new Date(Date.now() + delay).toISOString();
    await this.#setStatus(node.metadata.name, (s) => ({
      ...s,
      phase: 'Failed',
      step: {
        name: step.name,
        from: state,
        startedAt: prev?.startedAt ?? now(),
        attempts,
        lastError: error,
        nextAttemptAt: next,
      },
    }));
    this.#event(
      node,
      'StepFailed',
      `${error} (attempt ${attempts}; retrying in ${(delay / 1000).toFixed(1)} s)`,
      step.name,
      { attempts, retryInMs: delay },
      true,
    );
    this.#queue.addAfter(node.metadata.name, delay);
  }

  async #stepDown(node: NodeResource, state: number): Promise<void> {
    const found = this.stepFor(node, state - 1);
    const step = 'blocked' in found ? undefined : found;
    const name = node.metadata.name;
    if (step?.undo) {
      const ac = new AbortController();
      try {
        this.#event(node, 'UndoStarted', `undoing ${step.name} (state ${state} → ${state - 1})`, step.name);
        await withTimeout(step.undo(this.#ctx(node, step, ac.signal)), step.timeoutMs ?? 600_000, ac);
      } catch (err) {
        return this.#failed(node, step, retried(node.status?.step), state, `undo failed: ${message(err)}`);
      }
    } else {
      this.#event(
        node,
        'StateLowered',
        `state ${state} → ${state - 1}: step ${step?.name ?? '(none)'} has nothing to undo, what it made stays in place`,
        step?.name,
      );
    }
    await this.#setStatus(name, ({ step: _s, ...s }) => ({
      ...s,
      state: state - 1,
      phase: 'Deprovisioning',
    }));
    this.#event(
      node,
      'StepUndone',
      `state ${state} → ${state - 1} (${this.#stateName(state - 1)})`,
      step?.name,
    );
    this.#queue.add(name);
  }
}

/** The step status of one more failed try: a check or undo that keeps failing backs off further each time. */
function retried(prev: StepStatus | undefined): StepStatus | undefined {
  return prev && { ...prev, attempts: prev.attempts + 1 };
}

function now(): string {
  return new Date().toISOString();
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function withTimeout<T>(p: Promise<T>, ms: number, ac: AbortController): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => {
          ac.abort();
          rej(new Error(`timed out after ${Math.round(ms / 1000)} s`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
