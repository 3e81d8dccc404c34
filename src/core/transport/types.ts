/**
 * The seam between managers (decide, record) and workers (do). Two implementations share it: in-process
 * for the embedded default, and NATS (core request/reply for quick calls, JetStream for durable work, so a
 * worker that restarts picks up where it stopped).
 *
 * Subjects are dot-separated (`work.sshkeys`, `events.node`); a role is the last part of a work subject.
 */

export interface RequestOptions {
  /** Milliseconds before the request fails with a timeout error. Default 10 s. */
  timeout?: number;
}

export interface Subscription {
  unsubscribe(): Promise<void>;
}

/** A unit of durable work. `id` makes enqueueing idempotent (a duplicate id is dropped while pending). */
export interface Job<T = unknown> {
  id: string;
  data: T;
  /** Delivery count, starting at 1. */
  attempt: number;
}

export interface ConsumeOptions {
  /** Jobs a consumer works on at once. Default 4. */
  concurrency?: number;
  /** Redelivered after this long without an ack (worker died mid-job). Default 30 s. */
  ackWaitMs?: number;
  /** Gives up after this many deliveries. Default 10. */
  maxDeliver?: number;
}

export interface Transport {
  readonly name: 'inproc' | 'nats' | 'pipe';
  /** Request/reply: one handler in the queue group answers. Rejects when nobody answers in time. */
  request<Req, Res>(subject: string, data: Req, opts?: RequestOptions): Promise<Res>;
  /** Serves requests on a subject; several servers share the load (queue group). */
  serve<Req, Res>(subject: string, handler: (data: Req) => Promise<Res>): Promise<Subscription>;
  /** Fire-and-forget fan-out (worker reports, events). Every subscriber gets a copy. */
  publish<T>(subject: string, data: T): Promise<void>;
  subscribe<T>(subject: string, handler: (data: T, subject: string) => void): Promise<Subscription>;
  /** Durable work: kept until a consumer acks it (the handler resolves). */
  enqueue<T>(queue: string, id: string, data: T): Promise<void>;
  /** At-least-once: a handler that throws or dies gets the job again later. */
  consume<T>(
    queue: string,
    handler: (job: Job<T>) => Promise<void>,
    opts?: ConsumeOptions,
  ): Promise<Subscription>;
  close(): Promise<void>;
}

/** Matches NATS-style subjects: `*` one token, `>` the rest. */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}
