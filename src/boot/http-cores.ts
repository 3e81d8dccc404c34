/**
 * The segment's HTTP server on every core. Node serves HTTP on one core per process, so `count` processes
 * (http-core.ts) listen on the worker's address and port with SO_REUSEPORT and the kernel spreads the
 * connections over them. The worker itself then only decides: it does not take connections once they all
 * listen (see serveHttp), because a process waiting on the worker for a script would otherwise wait behind
 * the worker's own HTTP work — measured, that made 2 processes slower than 1 for scripts (BENCHMARKS.md).
 * Whichever process takes a connection, the answer is the same: what needs no decision (artifacts,
 * refusals, 404s) each answers itself with the same handler; what needs the worker goes to the worker — a
 * script decision and every fetch summary (for the Node's timeline and /metrics) over the IPC channel,
 * batched per event-loop turn, and whole requests under the worker's own prefixes (/registry/, the
 * installer's relays) proxied over a unix socket in a directory only this user can enter, with the
 * client's address in a header the processes set themselves.
 * The processes live exactly as long as the worker: each exits when its IPC channel closes, however the
 * worker ended (stopped, crashed, killed with -9), so none is ever left holding the segment's port.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ListenOptions } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endChild, processCount } from '../core/child.ts';
import type { Logger } from '../core/log.ts';
import type { BootScriptResolver, BootScriptResult, FetchSummary } from '../ipxe/http.ts';

/** Response header naming the process that took the connection: 1…, or 0 for the worker itself. */
export const PROCESS_HEADER = 'strata-http-process';
/** Request header carrying the client's address on a proxied request (set by the process, never passed). */
export const CLIENT_HEADER = 'strata-client-address';

/** Worker → process. */
export type ToCore =
  | {
      t: 'start';
      index: number;
      artifacts: string;
      host: string;
      port: number;
      /** The worker's unix socket for proxied requests. */
      socket: string;
      /** Paths the worker answers itself (proxied whole). */
      prefixes: string[];
    }
  | { t: 'prefixes'; prefixes: string[] }
  | { t: 'scripts'; list: { id: number; result?: BootScriptResult; error?: string }[] };

/** Process → worker. */
export type FromCore =
  /** Listening for messages: only now is `start` sure to be heard. */
  | { t: 'hello' }
  | { t: 'ready' }
  | { t: 'failed'; message: string }
  | { t: 'scripts'; list: { id: number; mac: string; remoteAddress: string; query: string }[] }
  | { t: 'fetches'; list: FetchSummary[] };

/**
 * Collects items and passes them on as one list at the end of this turn of the event loop: under load a
 * turn handles many requests, and one IPC message per request would cost as much as the request itself.
 */
export function batcher<T>(flush: (items: T[]) => void): (item: T) => void {
  let items: T[] = [];
  return (item) => {
    if (!items.length)
      setImmediate(() => {
        const out = items;
        items = [];
        flush(out);
      });
    items.push(item);
  };
}

/**
 * How many processes serve a segment's HTTP: spec.boot.httpProcesses, else STRATA_BOOT_HTTP_PROCESSES,
 * else one per core (at most 8).
 */
export function httpProcessCount(boot: { httpProcesses?: number | undefined }, env = process.env): number {
  return processCount(boot.httpProcesses, 'STRATA_BOOT_HTTP_PROCESSES', env);
}

export interface HttpCoresOptions {
  /** Processes to start. */
  count: number;
  artifacts: string;
  host: string;
  port: number;
  /** Paths the worker answers itself: the processes proxy them here. */
  prefixes: string[];
  resolveScript: BootScriptResolver;
  /** A request another process answered. */
  onFetch(f: FetchSummary): void;
  /** Answers a proxied request; `remote` is the client's address. */
  route(req: IncomingMessage, res: ServerResponse, remote: string): void;
  /** How many processes listen now: called on every change. */
  onServing(listening: number): void;
  log: Logger;
}

export interface HttpCores {
  /** Resolves once every process first started listens (or gave up). */
  readonly ready: Promise<void>;
  setPrefixes(prefixes: string[]): void;
  stop(): Promise<void>;
}

const CORE_MAIN = join(import.meta.dirname, 'http-core.ts');

/** How long a process of the HTTP server keeps an idle connection to the worker for the next request. */
export const IDLE_MS = 10_000;

export async function startHttpCores(o: HttpCoresOptions): Promise<HttpCores> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-http-'));
  const socket = join(dir, 'worker.sock');
  const inner = createServer((req, res) => o.route(req, res, String(req.headers[CLIENT_HEADER] ?? '')));
  // The processes' agents drop an idle connection after IDLE_MS (http-core.ts); this side keeps it far
  // longer, so a process never sends a request down a connection this side is closing. With Node's
  // default (5 s here, none on the agent), a busy storm saw report-ins fail with 503 "boot worker
  // unavailable": the process reused a connection whose close it had not read yet.
  inner.keepAliveTimeout = IDLE_MS * 6;
  try {
    await listen(inner, { path: socket });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let prefixes = o.prefixes;
  let stopping = false;
  const children = new Set<ChildProcess>();
  const listening = new Set<ChildProcess>();
  const timers = new Set<NodeJS.Timeout>();
  const starting: Promise<void>[] = [];

  const send = (c: ChildProcess, m: ToCore) => {
    if (c.connected) c.send(m, undefined, undefined, () => {});
  };
  const onMessage = (
    c: ChildProcess,
    index: number,
    m: FromCore,
    started: () => void,
    answer: (a: Extract<ToCore, { t: 'scripts' }>['list'][number]) => void,
  ) => {
    switch (m.t) {
      case 'hello':
        return send(c, {
          t: 'start',
          index,
          artifacts: o.artifacts,
          host: o.host,
          port: o.port,
          socket,
          prefixes,
        });
      case 'ready':
        o.log.debug('boot HTTP process listening', { index, pid: c.pid });
        listening.add(c);
        o.onServing(listening.size);
        return started();
      case 'failed':
        o.log.warn('boot HTTP process cannot listen', { index, error: m.message });
        return started();
      case 'scripts':
        for (const q of m.list) {
          const params = new URLSearchParams(q.query);
          o.resolveScript({ mac: q.mac, remoteAddress: q.remoteAddress, params }).then(
            (result) => answer({ id: q.id, result }),
            (err: unknown) => answer({ id: q.id, error: err instanceof Error ? err.message : String(err) }),
          );
        }
        return;
      case 'fetches':
        for (const f of m.list) o.onFetch(f);
        return;
    }
  };
  const launch = (index: number, failures: number): Promise<void> => {
    const { promise, resolve } = Promise.withResolvers<void>();
    // execArgv: [] — a test runner's or profiler's flags are the worker's, not these processes'.
    const c = fork(CORE_MAIN, [], { execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const at = Date.now();
    children.add(c);
    const answer = batcher<Extract<ToCore, { t: 'scripts' }>['list'][number]>((list) =>
      send(c, { t: 'scripts', list }),
    );
    c.on('message', (m: FromCore) => onMessage(c, index, m, resolve, answer));
    c.on('error', (err) => o.log.warn('boot HTTP process', { index, err }));
    c.once('exit', (code, signal) => {
      children.delete(c);
      if (listening.delete(c) && !stopping) o.onServing(listening.size);
      resolve();
      if (stopping) return;
      const next = Date.now() - at > 60_000 ? 0 : failures + 1;
      const inMs = Math.min(30_000, 500 * 2 ** next);
      o.log.warn('boot HTTP process exited; restarting', { index, code, signal, inMs });
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!stopping) void launch(index, next);
      }, inMs);
      timers.add(timer);
    });
    return promise;
  };
  for (let i = 1; i <= o.count; i++) starting.push(launch(i, 0));

  return {
    ready: Promise.all(starting).then(() => {}),
    setPrefixes(next) {
      prefixes = next;
      for (const c of children) send(c, { t: 'prefixes', prefixes });
    },
    async stop() {
      stopping = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all([...children].map(endChild));
      inner.closeAllConnections();
      await new Promise<void>((r) => inner.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The listen backlog of a unix socket that nginx or the HTTP processes connect to. A full backlog refuses
 * the connect, which nginx answers with a 502: a 5,000-machine storm got 136 of them on report-ins with
 * Node's default of 511 (the likely cause; nginx's log was not read). The kernel caps it at
 * net.core.somaxconn (4096 here).
 */
export const UPSTREAM_BACKLOG = 4096;

/** Listens (a unix socket with UPSTREAM_BACKLOG unless `opts` names one); rejects on the server's error. */
export function listen(server: Server, opts: ListenOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.path ? { backlog: UPSTREAM_BACKLOG, ...opts } : opts, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
