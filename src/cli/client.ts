/**
 * The CLI's API client. Every failure is turned into a `CliError` that names its real cause, because the
 * raw failure rarely does: a refused connection says which server and where that address came from; a
 * 401 says where the CLI looked for a token and how to fix it; anything that is not a Strata answer (an
 * HTML page, some other JSON) is "not a Strata API at URL", never the page itself. Errors the server does
 * send keep kubectl's form, `Error from server (NotFound): ...`, with the server's text made terminal-safe.
 */
import type { Resource } from '../core/resources/types.ts';
import type { Connection } from './config.ts';
import { ApiUnreachableError, CliError } from './errors.ts';
import { safeText, safeValue } from './safe.ts';
import { fetchFor, tlsError, tlsFailure } from './tls.ts';

export { CliError };

export interface StreamMessage {
  event: string;
  data: string;
  id?: string;
}

export interface ListResult {
  items: Resource[];
  resourceVersion?: string;
}

export class ApiClient {
  readonly server: string;
  readonly conn: Connection;

  readonly #fetch: typeof fetch;

  constructor(conn: Connection) {
    this.conn = conn;
    this.server = conn.server;
    this.#fetch = fetchFor(conn.server, conn.tls);
  }

  /** A failed connection: a refused certificate explained as such, anything else as unreachable. */
  async connectError(e: unknown): Promise<CliError> {
    const tls = tlsFailure(e);
    if (!tls) return this.unreachable(e);
    const where = this.conn.context
      ? `context "${this.conn.context}" in ${this.conn.configFile}`
      : 'no context';
    return tlsError(this.server, tls, this.conn.tls, where);
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.conn.token ? { authorization: `Bearer ${this.conn.token}` } : {}), ...extra };
  }

  /** Why a connection failed, in words, with where the address came from. */
  unreachable(e: unknown): CliError {
    const err = e as { name?: string; cause?: { code?: string; message?: string }; message?: string };
    const code = err.cause?.code ?? '';
    const why =
      code === 'ECONNREFUSED'
        ? 'connection refused'
        : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
          ? 'unknown host'
          : err.name === 'TimeoutError'
            ? 'no answer in time'
            : code === 'ECONNRESET' || code === 'UND_ERR_SOCKET'
              ? 'the connection was reset'
              : (err.cause?.message ?? err.message ?? String(e));
    return new ApiUnreachableError(
      `error: cannot connect to the Strata API at ${this.server}: ${why}.\n` +
        `The address came from ${this.conn.serverSource}. Is "strata up" running there? ` +
        `(change it with --server HOST:PORT, STRATA_SERVER or strata config use-context NAME)`,
    );
  }

  /** `what` answered something that is not the Strata API. */
  notStrata(what: string, res: Response, text: string): CliError {
    const type = (res.headers.get('content-type') ?? 'no content type').split(';')[0];
    const title = /<title>([^<]{1,80})<\/title>/i.exec(text)?.[1]?.trim();
    return new CliError(
      `error: not a Strata API at ${this.server}: ${what} answered HTTP ${res.status} ${type}` +
        `${title ? ` ("${safeValue(title)}")` : ''}.\n` +
        `The address came from ${this.conn.serverSource}; point the CLI at a Strata server with --server HOST:PORT, ` +
        `STRATA_SERVER or strata config use-context NAME.`,
    );
  }

  unauthorized(message: string): CliError {
    const lines = [`Error from server (Unauthorized): ${safeText(message)}`];
    if (this.conn.tokenSource) {
      lines.push(
        `The server at ${this.server} refused the token from ${this.conn.tokenSource}.`,
        `Fix: strata login ${this.server} --token TOKEN (checks it and saves it in a context), or pass the right one with --token / STRATA_TOKEN.`,
      );
    } else {
      lines.push(
        `No token was found for ${this.server}. Looked in: ${this.conn.lookedIn.join('; ')}.`,
        `Fix: strata login ${this.server} --token TOKEN, or --token / STRATA_TOKEN (strata up prints the admin token once and keeps it in its data directory).`,
      );
    }
    return new CliError(lines.join('\n'));
  }

  async request<T = unknown>(
    method: string,
    path: string,
    body?: string,
    contentType = 'application/json',
    timeoutMs = 60_000,
  ): Promise<T> {
    let res: Response;
    let text: string;
    try {
      res = await this.#fetch(this.server + path, {
        method,
        headers: this.headers(body !== undefined ? { 'content-type': contentType } : {}),
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await res.text();
    } catch (e) {
      throw await this.connectError(e);
    }
    const what = `${method} ${path.split('?')[0]}`;
    if (!/^application\/(.+\+)?json\b/.test(res.headers.get('content-type') ?? ''))
      throw this.notStrata(what, res, text);
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw this.notStrata(what, res, text);
    }
    if (!res.ok) {
      const st = (json ?? {}) as { kind?: string; reason?: string; message?: string };
      if (typeof st.message !== 'string' || (st.kind !== 'Status' && typeof st.reason !== 'string'))
        throw this.notStrata(what, res, text);
      if (res.status === 401) throw this.unauthorized(st.message);
      throw new CliError(
        `Error from server (${safeValue(st.reason ?? res.status)}): ${safeText(st.message)}`,
      );
    }
    if (json === null || typeof json !== 'object') throw this.notStrata(what, res, text);
    return json as T;
  }

  /**
   * A list of one kind, checked to be one (an unrelated JSON API is reported as not Strata), following
   * `continue` tokens to the last page. The resourceVersion is the first page's: watching from it may
   * replay a change a later page already showed, which the watch drops, but never misses one.
   */
  async list(plural: string, selector?: string): Promise<ListResult> {
    const items: Resource[] = [];
    let rv: string | undefined;
    let token: string | undefined;
    for (let page = 0; ; page++) {
      const q = new URLSearchParams();
      if (selector) q.set('labelSelector', selector);
      if (token) q.set('continue', token);
      const qs = q.toString();
      const out = await this.request<{
        items?: unknown;
        metadata?: { resourceVersion?: unknown; continue?: unknown };
      }>('GET', `/api/v1/${plural}${qs ? `?${qs}` : ''}`);
      if (!Array.isArray(out.items)) {
        throw new CliError(
          `error: not a Strata API at ${this.server}: GET /api/v1/${plural} answered JSON without "items" (the address came from ${this.conn.serverSource})`,
        );
      }
      items.push(...(out.items as Resource[]));
      if (page === 0 && out.metadata?.resourceVersion !== undefined)
        rv = String(out.metadata.resourceVersion);
      token =
        typeof out.metadata?.continue === 'string' && out.metadata.continue
          ? out.metadata.continue
          : undefined;
      if (!token) break;
    }
    return { items, ...(rv ? { resourceVersion: rv } : {}) };
  }

  get(plural: string, name: string): Promise<Resource> {
    return this.request<Resource>('GET', `/api/v1/${plural}/${encodeURIComponent(name)}`);
  }

  /**
   * Server-Sent Events as an async stream of {event, data, id}. Opening failures throw like `request`;
   * the stream simply ends (or throws) when the server goes away: reconnecting is the caller's policy.
   */
  async *stream(path: string, signal?: AbortSignal, onOpen?: () => void): AsyncGenerator<StreamMessage> {
    let res: Response;
    try {
      res = await this.#fetch(this.server + path, {
        headers: this.headers({ accept: 'text/event-stream' }),
        ...(signal ? { signal } : {}),
      });
    } catch (e) {
      throw await this.connectError(e);
    }
    if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream') || !res.body) {
      const text = await res.text().catch(() => '');
      let st: { reason?: string; message?: string } | undefined;
      try {
        st = JSON.parse(text);
      } catch {
        st = undefined;
      }
      if (!st?.message) throw this.notStrata(`GET ${path.split('?')[0]}`, res, text);
      if (res.status === 401) throw this.unauthorized(st.message);
      throw new CliError(
        `Error from server (${safeValue(st.reason ?? res.status)}): ${safeText(st.message)}`,
      );
    }
    onOpen?.();
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true });
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = 'message';
        let id: string | undefined;
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          else if (line.startsWith('id:')) id = line.slice(3).trim();
        }
        if (data.length) yield { event, data: data.join('\n'), ...(id ? { id } : {}) };
      }
    }
  }
}
