/**
 * The event hub: resource changes (watch events) and timeline events fan out to in-process listeners (the
 * ladder engine, the API's live stream), and timeline events are persisted in batches so a chatty boot
 * (hundreds of DHCP and TFTP summaries) costs one transaction per flush, not one per event.
 */

import type { Logger } from './log.ts';
import { counter } from './metrics.ts';
import type { Resource, StrataEvent, WatchEvent, WatchEventType } from './resources/types.ts';
import type { EventQuery, Store } from './store/types.ts';
import { coreSubjects } from './wire.ts';

type Listener<T> = (v: T) => void;

/** Where workers in other processes send timeline events; the manager records them. */
export const EVENTS_SUBJECT = coreSubjects.events;

const eventsRecorded = counter('strata_events_recorded_total', 'Timeline events recorded', ['kind', 'type']);

export interface RecordInput {
  kind: string;
  name: string;
  reason: string;
  message: string;
  source: string;
  step?: string;
  type?: StrataEvent['type'];
  data?: Record<string, unknown>;
}

export class EventHub {
  readonly #store: Store;
  readonly #log: Logger;
  readonly #watchers = new Set<Listener<WatchEvent>>();
  readonly #listeners = new Set<Listener<StrataEvent>>();
  #pending: StrataEvent[] = [];
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #flushMs: number;

  constructor(store: Store, log: Logger, opts: { flushMs?: number } = {}) {
    this.#store = store;
    this.#log = log;
    this.#flushMs = opts.flushMs ?? 20;
  }

  /** Announces a committed resource change. */
  changed(type: WatchEventType, object: Resource): void {
    const ev = { type, object };
    for (const w of this.#watchers) safeCall(w, ev);
  }

  onChange(fn: Listener<WatchEvent>): () => void {
    this.#watchers.add(fn);
    return () => this.#watchers.delete(fn);
  }

  onEvent(fn: Listener<StrataEvent>): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Records a timeline event: fanned out now, persisted with the next batch. */
  record(input: RecordInput): StrataEvent {
    const ev: StrataEvent = { time: new Date().toISOString(), type: 'Normal', ...input };
    eventsRecorded.inc({ kind: ev.kind, type: ev.type });
    this.#pending.push(ev);
    if (!this.#timer) this.#timer = setTimeout(() => void this.flush(), this.#flushMs);
    return ev;
  }

  /**
   * A timeline as stored, with what this process recorded before the call written first: a client that
   * sees a node reach a state and then reads its timeline finds the step that got it there.
   */
  async list(q: EventQuery): Promise<StrataEvent[]> {
    await this.flush();
    return this.#store.listEvents(q);
  }

  /** Writes pending events; resolves when everything recorded so far is on disk. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#flushing) await this.#flushing;
    if (!this.#pending.length) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#flushing = this.#store
      .appendEvents(batch)
      .then(() => {
        for (const ev of batch) for (const l of this.#listeners) safeCall(l, ev);
      })
      .catch((err) => {
        this.#log.error('could not persist timeline events; they are kept for the next flush', { err });
        this.#pending.unshift(...batch);
      })
      .finally(() => {
        this.#flushing = undefined;
      });
    await this.#flushing;
  }
}

function safeCall<T>(fn: Listener<T>, v: T): void {
  try {
    fn(v);
  } catch {
    // One listener's failure does not stop the fan-out.
  }
}
