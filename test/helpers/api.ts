/**
 * The real API in-process for contract tests: `startPlatform` as `strata up` runs it (every layer's
 * manager and routes, the ladder engine, a real store and HTTP on a free port) but without workers, so no
 * DHCP or VM starts. Plus a raw HTTP caller and a Server-Sent Events reader, as a client author would
 * write them. Everything is stopped and removed in the suite's `after`.
 */

import { randomBytes } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Layer } from '../../src/core/layer.ts';
import { setLogLevel } from '../../src/core/log.ts';
import { type Platform, startPlatform } from '../../src/platform.ts';
import type { Cleanup } from './services.ts';
import { httpCall, tempDir } from './strata.ts';

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed body; undefined when it is not JSON. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read reply fields directly and assert on them
  json: any;
}

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** An open event stream: the events so far, a wait for a condition, and a close. */
export interface SseStream {
  events: SseEvent[];
  /** Resolves once `pred` holds over the events received so far (or rejects after `timeoutMs`). */
  until(pred: (events: SseEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
  close(): void;
}

export interface TestApi {
  platform: Platform;
  dataDir: string;
  url: string;
  token: string;
  call(
    method: string,
    path: string,
    body?: unknown,
    opts?: { token?: string | null; contentType?: string; headers?: Record<string, string> },
  ): Promise<Reply>;
  stream(path: string, headers?: Record<string, string>): Promise<SseStream>;
}

export async function startApi(
  t: Cleanup,
  /** `sharesSecretsWith`: another manager on the same database needs the same secret key. */
  opts: { database?: string; changeLogKeep?: number; sharesSecretsWith?: TestApi; layers?: Layer[] } = {},
): Promise<TestApi> {
  setLogLevel('error');
  const token = `api-test-${randomBytes(8).toString('hex')}`;
  const dataDir = tempDir(t, 'strata-api-');
  if (opts.sharesSecretsWith)
    copyFileSync(join(opts.sharesSecretsWith.dataDir, 'secret.key'), join(dataDir, 'secret.key'));
  const platform = await startPlatform({
    dataDir,
    manager: true,
    roles: [],
    listen: '127.0.0.1:0',
    token,
    ...(opts.database ? { database: opts.database } : {}),
    ...(opts.changeLogKeep ? { store: { changeLogKeep: opts.changeLogKeep } } : {}),
    ...(opts.layers ? { layers: opts.layers } : {}),
  });
  const streams = new Set<AbortController>();
  t.after(async () => {
    for (const s of streams) s.abort();
    await platform.stop();
  });
  const url = `http://127.0.0.1:${platform.address!.port}`;
  return {
    platform,
    dataDir,
    url,
    token,
    call: (method, path, body, o = {}) =>
      httpCall(method, url + path, body, { ...o, token: o.token === undefined ? token : o.token }),
    async stream(path, headers = {}) {
      const ac = new AbortController();
      streams.add(ac);
      const res = await fetch(url + path, {
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...headers },
        signal: ac.signal,
      });
      if (res.status !== 200) throw new Error(`stream answered ${res.status}: ${await res.text()}`);
      const events: SseEvent[] = [];
      const waiters = new Set<() => void>();
      const ended = (async () => {
        const dec = new TextDecoder();
        let buf = '';
        try {
          for await (const chunk of res.body!) {
            buf += dec.decode(chunk as Uint8Array, { stream: true });
            let at = buf.indexOf('\n\n');
            while (at >= 0) {
              const block = buf.slice(0, at);
              buf = buf.slice(at + 2);
              at = buf.indexOf('\n\n');
              const ev: SseEvent = { event: 'message', data: '' };
              let data: string[] = [];
              for (const line of block.split('\n')) {
                if (line.startsWith(':')) continue;
                const i = line.indexOf(':');
                const field = i < 0 ? line : line.slice(0, i);
                const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
                if (field === 'id') ev.id = value;
                else if (field === 'event') ev.event = value;
                else if (field === 'data') data = [...data, value];
              }
              if (!data.length) continue;
              ev.data = data.join('\n');
              events.push(ev);
            }
            for (const w of [...waiters]) w();
          }
        } catch {
          // aborted by close()
        } finally {
          for (const w of [...waiters]) w();
        }
      })();
      let done = false;
      void ended.then(() => {
        done = true;
      });
      return {
        events,
        ended,
        close: () => ac.abort(),
        until: (pred, timeoutMs = 15_000) =>
          new Promise<void>((resolve, reject) => {
            const check = () => {
              if (pred(events)) {
                cleanup();
                resolve();
              } else if (done) {
                cleanup();
                reject(new Error(`stream ended before the condition held; got ${events.length} events`));
              }
            };
            const timer = setTimeout(() => {
              cleanup();
              reject(new Error(`timed out after ${timeoutMs} ms; got ${events.length} events`));
            }, timeoutMs);
            const cleanup = () => {
              clearTimeout(timer);
              waiters.delete(check);
            };
            waiters.add(check);
            check();
          }),
      };
    },
  };
}
