/**
 * Pipe transport: a Transport over a byte-stream pair, bridged to a parent process's transport.
 *
 * Why: a boot worker (DHCP/DNS/TFTP/HTTP for one network segment) must run as a child process inside that
 * segment's network namespace (`ip netns exec NS node ...`), because Node's dgram cannot bind to an
 * interface. In the embedded default the manager uses the in-process transport, which cannot reach
 * another process, and loopback TCP (so a local NATS) does not cross network namespaces; the child's
 * stdin/stdout pipes (or a unix socket) do.
 *
 * - Child side: `new PipeTransport()` talks over `process.stdin`/`process.stdout`, so such a child must
 *   log to stderr only (`createLogger` does); a stray stdout line is dropped by the parent, not fatal.
 *   Every method is forwarded to the parent, which performs it on its own transport on the child's
 *   behalf: `serve`/`subscribe`/`consume` register proxies there that pass calls, messages and jobs down.
 *   A job is acked (the parent's handler resolves) only once the child's handler resolved; if it throws,
 *   or the child goes away mid-job, the parent's handler throws and the parent transport redelivers it.
 * - Parent side: `bridgePipe(parent, child.stdout, child.stdin)` serves one child. When the stream ends
 *   (child exited, crashed, or closed its transport) everything the child registered is unsubscribed and
 *   calls waiting on the child are rejected. A dying child never takes the parent down.
 * - Framing: one JSON object per line. A line is a call `{id, op, ...}`, its reply `{re, ok, data|error}`
 *   (a StrataError keeps status and reason, as over NATS), or a notification `{op, ...}` (no reply).
 *   Lines that are not such objects are dropped and counted (`strata_transport_pipe_malformed_total`).
 *   Writes are not flow-controlled: the traffic is control-plane sized, and a slow reader only buffers.
 *   The lines of one turn of the event loop go out in one write: a boot worker in a DHCP burst sends a
 *   report per exchange, and a write per line (a syscall each: stdout to a pipe writes synchronously)
 *   was most of its time after the replies themselves. A child's stdout is flushed at exit.
 * - For a unix socket, pass the socket as both `readable` and `writable`.
 */

import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createLogger, type Logger } from '../log.ts';
import { counter } from '../metrics.ts';
import { StrataError } from '../resources/errors.ts';
import type { ConsumeOptions, Job, RequestOptions, Subscription, Transport } from './types.ts';

/** A line longer than this (no newline in sight) is dropped, so a runaway peer cannot exhaust memory. */
const MAX_LINE = 64 * 1024 * 1024;

const malformed = counter(
  'strata_transport_pipe_malformed_total',
  'Lines on a pipe transport dropped because they were not a valid message',
  ['side'],
);

interface WireError {
  message: string;
  status?: number;
  reason?: string;
}

interface Msg {
  id?: number;
  re?: number;
  op?: string;
  ok?: boolean;
  data?: unknown;
  error?: WireError;
  [field: string]: unknown;
}

type Side = 'parent' | 'child';

function toWire(e: unknown): WireError {
  const w: WireError = { message: e instanceof Error ? e.message : String(e) };
  if (e instanceof StrataError) {
    w.status = e.status;
    w.reason = e.reason;
  }
  return w;
}

function fromWire(w: WireError | undefined): Error {
  const message = typeof w?.message === 'string' ? w.message : 'unknown error from the other end of the pipe';
  return typeof w?.status === 'number' && typeof w.reason === 'string'
    ? new StrataError(w.status, w.reason, message)
    : new Error(message);
}

/** One end of the pipe: framing, calls with replies, notifications. Shared by both sides. */
class Peer {
  readonly closed: Promise<void>;
  readonly #readable: Readable;
  readonly #writable: Writable;
  readonly #side: Side;
  readonly #handle: (m: Msg) => unknown;
  readonly #onEnd: (why: string) => void;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly #decoder = new StringDecoder('utf8');
  readonly #resolveClosed: () => void;
  #next = 1;
  #partial = '';
  #skipping = false;
  #ended = false;
  /** Lines waiting for the end of this turn of the event loop, written as one. */
  #out: string[] = [];
  #flushing = false;

  constructor(
    r: Readable,
    w: Writable,
    side: Side,
    handle: (m: Msg) => unknown,
    onEnd: (why: string) => void,
  ) {
    this.#readable = r;
    this.#writable = w;
    this.#side = side;
    this.#handle = handle;
    this.#onEnd = onEnd;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.closed = promise;
    this.#resolveClosed = resolve;
    r.on('data', (chunk: Buffer | string) => this.#onData(chunk));
    r.on('end', () => this.end('stream ended'));
    r.on('close', () => this.end('stream closed'));
    r.on('error', (e) => this.end(`read error: ${e.message}`));
    w.on('close', () => this.end('stream closed'));
    w.on('error', (e) => this.end(`write error: ${e.message}`));
    // stdout to a pipe writes synchronously: what a child said before process.exit() still reaches its parent.
    if (w === process.stdout) process.once('exit', () => this.#flush());
  }

  get isEnded(): boolean {
    return this.#ended;
  }

  call(
    op: string,
    fields: Record<string, unknown>,
    timeout?: { ms: number; message: string },
  ): Promise<unknown> {
    if (this.#ended) return Promise.reject(new Error(`pipe transport closed (${op})`));
    const id = this.#next++;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    let timer: NodeJS.Timeout | undefined;
    if (timeout) {
      timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(timeout.message));
      }, timeout.ms);
    }
    const settle =
      <A>(f: (a: A) => void) =>
      (a: A) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        f(a);
      };
    this.#pending.set(id, { resolve: settle(resolve), reject: settle(reject) });
    try {
      this.#send({ ...fields, id, op });
    } catch (e) {
      this.#pending.get(id)?.reject(e as Error);
    }
    return promise;
  }

  notify(op: string, fields: Record<string, unknown>): void {
    try {
      this.#send({ ...fields, op });
    } catch {
      // Not serializable: a notification has nobody to tell.
    }
  }

  /** Idempotent: rejects everything waiting on the other side and releases the streams. */
  end(why: string): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const p of this.#pending.values()) p.reject(new Error(`pipe transport closed: ${why}`));
    this.#pending.clear();
    this.#flush();
    if (this.#writable !== process.stdout && this.#writable !== process.stderr) this.#writable.end();
    // A socket is both ends: ending it is enough, and destroying it would drop what is still queued.
    if ((this.#readable as unknown) !== this.#writable) this.#readable.destroy();
    this.#onEnd(why);
    this.#resolveClosed();
  }

  /** Throws when `msg` cannot be serialized; a closed pipe swallows it. */
  #send(msg: Msg): void {
    const line = `${JSON.stringify(msg)}\n`;
    if (this.#ended || this.#writable.destroyed || this.#writable.writableEnded) return;
    this.#out.push(line);
    if (this.#flushing) return;
    this.#flushing = true;
    setImmediate(() => this.#flush());
  }

  /** Writes the lines queued so far in one write. */
  #flush(): void {
    this.#flushing = false;
    if (this.#out.length === 0) return;
    const data = this.#out.length === 1 ? this.#out[0]! : this.#out.join('');
    this.#out = [];
    if (this.#writable.destroyed || this.#writable.writableEnded) return;
    this.#writable.write(data);
  }

  #onData(chunk: Buffer | string): void {
    if (this.#ended) return;
    const text = typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const line = this.#partial + text.slice(start, nl);
      this.#partial = '';
      start = nl + 1;
      if (this.#skipping) this.#skipping = false;
      else this.#onLine(line);
    }
    this.#partial += text.slice(start);
    if (this.#partial.length > MAX_LINE) {
      this.#partial = '';
      this.#skipping = true;
      malformed.inc({ side: this.#side });
    }
  }

  #onLine(line: string): void {
    if (line.trim() === '') return;
    let m: Msg;
    try {
      m = JSON.parse(line);
    } catch {
      malformed.inc({ side: this.#side });
      return;
    }
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      malformed.inc({ side: this.#side });
    } else if (typeof m.re === 'number') {
      const p = this.#pending.get(m.re);
      if (m.ok) p?.resolve(m.data);
      else p?.reject(fromWire(m.error));
    } else if (typeof m.op !== 'string') {
      malformed.inc({ side: this.#side });
    } else if (typeof m.id !== 'number') {
      void (async () => this.#handle(m))().catch(() => {});
    } else {
      const re = m.id;
      void (async () => this.#handle(m))().then(
        (data) => this.#reply(re, { ok: true, data }),
        (e) => this.#reply(re, { ok: false, error: toWire(e) }),
      );
    }
  }

  #reply(re: number, body: Msg): void {
    try {
      this.#send({ ...body, re });
    } catch (e) {
      this.#send({
        re,
        ok: false,
        error: toWire(new Error(`reply not serializable: ${(e as Error).message}`)),
      });
    }
  }
}

/**
 * The child's transport: every call goes to the parent at the other end of `readable`/`writable`
 * (default stdin/stdout: log to stderr only). `closed` resolves when the parent goes away.
 */
export class PipeTransport implements Transport {
  readonly name: Transport['name'] = 'pipe';
  readonly closed: Promise<void>;
  readonly #peer: Peer;
  readonly #servers = new Map<number, (data: unknown) => Promise<unknown>>();
  readonly #subs = new Map<number, (data: unknown, subject: string) => void>();
  readonly #consumers = new Map<number, (job: Job) => Promise<void>>();
  #nextSid = 1;

  constructor(readable: Readable = process.stdin, writable: Writable = process.stdout) {
    this.#peer = new Peer(
      readable,
      writable,
      'child',
      (m) => this.#onCall(m),
      () => {},
    );
    this.closed = this.#peer.closed;
  }

  async #onCall(m: Msg): Promise<unknown> {
    const sid = Number(m['sid']);
    if (m.op === 'msg') {
      try {
        this.#subs.get(sid)?.(m.data, String(m['subject']));
      } catch {
        // A subscriber's failure is its own; fan-out goes on.
      }
      return;
    }
    if (m.op === 'call') {
      const h = this.#servers.get(sid);
      if (!h) throw new Error('no longer served by this worker');
      return h(m.data);
    }
    if (m.op === 'job') {
      const h = this.#consumers.get(sid);
      if (!h) throw new Error('no longer consumed by this worker');
      await h(m['job'] as Job);
      return;
    }
    throw new Error(`unknown operation "${m.op}"`);
  }

  /** Registers `handler` locally, then asks the parent to forward to it. */
  async #register<H>(map: Map<number, H>, handler: H, op: string, fields: Record<string, unknown>) {
    const sid = this.#nextSid++;
    map.set(sid, handler);
    try {
      await this.#peer.call(op, { ...fields, sid });
    } catch (e) {
      map.delete(sid);
      throw e;
    }
    return {
      unsubscribe: async () => {
        if (!map.delete(sid)) return;
        // A closed pipe has already dropped the registration on the parent's side.
        await this.#peer.call('unsubscribe', { sid }).catch(() => {});
      },
    };
  }

  async request<Req, Res>(subject: string, data: Req, opts?: RequestOptions): Promise<Res> {
    const ms = opts?.timeout ?? 10_000;
    const message = `request "${subject}" timed out after ${ms} ms`;
    return (await this.#peer.call('request', { subject, data, timeout: ms }, { ms, message })) as Res;
  }

  serve<Req, Res>(subject: string, handler: (data: Req) => Promise<Res>): Promise<Subscription> {
    return this.#register(this.#servers, handler as (d: unknown) => Promise<unknown>, 'serve', { subject });
  }

  async publish<T>(subject: string, data: T): Promise<void> {
    await this.#peer.call('publish', { subject, data });
  }

  subscribe<T>(subject: string, handler: (data: T, subject: string) => void): Promise<Subscription> {
    return this.#register(this.#subs, handler as (d: unknown, s: string) => void, 'subscribe', { subject });
  }

  async enqueue<T>(queue: string, id: string, data: T): Promise<void> {
    await this.#peer.call('enqueue', { queue, jobId: id, data });
  }

  consume<T>(
    queue: string,
    handler: (job: Job<T>) => Promise<void>,
    opts?: ConsumeOptions,
  ): Promise<Subscription> {
    return this.#register(this.#consumers, handler as (job: Job) => Promise<void>, 'consume', {
      queue,
      opts,
    });
  }

  /** Tells the parent to drop this child's registrations, then releases the streams. */
  async close(): Promise<void> {
    this.#peer.notify('close', {});
    this.#peer.end('closed by the child');
    this.#servers.clear();
    this.#subs.clear();
    this.#consumers.clear();
  }
}

export interface PipeBridgeOptions {
  /** Names the child in logs, e.g. the network segment. */
  label?: string;
  logger?: Logger;
}

export interface PipeBridge {
  /** Resolves once the child is gone and everything it registered is unsubscribed. */
  readonly closed: Promise<void>;
  /** Ends the pipe to the child (it sees its stdin end) and cleans up as for a child that went away. */
  close(): Promise<void>;
}

/** Parent side: performs one child's transport calls on `parent`, over the child's stdout/stdin. */
export function bridgePipe(
  parent: Transport,
  readable: Readable,
  writable: Writable,
  opts: PipeBridgeOptions = {},
): PipeBridge {
  const log = (opts.logger ?? createLogger()).child({
    component: 'transport.pipe',
    ...(opts.label ? { child: opts.label } : {}),
  });
  const subs = new Map<number, Subscription>();
  const { promise: closed, resolve: cleaned } = Promise.withResolvers<void>();

  const register = async (sid: number, make: () => Promise<Subscription>): Promise<void> => {
    const sub = await make();
    if (peer.isEnded || subs.has(sid)) {
      await sub.unsubscribe();
      throw new Error(peer.isEnded ? 'pipe transport closed' : `subscription id ${sid} already in use`);
    }
    subs.set(sid, sub);
  };

  const onCall = async (m: Msg): Promise<unknown> => {
    const sid = Number(m['sid']);
    const subject = String(m['subject']);
    const queue = String(m['queue']);
    switch (m.op) {
      case 'request':
        return parent.request(subject, m.data, { timeout: Number(m['timeout']) || undefined });
      case 'publish':
        return parent.publish(subject, m.data);
      case 'enqueue':
        return parent.enqueue(queue, String(m['jobId']), m.data);
      case 'serve':
        return register(sid, () => parent.serve(subject, (data) => peer.call('call', { sid, data })));
      case 'subscribe':
        return register(sid, () =>
          parent.subscribe(subject, (data, s) => peer.notify('msg', { sid, subject: s, data })),
        );
      case 'consume':
        return register(sid, () =>
          parent.consume(
            queue,
            async (job) => {
              await peer.call('job', { sid, job });
            },
            m['opts'] as ConsumeOptions | undefined,
          ),
        );
      case 'unsubscribe': {
        const sub = subs.get(sid);
        subs.delete(sid);
        await sub?.unsubscribe();
        return;
      }
      case 'close':
        peer.end('closed by the child');
        return;
      default:
        throw new Error(`unknown operation "${m.op}"`);
    }
  };

  const onEnd = (why: string) => {
    log.debug('child transport gone; unsubscribing what it registered', { why, registrations: subs.size });
    const all = [...subs.values()];
    subs.clear();
    void Promise.allSettled(all.map((s) => s.unsubscribe())).then((results) => {
      for (const r of results) {
        if (r.status === 'rejected') log.warn('cannot unsubscribe for a gone child', { error: r.reason });
      }
      cleaned();
    });
  };

  const peer = new Peer(readable, writable, 'parent', onCall, onEnd);
  return {
    closed,
    close: async () => {
      peer.end('closed by the parent');
      await closed;
    },
  };
}

/**
 * A pipe child's shutdown: on SIGTERM or SIGINT, or as soon as its parent is gone however the pipe ended
 * (EOF or close of stdin, close of or EPIPE on stdout, the bridge closed), stop, close the pipe and exit.
 * A parent that is gone (kill -9, crash) takes no more writes, so whatever stop() still waits for (a batch
 * to persist through the closed pipe) may never finish, and holding the ports would keep a restarted
 * parent's new child from serving: the process exits after `deadlineMs` whatever stop() is doing.
 */
export function exitWithParent(
  transport: PipeTransport,
  stop: () => Promise<void>,
  opts: { deadlineMs?: number; log?: Logger } = {},
): { readonly stopping: boolean } {
  const deadlineMs = opts.deadlineMs ?? 1000;
  let stopping = false;
  const exit = (why: string) => {
    if (stopping) return;
    stopping = true;
    opts.log?.info('stopping', { why });
    setTimeout(() => {
      opts.log?.warn('did not stop in time; exiting anyway', { afterMs: deadlineMs });
      process.exit(0);
    }, deadlineMs).unref();
    void (async () => {
      try {
        await stop();
        await transport.close();
      } finally {
        process.exit(0);
      }
    })();
  };
  process.once('SIGTERM', () => exit('SIGTERM'));
  process.once('SIGINT', () => exit('SIGINT'));
  void transport.closed.then(() => exit('the parent closed the pipe'));
  process.stdin.once('end', () => exit('stdin ended'));
  process.stdin.once('close', () => exit('stdin closed'));
  process.stdout.once('close', () => exit('stdout closed'));
  process.stdout.on('error', () => exit('stdout failed'));
  return {
    get stopping() {
      return stopping;
    },
  };
}
