/**
 * The UI's client of the Strata API: the same routes and bearer token as the CLI. The token lives in
 * sessionStorage (gone when the tab closes, never in a cookie, so no request is made with it by anyone
 * but this page). The event stream is read with fetch, not EventSource, because EventSource cannot send
 * an Authorization header; `follow` parses Server-Sent Events itself and reconnects with backoff,
 * resuming from the last resourceVersion as `strata get -w` does.
 */

const TOKEN_KEY = 'strata.token';

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export interface FieldIssue {
  file?: string;
  resource: string;
  path: string;
  message: string;
}

/** A Status answer of the API (or a failed connection, status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly details: FieldIssue[];
  constructor(status: number, reason: string, message: string, details: FieldIssue[] = []) {
    super(message);
    this.status = status;
    this.reason = reason;
    this.details = details;
  }
}

/** Called on a 401, so the app can go back to the login page. */
let onUnauthorized: () => void = () => {};
export function whenUnauthorized(fn: () => void): void {
  onUnauthorized = fn;
}

function headers(extra: Record<string, string> = {}, token = getToken()): Record<string, string> {
  return { ...(token ? { authorization: `Bearer ${token}` } : {}), accept: 'application/json', ...extra };
}

async function failure(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const s = JSON.parse(text) as { reason?: string; message?: string; details?: unknown };
    const details = Array.isArray(s.details) ? (s.details as FieldIssue[]) : [];
    return new ApiError(res.status, s.reason ?? res.statusText, s.message ?? text, details);
  } catch {
    return new ApiError(res.status, res.statusText, text || res.statusText);
  }
}

export async function api<T>(
  method: string,
  path: string,
  body?: unknown,
  opts: { contentType?: string; token?: string } = {},
): Promise<T> {
  let res: Response;
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  try {
    res = await fetch(path, {
      method,
      headers: headers(
        payload !== undefined ? { 'content-type': opts.contentType ?? 'application/json' } : {},
        opts.token ?? getToken(),
      ),
      ...(payload !== undefined ? { body: payload } : {}),
    });
  } catch (e) {
    throw new ApiError(0, 'Unreachable', `the server did not answer: ${(e as Error).message}`);
  }
  if (!res.ok) {
    const err = await failure(res);
    if (res.status === 401 && !opts.token) onUnauthorized();
    throw err;
  }
  return (await res.json()) as T;
}

export interface StreamMessage {
  event: string;
  id?: string;
  data: unknown;
}

/** Reads one SSE response to its end, calling `on` for every message. */
async function readStream(res: Response, on: (m: StreamMessage) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let event = 'message';
  let id: string | undefined;
  let data: string[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    // Lines are cut from a moving start and the rest kept once per chunk: slicing the buffer after every
    // line would copy a chunk of a thousand changes a thousand times.
    let start = 0;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n', start)) {
      const line = buf.slice(start, nl).replace(/\r$/, '');
      start = nl + 1;
      if (line === '') {
        if (data.length) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(data.join('\n'));
          } catch {
            parsed = data.join('\n');
          }
          on({ event, ...(id !== undefined ? { id } : {}), data: parsed });
        }
        event = 'message';
        id = undefined;
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const v = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = v;
      else if (field === 'data') data.push(v);
      else if (field === 'id') id = v;
    }
    buf = buf.slice(start);
  }
}

export interface FollowOptions {
  /** The stream path, asked again before every (re)connect so it carries the resume point. */
  path: () => string;
  onMessage: (m: StreamMessage) => void;
  /** Connected (true) or lost (false), for the page's live indicator. */
  onLive?: (live: boolean) => void;
  /** Before a reconnect (e.g. list again when there is no resume point). */
  onReconnect?: () => Promise<void>;
  signal: AbortSignal;
}

/** Follows a stream until aborted, reconnecting with backoff (250 ms doubling to 5 s). */
export async function follow(o: FollowOptions): Promise<void> {
  let delay = 250;
  let lost = false;
  while (!o.signal.aborted) {
    try {
      if (lost) await o.onReconnect?.();
      const res = await fetch(o.path(), {
        headers: headers({ accept: 'text/event-stream' }),
        signal: o.signal,
      });
      if (res.status === 401) {
        onUnauthorized();
        return;
      }
      if (!res.ok) throw await failure(res);
      o.onLive?.(true);
      lost = false;
      delay = 250;
      await readStream(res, o.onMessage);
    } catch (e) {
      if (o.signal.aborted) return;
      if (e instanceof ApiError && e.status >= 400 && e.status < 500) throw e;
    }
    lost = true;
    o.onLive?.(false);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 5000);
  }
}
