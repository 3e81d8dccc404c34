/**
 * What every BMC call goes through, whatever the protocol: a per-BMC concurrency limit (BMCs are small
 * embedded controllers that answer slowly and fall over under parallel sessions), a timeout on each
 * attempt, retries with exponential backoff for failures that may pass (unreachable, timeout, 5xx) but
 * never for ones that will not (bad credentials, a certificate that does not match its pin, 4xx), and a
 * log of every call with its duration for the node's timeline. Errors are typed with a condition-style
 * reason, so the step and the API can say what went wrong without a stack trace.
 */
import type { BmcCall, HardwareError } from './protocol.ts';

export class BmcError extends Error {
  readonly status: HardwareError['status'];
  readonly reason: string;
  /** Worth another attempt (the BMC was busy, unreachable or slow). */
  readonly transient: boolean;
  constructor(status: HardwareError['status'], reason: string, message: string, transient = false) {
    super(message);
    this.status = status;
    this.reason = reason;
    this.transient = transient;
  }
  toJSON(): HardwareError {
    return { status: this.status, reason: this.reason, message: this.message };
  }
}

export interface CallPolicy {
  /** Per attempt. Default 20 s. */
  timeoutMs: number;
  /** Attempts in all, the first included. Default 3. */
  attempts: number;
  /** First backoff; doubled each retry. Default 500 ms. */
  backoffMs: number;
  /** Calls at once to one BMC. Default 2. */
  concurrency: number;
}

export const DEFAULT_POLICY: CallPolicy = { timeoutMs: 20_000, attempts: 3, backoffMs: 500, concurrency: 2 };

/** A FIFO semaphore per BMC address. */
class Gate {
  #active = 0;
  #waiting: (() => void)[] = [];
  async run<T>(limit: number, fn: () => Promise<T>): Promise<T> {
    if (this.#active >= limit) await new Promise<void>((r) => this.#waiting.push(r));
    else this.#active++;
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    }
  }
}
const gates = new Map<string, Gate>();

/** Calls against one BMC, recorded in order. */
export class BmcSession {
  readonly calls: BmcCall[] = [];
  readonly #key: string;
  readonly #policy: CallPolicy;
  constructor(key: string, policy: Partial<CallPolicy> = {}) {
    this.#key = key;
    this.#policy = { ...DEFAULT_POLICY, ...policy };
  }

  get timeoutMs(): number {
    return this.#policy.timeoutMs;
  }

  /**
   * Runs `fn` (one attempt, given an abort signal that fires at the timeout) under the BMC's gate, retrying
   * transient BmcErrors with backoff. `label` names the call on the timeline; `fn` returns a status to log.
   */
  async call<T>(
    label: string,
    fn: (signal: AbortSignal) => Promise<{ value: T; status?: number }>,
  ): Promise<T> {
    const gate = gates.get(this.#key) ?? new Gate();
    gates.set(this.#key, gate);
    const p = this.#policy;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      const signal = AbortSignal.timeout(p.timeoutMs);
      try {
        const r = await gate.run(p.concurrency, () => fn(signal));
        this.calls.push({
          call: label,
          ms: Math.round(performance.now() - started),
          attempt,
          ...(r.status !== undefined ? { status: r.status } : {}),
        });
        return r.value;
      } catch (err) {
        const e =
          err instanceof BmcError
            ? err
            : signal.aborted
              ? new BmcError(504, 'BmcTimeout', `${label}: no answer within ${p.timeoutMs} ms`, true)
              : new BmcError(502, 'BmcError', `${label}: ${(err as Error).message}`, true);
        this.calls.push({
          call: label,
          ms: Math.round(performance.now() - started),
          attempt,
          error: e.message,
        });
        if (!e.transient || attempt >= p.attempts) throw e;
        await new Promise((r) => setTimeout(r, p.backoffMs * 2 ** (attempt - 1)));
      }
    }
  }
}
