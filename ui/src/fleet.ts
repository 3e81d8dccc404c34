/**
 * The fleet as the UI holds it: every Node, kept current as `strata get nodes -w` keeps its table: list
 * (in pages of 1000), then follow the change stream from the list's resourceVersion, list again on
 * `relist` or after a reconnect without a resume point. Changes are applied to a Map at once but shown at
 * most once per animation frame, so a burst of thousands of changes costs one render, not thousands.
 */
import { matchesSelector, parseSelector } from '../../src/core/resources/selector.ts';
import { api, follow } from './api.ts';
import { type List, type NodeResource, statusOf } from './types.ts';

export type Health = 'failing' | 'waiting' | 'climbing' | 'at-target';

export function healthOf(n: NodeResource): Health {
  const st = statusOf(n);
  if (st.step?.lastError || st.phase === 'Failed') return 'failing';
  if ((st.state ?? 0) >= n.spec.targetState && !st.step) return 'at-target';
  if (st.phase === 'Waiting') return 'waiting';
  return 'climbing';
}

export const HEALTH_LABELS: Record<Health, string> = {
  failing: 'failing',
  waiting: 'waiting (for a person or the machine)',
  climbing: 'climbing',
  'at-target': 'at its target',
};

/**
 * A label selector, parsed and matched by the server's own code (src/core/resources/selector.ts), so the
 * page filters exactly as `strata get nodes -l` does; a bad selector gives the server's message.
 */
export function labelMatcher(selector: string): {
  match: (labels: Record<string, string> | undefined) => boolean;
  error?: string;
} {
  try {
    const sel = parseSelector(selector);
    return { match: (labels) => matchesSelector(labels, sel) };
  } catch (e) {
    return { match: () => true, error: (e as Error).message };
  }
}

/** The page is told of changes at most this often. */
const UPDATE_MS = 250;

const collator = new Intl.Collator(undefined, { numeric: true });

export class Fleet {
  readonly nodes = new Map<string, NodeResource>();
  /** Names in display order; sorted again only when a node comes or goes, not on every change. */
  #order: string[] = [];
  #orderStale = true;
  #sorted: NodeResource[] | undefined;
  live = false;
  loaded = false;
  error = '';
  #rv: string | undefined;
  #listeners = new Set<() => void>();
  #frame: ReturnType<typeof setTimeout> | 0 = 0;
  #last = 0;
  #abort = new AbortController();

  subscribe(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Every node in name order (natural: n2 before n10); the same array until something changes. */
  sorted(): NodeResource[] {
    if (this.#orderStale) {
      this.#order = [...this.nodes.keys()].sort(collator.compare);
      this.#orderStale = false;
    }
    this.#sorted ??= this.#order.map((n) => this.nodes.get(n)!);
    return this.#sorted;
  }

  /**
   * Tells the page, at most every UPDATE_MS and on an animation frame: a storm of changes (thousands of
   * nodes moving at once) then costs a few renders a second, and scrolling stays smooth meanwhile.
   */
  #changed(membership = false): void {
    this.#sorted = undefined;
    if (membership) this.#orderStale = true;
    if (this.#frame) return;
    const wait = Math.max(0, this.#last + UPDATE_MS - performance.now());
    this.#frame = setTimeout(() => {
      requestAnimationFrame(() => {
        this.#frame = 0;
        this.#last = performance.now();
        for (const fn of this.#listeners) fn();
      });
    }, wait);
  }

  async #list(): Promise<void> {
    const fresh = new Map<string, NodeResource>();
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const page: List<NodeResource> = await api(
        'GET',
        `/api/v1/nodes?limit=1000${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`,
      );
      rv ??= page.metadata.resourceVersion;
      for (const n of page.items) fresh.set(n.metadata.name, n);
      cont = page.metadata.continue;
    } while (cont);
    this.nodes.clear();
    for (const [k, v] of fresh) this.nodes.set(k, v);
    this.#rv = rv;
    this.loaded = true;
    this.#changed(true);
  }

  async start(): Promise<void> {
    try {
      await this.#list();
    } catch (e) {
      this.error = (e as Error).message;
      this.#changed();
      return;
    }
    await follow({
      signal: this.#abort.signal,
      path: () => `/api/v1/stream?kind=Node${this.#rv ? `&resourceVersion=${this.#rv}` : ''}`,
      onLive: (live) => {
        this.live = live;
        this.#changed();
      },
      onReconnect: async () => {
        if (!this.#rv) await this.#list();
      },
      onMessage: (m) => {
        if (m.event === 'relist') {
          this.#rv = undefined;
          void this.#list();
          return;
        }
        if (m.event !== 'change') return;
        const { type, object } = m.data as { type: string; object: NodeResource };
        if (m.id) this.#rv = m.id;
        const known = this.nodes.has(object.metadata.name);
        if (type === 'DELETED') this.nodes.delete(object.metadata.name);
        else this.nodes.set(object.metadata.name, object);
        this.#changed(known === (type === 'DELETED'));
      },
    }).catch((e: Error) => {
      this.error = e.message;
      this.#changed();
    });
  }

  stop(): void {
    this.#abort.abort();
    clearTimeout(this.#frame);
  }
}
