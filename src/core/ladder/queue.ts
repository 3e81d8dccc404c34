/**
 * A keyed work queue for reconcilers: a key queued twice runs once, a key being worked on is re-run after
 * (never twice at once), delayed re-queues keep only the earliest time, and at most `concurrency` keys run
 * together. This is what makes event-driven reconciliation cheap under bursts of events.
 */

export class WorkQueue {
  readonly #run: (key: string) => Promise<void>;
  readonly #concurrency: number;
  readonly #queued = new Set<string>();
  readonly #active = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  #stopped = false;
  #idle: (() => void)[] = [];

  constructor(run: (key: string) => Promise<void>, concurrency = 8) {
    this.#run = run;
    this.#concurrency = concurrency;
  }

  add(key: string): void {
    if (this.#stopped) return;
    if (this.#active.has(key)) {
      this.#dirty.add(key);
      return;
    }
    this.#queued.add(key);
    this.#pump();
  }

  addAfter(key: string, ms: number): void {
    if (this.#stopped) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const cur = this.#timers.get(key);
    if (cur && cur.at <= at) return;
    if (cur) clearTimeout(cur.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.#timers.set(key, { at, timer });
  }

  #pump(): void {
    for (const key of this.#queued) {
      if (this.#active.size >= this.#concurrency) return;
      this.#queued.delete(key);
      this.#active.add(key);
      // Each run starts on its own turn of the event loop: a burst of thousands of keys whose work
      // resolves without real I/O (SQLite is synchronous) must not starve the API of the loop.
      new Promise<void>((r) => setImmediate(r))
        .then(() => (this.#stopped ? undefined : this.#run(key)))
        .catch(() => {})
        .finally(() => {
          this.#active.delete(key);
          if (this.#dirty.delete(key)) this.#queued.add(key);
          this.#pump();
          if (!this.#active.size && !this.#queued.size) for (const f of this.#idle.splice(0)) f();
        });
    }
  }

  /** Resolves when nothing is running or queued (timers may still be pending). */
  whenIdle(): Promise<void> {
    if (!this.#active.size && !this.#queued.size) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t.timer);
    this.#timers.clear();
    this.#queued.clear();
  }
}

/** Exponential backoff with full jitter, capped: attempt 1 → up to base, attempt n → up to base·2^(n-1). */
export function backoffMs(attempt: number, baseMs = 1000, capMs = 300_000, random = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
