/**
 * Long-lived streams for `get -w` and `events --follow`, with the reconnect policy users expect from
 * kubectl: when the server goes away (a restart), say so on stderr, retry with backoff, say when the stream
 * is back and resume from where it was; after `giveUpMs` without a server, say so and exit non-zero.
 * `get -w` lists, then watches from the list's resourceVersion (and lists again on a `relist` event or
 * after a reconnect to a server that gives no resourceVersion); changes already shown are not shown twice.
 */
import { matchesSelector, parseSelector } from '../core/resources/selector.ts';
import type { Resource } from '../core/resources/types.ts';
import type { ApiClient, StreamMessage } from './client.ts';
import { ApiUnreachableError, CliError } from './errors.ts';

export interface FollowOptions {
  /** Give up after this long without a server. */
  giveUpMs: number;
  /** The stream path, asked again before every (re)connect so it can carry the resume point. */
  path: () => string;
  onMessage: (m: StreamMessage) => void | Promise<void>;
  /** Runs after a reconnect, before the new stream is read (e.g. list again). */
  onReconnect?: () => Promise<void>;
  signal?: AbortSignal;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True for failures that a server restart explains (refused, reset, ended); false for 401s and the like. */
function isConnectionLoss(e: unknown): boolean {
  if (e instanceof CliError) return e instanceof ApiUnreachableError;
  return true;
}

/** Follows a stream until aborted; throws a CliError when it gives up. */
export async function follow(c: ApiClient, o: FollowOptions): Promise<void> {
  let downSince: number | undefined;
  let lastError = '';
  let delay = 250;
  for (;;) {
    try {
      const wasDown = downSince !== undefined;
      if (wasDown) await o.onReconnect?.();
      const opened = () => {
        if (downSince === undefined) return;
        process.stderr.write(`reconnected to ${c.server}\n`);
        downSince = undefined;
        delay = 250;
      };
      for await (const m of c.stream(o.path(), o.signal, opened)) await o.onMessage(m);
      if (o.signal?.aborted) return;
      lastError = 'the server closed the stream';
    } catch (e) {
      if (o.signal?.aborted) return;
      if (!isConnectionLoss(e)) throw e;
      lastError = e instanceof CliError ? (e.message.split('\n')[0] ?? '') : (e as Error).message;
    }
    const now = Date.now();
    if (downSince === undefined) {
      downSince = now;
      process.stderr.write(
        `lost the connection to ${c.server} (${lastError.replace(/^error: /, '')}); reconnecting for up to ${Math.round(o.giveUpMs / 1000)}s\n`,
      );
    } else if (now - downSince >= o.giveUpMs) {
      throw new CliError(
        `error: gave up after ${Math.round((now - downSince) / 1000)}s without the server at ${c.server}: ${lastError.replace(/^error: /, '')}`,
      );
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 2000);
  }
}

export interface WatchOptions {
  plural: string;
  kind: string;
  name?: string;
  selector?: string;
  giveUpMs: number;
  /** Called for every object to show: the initial list, then each change not seen yet. */
  print: (r: Resource, type: 'LIST' | 'ADDED' | 'MODIFIED' | 'DELETED') => void;
  /** Called with the initial list (to print it as a table with its header). */
  printList: (items: Resource[]) => void;
  signal?: AbortSignal;
}

/** `get -w`: list, then watch from the list's resourceVersion, relisting when the server says so. */
export async function watchResources(c: ApiClient, o: WatchOptions): Promise<void> {
  // Watch events are filtered as the server filters lists: with the core's own selector.
  const terms = o.selector ? parseSelector(o.selector) : [];
  const seen = new Map<string, string | undefined>();
  let rv: string | undefined;
  const wanted = (r: Resource) =>
    (!o.name || r.metadata.name === o.name) && matchesSelector(r.metadata.labels, terms);

  const list = async (first: boolean) => {
    const out = await c.list(o.plural, o.selector);
    rv = out.resourceVersion;
    const items = out.items.filter(wanted);
    // A named watch of something that does not exist fails as a get of it does.
    if (first && o.name && !items.length) await c.get(o.plural, o.name);
    if (first) o.printList(items);
    else
      for (const r of items)
        if (seen.get(r.metadata.name) !== r.metadata.resourceVersion) o.print(r, 'MODIFIED');
    for (const r of items) seen.set(r.metadata.name, r.metadata.resourceVersion);
  };
  await list(true);

  await follow(c, {
    giveUpMs: o.giveUpMs,
    ...(o.signal ? { signal: o.signal } : {}),
    path: () =>
      `/api/v1/stream?kind=${encodeURIComponent(o.kind)}${o.name ? `&name=${encodeURIComponent(o.name)}` : ''}${rv ? `&resourceVersion=${encodeURIComponent(rv)}` : ''}`,
    // Without a resume point the changes made while away are unknown: list again.
    onReconnect: async () => {
      if (!rv) await list(false);
    },
    onMessage: async (m) => {
      if (m.event === 'relist') {
        rv = undefined;
        await list(false);
        return;
      }
      if (m.event !== 'change') return;
      const ch = JSON.parse(m.data) as { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: Resource };
      if (m.id) rv = m.id;
      const r = ch.object;
      if (r.kind !== o.kind || !wanted(r)) return;
      const key = r.metadata.name;
      if (ch.type === 'DELETED') {
        seen.delete(key);
        o.print(r, 'DELETED');
        return;
      }
      if (seen.get(key) === r.metadata.resourceVersion) return;
      seen.set(key, r.metadata.resourceVersion);
      o.print(r, ch.type);
    },
  });
}
