/**
 * NATS transport, for workers running in other processes or on other machines (one boot worker per
 * broadcast domain, sites behind leaf nodes). Same semantics as the in-process transport; the conformance
 * suite runs against both.
 *
 * - Quick calls are core NATS request/reply; servers join the queue group `strata`, so several workers of
 *   one role share the load. Replies carry an envelope so a handler's error (a StrataError keeps its
 *   status and reason) reaches the caller instead of a timeout.
 * - Fan-out is plain publish/subscribe (wildcards `*`, `>`).
 * - Durable work lives in one JetStream stream, `STRATA_WORK` (subjects `work.>`, work-queue retention:
 *   a job is deleted once acked). `enqueue` publishes to `work.<queue>` with the job id as message id, so
 *   a duplicate id inside the stream's duplicate window is dropped by the server. Each queue has one
 *   durable pull consumer (explicit ack, `ack_wait`, `max_deliver`) shared by all its workers, so jobs
 *   enqueued before any worker exists, or while all are down, wait in the stream.
 * - A job's `attempt` is the server's delivery count. A handler that throws is nak'ed with a backoff
 *   delay; one that is still running sends "in progress" every third of `ack_wait`, so `ack_wait` bounds
 *   how long a job sits with a worker that died (killed, disconnected) before another gets it.
 * - Workers pull only as many jobs as they have free slots, so no job waits in a local buffer while its
 *   ack timer runs.
 */
import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createLogger, type Logger } from '../log.ts';
import { StrataError } from '../resources/errors.ts';
import { durableName, WORK_STREAM, WORK_SUBJECT_PREFIX } from '../wire.ts';
import type { ConsumeOptions, Job, RequestOptions, Subscription, Transport } from './types.ts';

export const QUEUE_GROUP = 'strata';

const NS_PER_MS = 1_000_000;
const QUEUE_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

export interface NatsTransportOptions {
  /** Connection name shown by the server (`nats server report connections`). Default `strata`. */
  name?: string;
  /** How long a job id is remembered to drop duplicates. Default 2 minutes (the NATS default). */
  duplicateWindowMs?: number;
  logger?: Logger;
}

type Envelope =
  | { ok: true; data?: unknown }
  | { ok: false; error: { message: string; status?: number; reason?: string } };

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const encode = (v: unknown): Uint8Array =>
  v === undefined ? new Uint8Array(0) : encoder.encode(JSON.stringify(v));
const decode = (b: Uint8Array): unknown => (b.length ? JSON.parse(decoder.decode(b)) : undefined);

/** Backoff before a failed job is tried again, as in the in-process transport. */
export const retryDelayMs = (attempt: number): number => Math.min(30_000, 100 * 2 ** attempt);

function checkQueue(queue: string): void {
  if (!QUEUE_NAME.test(queue)) {
    throw new Error(
      `invalid queue name "${queue}": use dot-separated tokens of letters, digits, "-" and "_"`,
    );
  }
}

function causes(e: unknown): unknown[] {
  const out: unknown[] = [];
  for (let x = e; x && out.length < 5; x = (x as { cause?: unknown }).cause) out.push(x);
  return out;
}

const isNamed = (e: unknown, name: string) => causes(e).some((x) => (x as Error).name === name);
const isNoResponders = (e: unknown) =>
  isNamed(e, 'NoRespondersError') ||
  causes(e).some(
    (x) =>
      typeof (x as { isNoResponders?: () => boolean }).isNoResponders === 'function' &&
      (x as { isNoResponders: () => boolean }).isNoResponders(),
  );

interface ConsumerLoop {
  /** Stops fetching; `connectionGone` also stops in-progress heartbeats of jobs still running. */
  stop(connectionGone: boolean): Promise<void>;
}

export class NatsTransport implements Transport {
  readonly name = 'nats' as const;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #log: Logger;
  readonly #dupWindowMs: number;
  readonly #loops = new Set<ConsumerLoop>();
  #jsm: Promise<JetStreamManager> | undefined;
  #stream: Promise<void> | undefined;
  #closed = false;

  private constructor(nc: NatsConnection, opts: NatsTransportOptions) {
    this.#nc = nc;
    this.#js = jetstream(nc);
    this.#log = (opts.logger ?? createLogger()).child({ component: 'transport.nats' });
    this.#dupWindowMs = opts.duplicateWindowMs ?? 120_000;
  }

  /** Connects to `nats://host:port` (several servers: comma-separated); reconnects forever afterwards. */
  static async connect(url: string, opts: NatsTransportOptions = {}): Promise<NatsTransport> {
    const nc = await connect({
      servers: url.split(',').map((s) => s.trim()),
      name: opts.name ?? 'strata',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
    });
    return new NatsTransport(nc, opts);
  }

  /** The underlying connection, for tests and diagnostics. */
  get connection(): NatsConnection {
    return this.#nc;
  }

  async request<Req, Res>(subject: string, data: Req, opts?: RequestOptions): Promise<Res> {
    const timeout = opts?.timeout ?? 10_000;
    let reply: Envelope;
    try {
      const msg = await this.#nc.request(subject, encode(data), { timeout });
      reply = decode(msg.data) as Envelope;
    } catch (e) {
      if (isNoResponders(e)) {
        throw new Error(`no worker serves "${subject}" (is a worker with that role running?)`, { cause: e });
      }
      if (isNamed(e, 'TimeoutError')) {
        throw new Error(`request "${subject}" timed out after ${timeout} ms`, { cause: e });
      }
      throw e;
    }
    if (!reply || typeof reply !== 'object' || !('ok' in reply)) {
      throw new Error(`malformed reply on "${subject}"`);
    }
    if (reply.ok) return reply.data as Res;
    const { message, status, reason } = reply.error;
    throw status !== undefined && reason !== undefined
      ? new StrataError(status, reason, message)
      : new Error(message);
  }

  async serve<Req, Res>(subject: string, handler: (data: Req) => Promise<Res>): Promise<Subscription> {
    const sub = this.#nc.subscribe(subject, {
      queue: QUEUE_GROUP,
      callback: (err, msg) => {
        if (err || !msg.reply) return;
        void (async (): Promise<Envelope> => {
          try {
            return { ok: true, data: await handler(decode(msg.data) as Req) };
          } catch (e) {
            const error: { message: string; status?: number; reason?: string } = {
              message: e instanceof Error ? e.message : String(e),
            };
            if (e instanceof StrataError) {
              error.status = e.status;
              error.reason = e.reason;
            }
            return { ok: false, error };
          }
        })().then((env) => {
          try {
            msg.respond(encode(env));
          } catch (e) {
            this.#log.warn('cannot send reply', { subject, error: e });
          }
        });
      },
    });
    await this.#nc.flush();
    return { unsubscribe: async () => sub.unsubscribe() };
  }

  async publish<T>(subject: string, data: T): Promise<void> {
    this.#nc.publish(subject, encode(data));
  }

  async subscribe<T>(subject: string, handler: (data: T, subject: string) => void): Promise<Subscription> {
    const sub = this.#nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        try {
          handler(decode(msg.data) as T, msg.subject);
        } catch {
          // A subscriber's failure is its own; fan-out goes on.
        }
      },
    });
    await this.#nc.flush();
    return { unsubscribe: async () => sub.unsubscribe() };
  }

  #manager(): Promise<JetStreamManager> {
    this.#jsm ??= jetstreamManager(this.#nc).catch((e) => {
      this.#jsm = undefined;
      throw new Error(`JetStream is not available on this NATS server (start it with -js): ${e.message}`, {
        cause: e,
      });
    });
    return this.#jsm;
  }

  /** Creates the work stream once (idempotent across processes: an existing stream is used as it is). */
  #ensureStream(): Promise<void> {
    this.#stream ??= (async () => {
      const jsm = await this.#manager();
      try {
        await jsm.streams.info(WORK_STREAM);
        return;
      } catch (e) {
        if (!isNamed(e, 'StreamNotFoundError') && !/not found/i.test((e as Error).message)) throw e;
      }
      try {
        await jsm.streams.add({
          name: WORK_STREAM,
          subjects: [`${WORK_SUBJECT_PREFIX}>`],
          retention: RetentionPolicy.Workqueue,
          storage: StorageType.File,
          duplicate_window: this.#dupWindowMs * NS_PER_MS,
        });
      } catch (e) {
        // Another process created it meanwhile.
        await jsm.streams.info(WORK_STREAM).catch(() => Promise.reject(e));
      }
    })().catch((e) => {
      this.#stream = undefined;
      throw e;
    });
    return this.#stream;
  }

  async enqueue<T>(queue: string, id: string, data: T): Promise<void> {
    checkQueue(queue);
    await this.#ensureStream();
    const ack = await this.#js.publish(`${WORK_SUBJECT_PREFIX}${queue}`, encode({ id, data }), { msgID: id });
    if (ack.duplicate) this.#log.debug('duplicate job dropped', { queue, id });
  }

  /** Creates or updates the queue's durable consumer so it has the asked-for ack_wait and max_deliver. */
  async #ensureConsumer(queue: string, ackWaitMs: number, maxDeliver: number): Promise<Consumer> {
    const jsm = await this.#manager();
    const durable = durableName(queue);
    const subject = `${WORK_SUBJECT_PREFIX}${queue}`;
    const cfg: Partial<ConsumerConfig> = {
      durable_name: durable,
      filter_subject: subject,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ackWaitMs * NS_PER_MS,
      max_deliver: maxDeliver,
      max_ack_pending: -1,
    };
    const existing = () => jsm.consumers.info(WORK_STREAM, durable).catch(() => undefined);
    let info: ConsumerInfo | undefined = await existing();
    if (!info) {
      try {
        info = await jsm.consumers.add(WORK_STREAM, cfg);
      } catch (e) {
        // Another worker created it meanwhile.
        info = await existing();
        if (!info) throw e;
      }
    }
    if (info.config.filter_subject !== subject) {
      throw new Error(
        `consumer "${durable}" on ${WORK_STREAM} filters "${info.config.filter_subject}", not "${subject}"`,
      );
    }
    if (info.config.ack_wait !== cfg.ack_wait || info.config.max_deliver !== maxDeliver) {
      try {
        await jsm.consumers.update(WORK_STREAM, durable, {
          ack_wait: cfg.ack_wait!,
          max_deliver: maxDeliver,
        });
      } catch (e) {
        this.#log.warn('cannot update work consumer; using its existing settings', { queue, error: e });
      }
    }
    return this.#js.consumers.get(WORK_STREAM, durable);
  }

  async consume<T>(
    queue: string,
    handler: (job: Job<T>) => Promise<void>,
    opts?: ConsumeOptions,
  ): Promise<Subscription> {
    checkQueue(queue);
    const concurrency = Math.max(1, opts?.concurrency ?? 4);
    const ackWaitMs = Math.max(100, opts?.ackWaitMs ?? 30_000);
    const maxDeliver = Math.max(1, opts?.maxDeliver ?? 10);
    await this.#ensureStream();
    const consumer = await this.#ensureConsumer(queue, ackWaitMs, maxDeliver);
    const log = this.#log.child({ queue });

    let stopped = false;
    let busy = 0;
    let current: ConsumerMessages | undefined;
    let wake: (() => void) | undefined;
    const heartbeats = new Set<NodeJS.Timeout>();
    const poke = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };

    const settle = async (m: JsMsg, how: 'ack' | 'nak' | 'term', delay?: number) => {
      try {
        if (how === 'ack') await m.ackAck();
        else if (how === 'nak') m.nak(delay);
        else m.term();
      } catch (e) {
        // Connection gone: the server redelivers after ack_wait anyway.
        if (!this.#closed) log.warn(`cannot ${how} job`, { error: e });
      }
    };

    const dispatch = (m: JsMsg) => {
      let job: Job<T>;
      try {
        const body = decode(m.data) as { id: string; data: T };
        job = { id: String(body.id), data: body.data, attempt: m.info.deliveryCount };
      } catch (e) {
        log.warn('dropping malformed job', { seq: m.seq, error: e });
        void settle(m, 'term');
        return;
      }
      busy++;
      const hb = setInterval(
        () => {
          try {
            m.working();
          } catch {
            // Connection gone.
          }
        },
        Math.max(50, Math.floor(ackWaitMs / 3)),
      );
      hb.unref();
      heartbeats.add(hb);
      let work: Promise<void>;
      try {
        work = Promise.resolve(handler(job));
      } catch (e) {
        work = Promise.reject(e);
      }
      work
        .then(
          () => settle(m, 'ack'),
          (e) => {
            if (job.attempt >= maxDeliver) {
              log.warn('job failed for the last time; giving up', {
                id: job.id,
                attempt: job.attempt,
                error: e,
              });
              return settle(m, 'term');
            }
            log.debug('job failed; retrying', { id: job.id, attempt: job.attempt, error: e });
            return settle(m, 'nak', retryDelayMs(job.attempt));
          },
        )
        .finally(() => {
          clearInterval(hb);
          heartbeats.delete(hb);
          busy--;
          poke();
        });
    };

    const loop = (async () => {
      while (!stopped && !this.#closed) {
        if (busy >= concurrency) {
          await new Promise<void>((r) => {
            wake = r;
          });
          continue;
        }
        try {
          current = await consumer.fetch({ max_messages: concurrency - busy, expires: 5000 });
          if (stopped || this.#closed) await current.close();
          for await (const m of current) {
            if (stopped || this.#closed) {
              await settle(m, 'nak');
              continue;
            }
            dispatch(m);
          }
        } catch (e) {
          if (stopped || this.#closed) break;
          log.warn('fetching jobs failed; retrying', { error: e });
          await new Promise((r) => setTimeout(r, 1000));
        } finally {
          current = undefined;
        }
      }
    })();

    const entry: ConsumerLoop = {
      stop: async (connectionGone) => {
        stopped = true;
        if (connectionGone) {
          for (const hb of heartbeats) clearInterval(hb);
          heartbeats.clear();
        }
        await current?.close().catch(() => {});
        poke();
        await loop;
      },
    };
    this.#loops.add(entry);
    return {
      unsubscribe: async () => {
        this.#loops.delete(entry);
        await entry.stop(false);
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#loops].map((l) => l.stop(true)));
    this.#loops.clear();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#nc.drain(),
        new Promise((_, rej) => {
          timer = setTimeout(() => rej(new Error('drain timed out')), 5000);
        }),
      ]);
    } catch {
      await this.#nc.close().catch(() => {});
    } finally {
      clearTimeout(timer);
    }
  }
}
