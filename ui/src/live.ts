/**
 * Pages that show something the store keeps outside the resources (work orders, a segment's health) and
 * so has no change stream of its own: they load it, then load it again when the event stream says it
 * moved (a timeline event or a resource change the page names), and after a reconnect, when messages may
 * have been missed. Reloads in a burst are folded into one, a short moment after the burst.
 */
import { useEffect } from 'preact/hooks';
import { follow, type StreamMessage } from './api.ts';

/** A burst of messages (a work order confirmed: its event, the node's climb) costs one reload. */
const SETTLE_MS = 150;

export function useReloadOnStream(
  load: () => Promise<void>,
  o: {
    /** The stream's query, like `kind=Node&only=timeline`. */
    query: string;
    when: (m: StreamMessage) => boolean;
    onError: (message: string) => void;
  },
): void {
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const soon = () => {
      clearTimeout(timer);
      timer = setTimeout(() => void load(), SETTLE_MS);
    };
    void load();
    void follow({
      signal: abort.signal,
      path: () => `/api/v1/stream?${o.query}`,
      onReconnect: load,
      onMessage: (m) => {
        if (o.when(m)) soon();
      },
    }).catch((e: Error) => o.onError(e.message));
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, []);
}
