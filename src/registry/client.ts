/**
 * An HTTP client of the registry protocol (see protocol.ts), used by the CLI against the global registry
 * and by a site's local registry to pull through. Bodies stream both ways, so artifacts of any size pass
 * without being held in memory. Errors carry the server's status so a caller can tell "not there" (404)
 * from "registry away" (no answer, 5xx).
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { blobPath, DIGEST_HEADER, type GcReport, refPath } from './protocol.ts';
import type { ArtifactRef } from './store.ts';

export class RegistryHttpError extends Error {
  /** HTTP status, or 0 when the registry did not answer. */
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

export interface RegistryClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:7420/api/v1/registry`. */
  url: string;
  token?: string | undefined;
  /** Per-request timeout for metadata calls (blob transfers are bounded by `transferTimeoutMs`). */
  timeoutMs?: number;
  transferTimeoutMs?: number;
  /** The fetch to use (the CLI's, which carries its context's TLS trust); the global one when absent. */
  fetch?: typeof fetch;
}

export class RegistryClient {
  readonly url: string;
  readonly #token: string | undefined;
  readonly #timeout: number;
  readonly #transferTimeout: number;
  readonly #fetchImpl: typeof fetch;

  constructor(o: RegistryClientOptions) {
    this.url = o.url.replace(/\/$/, '');
    this.#token = o.token;
    this.#timeout = o.timeoutMs ?? 30_000;
    this.#transferTimeout = o.transferTimeoutMs ?? 60 * 60_000;
    this.#fetchImpl = o.fetch ?? fetch;
  }

  async #fetch(
    method: string,
    path: string,
    init: RequestInit = {},
    timeout = this.#timeout,
  ): Promise<Response> {
    let res: Response;
    try {
      res = await this.#fetchImpl(this.url + path, {
        ...init,
        method,
        headers: {
          ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
          ...(init.headers as Record<string, string> | undefined),
        },
        signal: AbortSignal.timeout(timeout),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      throw new RegistryHttpError(0, 'Unreachable', `cannot reach the registry at ${this.url} (${cause})`);
    }
    if (!res.ok) {
      const text = method === 'HEAD' ? '' : await res.text().catch(() => '');
      let st: { reason?: string; message?: string } = {};
      try {
        st = JSON.parse(text) as typeof st;
      } catch {
        st = { message: text.trim() };
      }
      throw new RegistryHttpError(
        res.status,
        st.reason ?? String(res.status),
        `registry ${this.url}: ${method} ${path}: ${st.message || res.statusText} (${res.status})`,
      );
    }
    return res;
  }

  async #json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.#fetch(
      method,
      path,
      body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } },
    );
    return (await res.json()) as T;
  }

  async listRefs(): Promise<ArtifactRef[]> {
    return (await this.#json<{ items: ArtifactRef[] }>('GET', '/refs')).items;
  }

  getRef(name: string, version: string): Promise<ArtifactRef> {
    return this.#json('GET', refPath(name, version));
  }

  /** The blob's size, or undefined when the registry does not have it. */
  async statBlob(digest: string): Promise<number | undefined> {
    try {
      const res = await this.#fetch('HEAD', blobPath(digest));
      return Number(res.headers.get('content-length') ?? 0);
    } catch (e) {
      if (e instanceof RegistryHttpError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** The blob's bytes as the server sent them (the caller verifies them against the digest). */
  async openBlob(digest: string): Promise<{ size: number; stream: Readable }> {
    const res = await this.#fetch('GET', blobPath(digest), {}, this.#transferTimeout);
    if (res.headers.get(DIGEST_HEADER) && res.headers.get(DIGEST_HEADER) !== digest) {
      await res.body?.cancel();
      throw new RegistryHttpError(
        502,
        'BadGateway',
        `registry ${this.url} answered ${digest} with another blob`,
      );
    }
    return {
      size: Number(res.headers.get('content-length') ?? 0),
      stream: Readable.from(res.body as WebReadableStream<Uint8Array>, { objectMode: false }),
    };
  }

  /** Uploads a blob; the server hashes it and refuses it when it does not match `digest`. */
  async pushBlob(digest: string, body: Readable, size: number): Promise<{ digest: string; size: number }> {
    const res = await this.#fetch(
      'PUT',
      blobPath(digest),
      {
        body: Readable.toWeb(body) as ReadableStream,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
        duplex: 'half',
      } as RequestInit,
      this.#transferTimeout,
    );
    return (await res.json()) as { digest: string; size: number };
  }

  tag(
    name: string,
    version: string,
    body: { digest: string; mediaType?: string; createdAt?: string },
  ): Promise<ArtifactRef> {
    return this.#json('PUT', refPath(name, version), body);
  }

  async deleteRef(name: string, version: string): Promise<void> {
    await this.#fetch('DELETE', refPath(name, version));
  }

  gc(minAge: string): Promise<GcReport> {
    return this.#json('POST', `/gc?minAge=${encodeURIComponent(minAge)}`);
  }
}
