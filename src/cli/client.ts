/**
 * The CLI's API client. Errors from the server become `CliError`s carrying the server's reason, so the CLI
 * prints `Error from server (NotFound): ...` and exits non-zero like kubectl.
 */
import { readLocalToken } from '../api/auth.ts';

export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

export interface ClientOptions {
  server?: string;
  token?: string;
  dataDir?: string;
}

export class ApiClient {
  readonly server: string;
  readonly #token: string | undefined;

  constructor(opts: ClientOptions) {
    this.server = (opts.server ?? process.env.STRATA_SERVER ?? 'http://127.0.0.1:7420').replace(/\/$/, '');
    this.#token =
      opts.token ??
      process.env.STRATA_TOKEN ??
      readLocalToken(opts.dataDir ?? process.env.STRATA_DATA_DIR ?? '.strata');
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}), ...extra };
  }

  async request<T = unknown>(
    method: string,
    path: string,
    body?: string,
    contentType = 'application/json',
    timeoutMs = 60_000,
  ): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.server + path, {
        method,
        headers: this.headers(body !== undefined ? { 'content-type': contentType } : {}),
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      throw new CliError(
        `cannot reach the Strata API at ${this.server} (${cause}): is "strata up" running? (--server / STRATA_SERVER)`,
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      json = { message: text };
    }
    if (!res.ok) {
      const st = json as { reason?: string; message?: string };
      throw new CliError(`Error from server (${st.reason ?? res.status}): ${st.message ?? res.statusText}`);
    }
    return json as T;
  }

  /** Server-Sent Events as an async stream of {event, data}. */
  async *stream(path: string, signal?: AbortSignal): AsyncGenerator<{ event: string; data: string }> {
    const res = await fetch(this.server + path, {
      headers: this.headers({ accept: 'text/event-stream' }),
      ...(signal ? { signal } : {}),
    });
    if (!res.ok || !res.body)
      throw new CliError(`Error from server (${res.status}): cannot open the event stream`);
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true });
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (data.length) yield { event, data: data.join('\n') };
      }
    }
  }
}
