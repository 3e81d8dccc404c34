/**
 * Bounds on what the outside world can make Strata write. Unauthenticated protocols (DHCP, HTTP boot, the
 * installer's calls) reach the store through these: a keyed token bucket for rates (enrolments per network,
 * timeline rows per node), and one sanitiser for strings a packet or a request carried, so that what is
 * stored or printed has no control characters (terminal escapes, newlines) and a bounded length.
 */

export interface BucketOptions {
  /** Burst: how many may pass at once. */
  capacity: number;
  /** Refill rate. */
  perSecond: number;
  /** Keys remembered; the least recently used are forgotten past this. Default 10 000. */
  maxKeys?: number;
}

/** A token bucket per key. `take` is O(1); memory is bounded by `maxKeys`. */
export class KeyedBucket {
  readonly #o: Required<BucketOptions>;
  readonly #buckets = new Map<string, { tokens: number; at: number; dropped: number }>();

  constructor(o: BucketOptions) {
    this.#o = { maxKeys: 10_000, ...o };
  }

  /**
   * Takes one token for `key`. Returns false when the key is over its rate; when it passes after drops,
   * `dropped` says how many were refused since the last pass (for a "N more suppressed" note).
   */
  take(key: string, now = Date.now()): { ok: boolean; dropped: number } {
    let b = this.#buckets.get(key);
    if (b) this.#buckets.delete(key);
    else b = { tokens: this.#o.capacity, at: now, dropped: 0 };
    b.tokens = Math.min(this.#o.capacity, b.tokens + ((now - b.at) / 1000) * this.#o.perSecond);
    b.at = now;
    this.#buckets.set(key, b);
    if (this.#buckets.size > this.#o.maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
    if (b.tokens < 1) {
      b.dropped++;
      return { ok: false, dropped: b.dropped };
    }
    b.tokens -= 1;
    const dropped = b.dropped;
    b.dropped = 0;
    return { ok: true, dropped };
  }
}

// C0 controls, DEL, C1 controls, and the Unicode bidi overrides/isolates that reorder what a terminal shows.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A string from the wire made safe to store and print: control characters become `\xNN` (`\uNNNN`)
 * escapes, and it is cut to `max` characters (marked with `…`).
 */
export function cleanText(s: string, max = 256): string {
  const out = s.replace(CONTROL, (c) => {
    const n = c.charCodeAt(0);
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
  return out.length > max ? `${out.slice(0, max - 1)}…` : out;
}
